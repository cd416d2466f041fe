"""Which room layer a worker runs: in-process (one worker, no REDIS_URL) or shared through Redis."""
from __future__ import annotations

from db import Database
from live.config import Settings
from live.media.livekit import LiveKitTokens
from live.ratelimit import MemoryRateLimiter, RateLimiter
from live.rooms.broker import Broker, MemoryBroker
from live.rooms.hub import Hub
from live.rooms.presence import LocalPresence
from live.rooms.service import RoomService
from live.rooms.state import StreamRegistry


def build_rooms(settings: Settings, db: Database, hub: Hub, media: LiveKitTokens):
    """(redis link or None, broker, rate limiter, room service)."""
    if not settings.redis_url:
        rooms = RoomService(db, hub, None, LocalPresence(), StreamRegistry(db), media)
        broker: Broker = MemoryBroker(rooms.on_event)
        rooms.broker = broker
        limiter: RateLimiter = MemoryRateLimiter()
        return None, broker, limiter, rooms

    from live.ratelimit import RedisRateLimiter
    from live.redis_support import RedisLink
    from live.rooms.presence import RedisPresence
    from live.rooms.redis_broker import RedisBroker

    link = RedisLink(settings.redis_url)
    streams = StreamRegistry(db)
    rooms = RoomService(db, hub, None, RedisPresence(link), streams, media)
    broker = RedisBroker(link, rooms.on_event)
    rooms.broker = broker
    streams.follows = broker.follows
    streams.on_row_changed = broker.announce  # PATCH, status, slow mode: other workers reload the row
    broker.on_control = rooms.reload_soon  # not streams.reload_soon: events applied meanwhile must stay
    broker.on_follow = rooms.on_follow
    return link, broker, RedisRateLimiter(link), rooms
