"""LiveKit ingress: a seller publishes from OBS (RTMP, or WHIP from OBS 30+) into the stream's LiveKit room.

`POST /api/v1/livestreams/{id}/ingress {input}` (live/http/ingress.py) makes one through LiveKit's IngressService
(`CreateIngress`, signed with the `ingressAdmin` grant) for the stream's room, with the stream's seller's user id
as the participant identity: what OBS publishes is the seller publishing (the webhooks count its tracks as the
seller's, media:status says so). The ingress (its id, URL and stream key) is kept in `livekit_ingresses`, one per
stream: the seller sets OBS up once and every show of the stream uses it until it is deleted (`DeleteIngress`).

A second create with the same input answers the stream's ingress (201 with `created: false`: a retried request gets
what the first made); with the other input it is 409 `conflict` (delete it first). Two creates at once both reach
LiveKit; the one whose row is stored second answers the first's and, in that transaction, enqueues
`livekit.delete_ingress` for its own (its answer does not wait for, or fail with, that DeleteIngress). Without
LiveKit (LIVEKIT_URL unset) it is 409 `livekit_not_configured`; LiveKit failing or refusing is 502
`media_server_error` (nothing stored; a delete keeps the row so it can be retried); an ended stream cannot get one
(409 `stream_not_live`).

`ingress_started` / `ingress_ended` webhooks (live/media/livekit_webhooks.py) store the ingress's state
(`ENDPOINT_PUBLISHING`, `ENDPOINT_INACTIVE`, `ENDPOINT_ERROR` with its error...), shown by GET. When the stream
ends, the end's own transaction (live/rooms/node.py set_status -> LiveKitRooms.enqueue_ended) forgets its ingress and
enqueues `livekit.delete_ingress`, which deletes it in LiveKit (its stream key stops working; retried 8 times, 2 s
doubling to 5 min apart; `not_found` is done). A create that LiveKit answered while the stream ended stores
nothing (the stream row is share-locked while storing, so the end comes before or after, never between) and has
its ingress deleted the same way. A `room_finished` webhook of an ended stream that still has an ingress does the
same (a backup)."""
from __future__ import annotations

from livekit import api as lk

from db import Database
from db import media as media_db
from live.auth.principal import SYSTEM
from live.config import Settings
from live.errors import DomainError
from live.jobs.queue import enqueue
from live.logging import get_logger
from live.media.livekit_rooms import INGRESS_DELETE_JOB, LiveKitRooms

log = get_logger("live.media.livekit")

DELETE_JOB = INGRESS_DELETE_JOB
ATTEMPTS, FIRST_DELAY, MAX_DELAY = 8, 2.0, 300.0
INPUTS = {"rtmp": lk.IngressInput.RTMP_INPUT, "whip": lk.IngressInput.WHIP_INPUT}


def _out(row) -> dict:
    return {"ingress_id": row["ingress_id"], "input": row["input"], "url": row["url"],
            "stream_key": row["stream_key"], "status": row["status"], "error": row["error"]}


