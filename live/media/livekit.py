"""LiveKit access tokens. A viewer's token can subscribe and must not publish (VideoGrants defaults every
permission to true, so each is set explicitly); the stream's seller gets a token that can publish. A viewer's token
lives TOKEN_TTL (15 min: a banned viewer removed from the room cannot come back with it for long) and is renewed
over the socket (`media:refresh`, refused to a banned user); the seller's lives PUBLISHER_TTL. Used only when
LIVEKIT_URL is set (`enabled`); without it the embedded media server serves the video (live/media/embedded).

Every viewer who joins gets a token, so a join storm mints thousands a second: the grants of a room are laid
out once by livekit-api (`AccessToken.claims`, LiveKit's own claim names) and each token only adds who it is
for and when it expires before PyJWT signs it (what `AccessToken.to_jwt` does, without rebuilding the grants).
"""
from __future__ import annotations

import functools
import time
from datetime import timedelta

import jwt
from livekit import api as lk

from live.config import Settings
from live.media.livekit_rooms import LiveKitRooms

TOKEN_TTL = timedelta(minutes=15)  # a viewer's token
PUBLISHER_TTL = timedelta(hours=6)  # the seller's: a show is not cut by an expiring token


class LiveKitTokens:
    def __init__(self, settings: Settings):
        self.url = settings.livekit_url
        self.enabled = bool(self.url)  # else the join ack's media names the embedded server (WHEP)
        self._key = settings.livekit_api_key
        self._secret = settings.livekit_api_secret
        self.rooms = LiveKitRooms(settings)  # RoomService calls (bans, ended streams) when a real server is set

    @functools.lru_cache(maxsize=4096)
    def _grants(self, room: str, publisher: bool) -> dict:
        grants = lk.VideoGrants(room_join=True, room=room, can_subscribe=True, can_publish=publisher,
                                can_publish_data=publisher, can_update_own_metadata=False)
        return lk.AccessToken(self._key, self._secret).with_grants(grants).claims.asdict()

    def token(self, room: str, identity: str, name: str, *, publisher: bool) -> str:
        now = int(time.time())
        ttl = PUBLISHER_TTL if publisher else TOKEN_TTL
        claims = {**self._grants(room, publisher), "name": name, "sub": identity, "iss": self._key,
                  "nbf": now, "exp": now + int(ttl.total_seconds())}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def media_for(self, room: str, identity: str, name: str, publisher: bool) -> dict:
        ttl = PUBLISHER_TTL if publisher else TOKEN_TTL
        return {"kind": "livekit", "url": self.url, "room": room,
                "token": self.token(room, identity, name, publisher=publisher), "can_publish": publisher,
                "expires_in": int(ttl.total_seconds())}
