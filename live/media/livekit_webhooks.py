"""LiveKit's webhooks: `POST /webhooks/livekit` (live/http/livekit_webhooks.py) hands the raw body and the
Authorization header here.

LiveKit signs each delivery with the API key and secret: the Authorization header is a JWT (HS256 with the secret,
issuer the key) whose `sha256` claim is the base64 SHA-256 of the body. livekit-api's WebhookReceiver checks both
and parses the event; a missing or forged token, or a body whose hash differs, is `unauthorized` (401), a
verified body that is not a WebhookEvent or has no id is `invalid_payload` (400); nothing is stored either way.

A verified event is stored once under its id (LiveKit retries with the same id) and, in the same transaction,
applied to the stream whose room it names: room_started/room_finished open and close the room,
participant_joined/left count participants, track_published/unpublished by the stream's seller count the tracks the
seller publishes (publishing iff > 0; the seller leaving or the room finishing resets it). A retry of a stored event
changes nothing and answers `duplicate: true`; an event for a room that is no stream's is stored and ignored. An
ingress event's stream key and URL are cleared before it is stored (events are kept; the key is a credential that
must stop existing with the ingress).
`egress_*` and `ingress_*` events name their room in their egress / ingress info: an egress event updates the
stream's recording (live/media/livekit_egress.py), an ingress event the state of the stream's ingress
(live/media/livekit_ingress.py). Events are applied in arrival order (LiveKit does not promise order; counts never
go below 0). When an event turns the seller's publishing on or off, `on_publishing(stream_id, publishing)` runs
after the commit (the container sends the room `media:status`, as the embedded server does)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from google.protobuf.json_format import MessageToDict, ParseError
from livekit import api as lk

from db import Database
from db import media as media_db
from live.auth.principal import SYSTEM
from live.config import Settings
from live.errors import DomainError
from live.logging import get_logger
from live.media import livekit_egress as egress
from live.media.livekit_ingress import LiveKitIngress

log = get_logger("live.media.livekit")

MAX_BODY = 64 * 1024  # a LiveKit event (room, participant, track info) is a few KB
MAX_TOKEN = 4096  # the Authorization JWT LiveKit sends is ~400 bytes
MAX_NAME = 200  # characters of an event id, room name or identity (ours are `live-<slug or uuid>` and user ids)


class LiveKitWebhooks:
    def __init__(self, db: Database, settings: Settings,
                 on_publishing: Callable[[str, bool], Awaitable[None]] | None = None):
        self._db = db
        self._on_publishing = on_publishing
        self._receiver = lk.WebhookReceiver(lk.TokenVerifier(settings.livekit_api_key, settings.livekit_api_secret))

    def verify(self, body: bytes, authorization: str | None):
        """The event of a delivery signed by our LiveKit server (DomainError otherwise)."""
        token = (authorization or "").strip()
        token = token[7:].strip() if token[:7].lower() == "bearer " else token
        if not token or len(token) > MAX_TOKEN:
            raise DomainError("unauthorized", "a LiveKit webhook needs its signed Authorization token")
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise DomainError("invalid_payload", "the body is not UTF-8") from None
        try:
            event = self._receiver.receive(text, token)
        except ParseError as exc:
            raise DomainError("invalid_payload", f"not a LiveKit webhook event: {str(exc)[:200]}") from None
        except Exception as exc:  # noqa: BLE001 - livekit-api raises bare Exception / PyJWT errors for forgeries
            log.warning("livekit_webhook_rejected", error=str(exc)[:200])
            raise DomainError("unauthorized", "the LiveKit webhook signature does not match") from None
        if not event.id or not event.event or len(event.id) > 200 or len(event.event) > 64:
            raise DomainError("invalid_payload", "a LiveKit webhook event needs an id and an event name")
        names = (event.room.name, event.participant.identity, event.egress_info.room_name, event.ingress_info.room_name)
        if any(len(name) > MAX_NAME for name in names):
            raise DomainError("invalid_payload", f"room names and identities are at most {MAX_NAME} characters")
        return event

    async def receive(self, body: bytes, authorization: str | None) -> dict:
        event = self.verify(body, authorization)
        room = event.room.name or event.egress_info.room_name or event.ingress_info.room_name or None
        identity = event.participant.identity or None
        stored_event = lk.WebhookEvent()
        stored_event.CopyFrom(event)
        stored_event.ingress_info.ClearField("stream_key")  # a credential: the stored event must not outlive it
        stored_event.ingress_info.ClearField("url")
        payload = MessageToDict(stored_event, preserving_proto_field_name=True)
        async with self._db.tx(SYSTEM) as conn:
            stream = await media_db.stream_for_room(conn, room) if room else None
            stream_id = stream["id"] if stream else None
            stored = await media_db.store_event(conn, event.id, event.event, room, identity, stream_id, payload)
            changed = None
            if stored and stream is not None:
                changed = await self._apply(conn, stream, event.event, identity)
                if event.event == "room_finished":  # an ended stream's ingress is deleted
                    await LiveKitIngress.room_finished(conn, stream_id)
                if event.event.startswith("egress_"):  # the recording LiveKit makes (live/media/livekit_egress.py)
                    await egress.apply_event(conn, stream_id, event.egress_info)
            if stored and event.event.startswith("ingress_"):  # the stream's OBS ingress (livekit_ingress.py)
                await LiveKitIngress.apply_event(conn, event.ingress_info)
        if changed is not None and (changed[0] > 0) != (changed[1] > 0) and self._on_publishing is not None:
            try:
                await self._on_publishing(stream_id, changed[1] > 0)
            except Exception:  # noqa: BLE001 - stored and applied: the room's push is best effort
                log.exception("livekit_media_status_failed", stream_id=stream_id)
        log.info("livekit_webhook", kind=event.event, id=event.id, room=room, duplicate=not stored)
        return {"received": True, "duplicate": not stored, "stream_id": stream_id}

    @staticmethod
    async def _apply(conn, stream, name: str, identity: str | None) -> tuple[int, int] | None:
        """The seller's published tracks before and after (None: the event does not touch them)."""
        seller = identity is not None and identity == stream["seller_user_id"]
        sid = stream["id"]
        if name == "room_started":
            return await media_db.apply(conn, sid, name, room_active=True)
        if name == "room_finished":
            return await media_db.apply(conn, sid, name, room_active=False, reset_all=True)
        if name == "participant_joined":
            return await media_db.apply(conn, sid, name, room_active=True, participants=1)
        if name == "participant_left":
            return await media_db.apply(conn, sid, name, participants=-1, reset_tracks=seller)
        if name in ("track_published", "track_unpublished") and seller:
            return await media_db.apply(conn, sid, name, room_active=True,
                                        tracks=1 if name == "track_published" else -1)
        return None

    async def status(self, stream_id: str) -> dict:
        """A stream's media status as LiveKit last reported it (all off before any event)."""
        async with self._db.tx(SYSTEM) as conn:
            row = await media_db.status(conn, stream_id)
        if row is None:
            return {"room_active": False, "participants": 0, "publishing": False, "last_event": None}
        return {"room_active": row["room_active"], "participants": row["participants"],
                "publishing": row["publisher_tracks"] > 0, "last_event": row["last_event"]}
