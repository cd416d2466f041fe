"""Which room layer a worker runs: in-process (one worker, no REDIS_URL) or shared through Redis."""
from __future__ import annotations

from db import Database
from live.config import Settings
from live.media.livekit import LiveKitTokens
from live.ratelimit import MemoryRateLimiter
from live.rooms.broker import MemoryBroker
from live.rooms.hub import Hub
from live.rooms.presence import LocalPresence
from live.rooms.service import RoomService
from live.rooms.state import StreamRegistry


def build_rooms(settings: Settings, db: Database, hub: Hub, media: LiveKitTokens):
    """(redis link or None, broker, rate limiter, room service)."""
    streams = StreamRegistry(db)
    if not settings.redis_url:
        rooms = RoomService(db, hub, LocalPresence(), streams, media)
        rooms.broker = MemoryBroker(rooms.on_event)
        return None, rooms.broker, MemoryRateLimiter(), rooms

    from live.ratelimit import RedisRateLimiter
    from live.redis_support import RedisLink
    from live.rooms.presence import RedisPresence
    from live.rooms.redis_broker import RedisBroker

    link = RedisLink(settings.redis_url)
    rooms = RoomService(db, hub, RedisPresence(link), streams, media)
    broker = rooms.broker = RedisBroker(link, rooms.on_event)
    streams.follows = broker.follows
    streams.on_row_changed = broker.announce  # PATCH, status, slow mode: other workers reload the row
    broker.on_control = rooms.reload_soon  # the events applied while the row is read again stay (service.py)
    broker.on_follow = rooms.on_follow
    return link, broker, RedisRateLimiter(link), rooms
