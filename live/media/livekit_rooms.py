"""LiveKit's RoomService, called by durable jobs: a viewer banned from a stream is removed from its LiveKit room
(RemoveParticipant, so a ban also cuts the video it was watching, not only the chat), and an ended stream's room is
deleted (DeleteRoom, disconnecting everyone still in it).

The job is enqueued in the ban's / the status change's own transaction (the call happens iff the ban or the end
commits) and retried on failure (8 runs, 1 s doubling to 5 min apart); LiveKit answering `not_found` (the viewer is
not in the room, the room is already gone) is success. Calls go through livekit-api's LiveKitAPI (Twirp over HTTP,
each request signed with a JWT of the API key and secret, 10 s timeout).

Only with LiveKit: RoomService is used iff LIVEKIT_URL is set (unset or empty: the embedded media server serves
the video, docs/media.md "Choosing the backend"). Otherwise nothing is enqueued."""
from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
from livekit import api as lk

from db import media as media_db
from live.config import Settings
from live.errors import DomainError
from live.jobs.queue import enqueue
from live.logging import get_logger

log = get_logger("live.media.livekit")

REMOVE_JOB = "livekit.remove_participant"
DELETE_JOB = "livekit.delete_room"
EGRESS_JOB = "livekit.start_egress"  # handled by live/media/livekit_egress.py (LIVEKIT_EGRESS)
INGRESS_DELETE_JOB = "livekit.delete_ingress"  # handled by live/media/livekit_ingress.py
EGRESS_CHECK_JOB = "livekit.check_egress"  # handled by live/media/livekit_egress.py (LIVEKIT_EGRESS)
# seconds after the end before each look at an ended stream's egresses still `recording` (~3.3 h in all)
EGRESS_CHECK_DELAYS = (120.0, 300.0, 600.0, 1200.0, 2400.0, 3600.0, 3600.0)
CALL_TIMEOUT = 10.0  # seconds per LiveKit call (RoomService, IngressService, EgressService)
ATTEMPTS, FIRST_DELAY, MAX_DELAY = 8, 1.0, 300.0


class LiveKitCalls:
    """livekit-api's LiveKitAPI for our server, made on first use (it owns an aiohttp session), no region failover
    (a 5xx answers at once: a REST caller gets its 502, a job is retried by the queue)."""

    def __init__(self, settings: Settings):
        self.url = settings.livekit_url
        self.enabled = bool(self.url)  # LiveKit is configured (else the embedded media server serves the video)
        self._key, self._secret = settings.livekit_api_key, settings.livekit_api_secret
        self._api: lk.LiveKitAPI | None = None

    def api(self) -> lk.LiveKitAPI:
        if self._api is None:
            self._api = lk.LiveKitAPI(self.url, self._key, self._secret, failover=False,
                                      timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT))
        return self._api

    def require(self) -> None:
        if not self.enabled:
            raise DomainError("livekit_not_configured", "LiveKit is not configured on this server (LIVEKIT_URL); "
                              "publish to the embedded media server by WHIP instead")

    @staticmethod
    async def call(name: str, call, *, not_found_ok: bool = False):
        """Await a LiveKit call; its refusal or failure is a 502 DomainError (not_found: None when allowed)."""
        try:
            return await call
        except lk.TwirpError as exc:
            if not_found_ok and exc.code == "not_found":
                return None
            log.warning("livekit_call_failed", call=name, code=exc.code, status=exc.status)
            raise DomainError("media_server_error", f"LiveKit refused {name}: {exc.code}") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("livekit_call_failed", call=name, error=type(exc).__name__)
            raise DomainError("media_server_error", f"LiveKit did not answer {name}") from None

    async def close(self) -> None:
        if self._api is not None:
            await self._api.aclose()
            self._api = None


class LiveKitRooms:
    def __init__(self, settings: Settings):
        self.calls = LiveKitCalls(settings)  # one client for rooms, ingress and egress (each LiveKitAPI: a session)
        self.enabled = self.calls.enabled
        self.egress = self.enabled and settings.livekit_egress  # streams going live are recorded by LiveKit

    async def enqueue_remove(self, conn: asyncpg.Connection, room: str, identity: str) -> None:
        """In the ban's transaction: remove `identity` from `room` once it commits."""
        if self.enabled:
            await enqueue(conn, REMOVE_JOB, {"room": room, "identity": identity})

    async def enqueue_delete(self, conn: asyncpg.Connection, room: str) -> None:
        """In the transaction that ends the stream: delete its room once it commits."""
        if self.enabled:
            await enqueue(conn, DELETE_JOB, {"room": room})

    async def enqueue_ended(self, conn: asyncpg.Connection, stream_id: str, room: str) -> None:
        """In the transaction that ends the stream (its row already `ended`): its room is deleted, and its OBS
        ingress is forgotten and deleted in LiveKit (its stream key stops working), by jobs once it commits; with
        LIVEKIT_EGRESS its recordings are looked at 2 min later (a lost `egress_ended` does not leave them
        `recording`)."""
        if not self.enabled:
            return
        await self.enqueue_delete(conn, room)
        ingress_id = await media_db.take_ingress_on_end(conn, stream_id)  # privileged table
        if ingress_id is not None:
            await enqueue(conn, INGRESS_DELETE_JOB, {"ingress_id": ingress_id})
        if self.egress:
            await enqueue(conn, EGRESS_CHECK_JOB, {"stream_id": stream_id, "check": 0},
                          delay=EGRESS_CHECK_DELAYS[0])

    async def enqueue_egress(self, conn: asyncpg.Connection, stream_id: str, room: str) -> None:
        """In the transaction that makes the stream live: LiveKit starts recording it once that commits (one job
        queued per stream at a time)."""
        if self.egress:
            await enqueue(conn, EGRESS_JOB, {"stream_id": stream_id, "room": room}, key=f"egress:{stream_id}")

    def register_jobs(self, jobs) -> None:
        for kind, handler in ((REMOVE_JOB, self.remove_job), (DELETE_JOB, self.delete_job)):
            jobs.register(kind, handler, max_attempts=ATTEMPTS, first_delay=FIRST_DELAY, max_delay=MAX_DELAY)

    async def remove_job(self, payload: dict) -> None:
        request = lk.RoomParticipantIdentity(room=payload["room"], identity=payload["identity"])
        await self.calls.call("RemoveParticipant", self.calls.api().room.remove_participant(request),
                              not_found_ok=True)  # not in the room: what the call wanted

    async def delete_job(self, payload: dict) -> None:
        await self.calls.call("DeleteRoom", self.calls.api().room.delete_room(
            lk.DeleteRoomRequest(room=payload["room"])), not_found_ok=True)  # already gone

    async def close(self) -> None:
        await self.calls.close()
