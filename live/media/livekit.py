"""LiveKit access tokens. A viewer's token can subscribe and must not publish (VideoGrants defaults every
permission to true, so each is set explicitly); the stream's seller gets a token that can publish."""
from __future__ import annotations

from datetime import timedelta

from livekit import api as lk

from live.config import Settings

TOKEN_TTL = timedelta(hours=6)


class LiveKitTokens:
    def __init__(self, settings: Settings):
        self.url = settings.livekit_url
        self._key = settings.livekit_api_key
        self._secret = settings.livekit_api_secret

    def token(self, room: str, identity: str, name: str, *, publisher: bool) -> str:
        grants = lk.VideoGrants(room_join=True, room=room, can_subscribe=True, can_publish=publisher,
                                can_publish_data=publisher, can_update_own_metadata=False)
        return (lk.AccessToken(self._key, self._secret).with_identity(identity).with_name(name)
                .with_grants(grants).with_ttl(TOKEN_TTL).to_jwt())

    def media_for(self, room: str, identity: str, name: str, publisher: bool) -> dict:
        return {"url": self.url, "room": room, "token": self.token(room, identity, name, publisher=publisher),
                "can_publish": publisher}