class LiveKitIngress:
    def __init__(self, db: Database, settings: Settings, rooms: LiveKitRooms):
        self._db = db
        self.lk = rooms.calls  # the process's one LiveKitAPI client (live/media/livekit_rooms.py)

    async def get(self, stream_id: str) -> dict:
        async with self._db.tx(SYSTEM) as conn:
            row = await media_db.ingress_of(conn, stream_id)
        if row is None:
            raise DomainError("not_found", "this stream has no ingress")
        return _out(row)

    async def create(self, state, kind: str, by_user: str | None) -> tuple[dict, bool]:
        """The stream's ingress for `kind` ("rtmp" | "whip") and whether this call made it."""
        self.lk.require()
        if state.status == "ended":
            raise DomainError("stream_not_live", "the stream has ended")
        async with self._db.tx(SYSTEM) as conn:
            row = await media_db.ingress_of(conn, state.id)
        if row is not None:
            return self._same(row, kind), False
        request = lk.CreateIngressRequest(
            input_type=INPUTS[kind], name=f"stream {state.id}", room_name=state.livekit_room,
            participant_identity=state.seller_user_id, participant_name=state.seller_name or "seller")
        info = await self.lk.call("CreateIngress", self.lk.api().ingress.create_ingress(request))
        if not info.ingress_id or len(info.ingress_id) > 200 or len(info.url) > 2048 or len(info.stream_key) > 500:
            raise DomainError("media_server_error", "LiveKit answered CreateIngress with an unusable ingress")
        async with self._db.tx(SYSTEM) as conn:
            ended = await media_db.stream_ended_locked(conn, state.id)  # ended while LiveKit made it
            stored = not ended and await media_db.add_ingress(conn, state.id, info.ingress_id, kind, info.url,
                                                              info.stream_key, by_user)
            if not stored:  # ended, or another request stored the stream's ingress first: ours goes (a job)
                await enqueue(conn, DELETE_JOB, {"ingress_id": info.ingress_id})
            row = await media_db.ingress_of(conn, state.id)
        if ended:
            raise DomainError("stream_not_live", "the stream has ended")
        if not stored:
            log.info("livekit_ingress_extra", stream_id=state.id, ingress_id=info.ingress_id)
            if row is None:  # and that one was deleted meanwhile
                raise DomainError("conflict", "the stream's ingress changed meanwhile; try again")
            return self._same(row, kind), False
        log.info("livekit_ingress_created", stream_id=state.id, ingress_id=info.ingress_id, input=kind)
        return _out(row), True

    @staticmethod
    def _same(row, kind: str) -> dict:
        if row["input"] != kind:
            raise DomainError("conflict", f"the stream already has a {row['input']} ingress; delete it first",
                              details={"ingress_id": row["ingress_id"], "input": row["input"]})
        return _out(row)

    async def delete(self, stream_id: str) -> None:
        """LiveKit's DeleteIngress (already gone there: fine), then the stream forgets it."""
        async with self._db.tx(SYSTEM) as conn:
            row = await media_db.ingress_of(conn, stream_id)
        if row is None:
            raise DomainError("not_found", "this stream has no ingress")
        self.lk.require()
        await self.lk.call("DeleteIngress", self.lk.api().ingress.delete_ingress(
            lk.DeleteIngressRequest(ingress_id=row["ingress_id"])), not_found_ok=True)
        async with self._db.tx(SYSTEM) as conn:
            await media_db.drop_ingress(conn, stream_id, row["ingress_id"])
        log.info("livekit_ingress_deleted", stream_id=stream_id, ingress_id=row["ingress_id"])

    def register_jobs(self, jobs) -> None:
        jobs.register(DELETE_JOB, self.delete_job, max_attempts=ATTEMPTS, first_delay=FIRST_DELAY,
                      max_delay=MAX_DELAY)

    async def delete_job(self, payload: dict) -> None:
        await self.lk.call("DeleteIngress", self.lk.api().ingress.delete_ingress(
            lk.DeleteIngressRequest(ingress_id=payload["ingress_id"])), not_found_ok=True)
        log.info("livekit_ingress_deleted", ingress_id=payload["ingress_id"], reason="stream ended")

    @staticmethod
    async def room_finished(conn, stream_id: str) -> None:
        """A `room_finished` webhook of the stream, in its transaction: an ended stream's ingress goes."""
        ingress_id = await media_db.take_ended_ingress(conn, stream_id)
        if ingress_id is not None:
            await enqueue(conn, DELETE_JOB, {"ingress_id": ingress_id})

    @staticmethod
    async def apply_event(conn, info) -> None:
        """An `ingress_*` webhook's IngressInfo: its state is stored on the stream's ingress."""
        if info.ingress_id:
            status = lk.IngressState.Status.Name(info.state.status)
            await media_db.ingress_state(conn, info.ingress_id, status, info.state.error or None)

