"""LiveKit egress: with LIVEKIT_EGRESS, LiveKit records every stream that goes live, and the file is its replay.

A stream going live (live/rooms/node.py `set_status`) enqueues `livekit.start_egress {stream_id, room}` in that
transaction (LiveKitRooms.enqueue_egress; one queued per stream at a time). The job, if the stream is still live:
adopts a room-composite egress already running for the room (a retry after a start whose answer was lost must not
record twice), or makes sure the room exists (RoomService CreateRoom: the seller may not have joined yet, and an
egress needs the room) and starts one (EgressService StartRoomCompositeEgress, `roomRecord` grant: the room's mixed
audio and video as one MP4 at LIVEKIT_EGRESS_FILEPATH, written or uploaded by the egress service as its own config
says). It writes the `recordings` row (source `livekit_egress`, its egress id, status recording). A stream that
ended meanwhile gets its egress stopped again. Failures are retried (8 runs, 2 s doubling to 5 min apart).

The egress webhooks (`egress_started`, `egress_updated`, `egress_ended`; live/media/livekit_webhooks.py) update
the row by egress id (making it when the webhook comes before the job's commit): complete (or limit reached) with
a file -> ready, with the file's location (or name), duration and size; failed or aborted -> failed with LiveKit's
error. A row that is ready or failed stays so. Ending the stream deletes the room (livekit.delete_room), which ends
the egress; its `egress_ended` makes the row ready. As webhooks get lost (or are not set up), the end also enqueues
`livekit.check_egress` 2 min later: the stream's rows still `recording` get LiveKit's EgressInfo (ListEgress by
egress id) through the same path; one still active is looked at again 5, 10, 20, 40, 60, 60 min later, then stopped
(StopEgress) and failed (~3.3 h after the end); LiveKit not knowing the egress fails it. A failing call is retried
(the queue's 8 runs)."""
from __future__ import annotations

from datetime import datetime, timezone

import asyncpg
from livekit import api as lk

from db import Database
from db import media as media_db
from live.auth.principal import SYSTEM
from live.config import Settings
from live.jobs.queue import enqueue
from live.logging import get_logger
from live.media.livekit_rooms import EGRESS_CHECK_DELAYS, EGRESS_CHECK_JOB, EGRESS_JOB, LiveKitRooms

log = get_logger("live.media.livekit")

START_JOB = EGRESS_JOB
CHECK_JOB = EGRESS_CHECK_JOB
ATTEMPTS, FIRST_DELAY, MAX_DELAY = 8, 2.0, 300.0
ROOM_EMPTY_TIMEOUT = 600  # seconds a room made for the egress waits for its seller before LiveKit closes it
READY = (lk.EgressStatus.EGRESS_COMPLETE, lk.EgressStatus.EGRESS_LIMIT_REACHED)
FAILED = (lk.EgressStatus.EGRESS_FAILED, lk.EgressStatus.EGRESS_ABORTED)
ACTIVE = (lk.EgressStatus.EGRESS_STARTING, lk.EgressStatus.EGRESS_ACTIVE)


class LiveKitEgress:
    def __init__(self, db: Database, settings: Settings, rooms: LiveKitRooms):
        self._db = db
        self.lk = rooms.calls  # the process's one LiveKitAPI client (live/media/livekit_rooms.py)
        self.enabled = rooms.egress  # LIVEKIT_EGRESS with LiveKit configured: LiveKitRooms.enqueue_egress queues
        self.filepath = settings.livekit_egress_filepath

    def register_jobs(self, jobs) -> None:
        jobs.register(START_JOB, self.start_job, max_attempts=ATTEMPTS, first_delay=FIRST_DELAY, max_delay=MAX_DELAY)
        jobs.register(CHECK_JOB, self.check_job, max_attempts=ATTEMPTS, first_delay=FIRST_DELAY, max_delay=MAX_DELAY)

    async def _live(self, stream_id: str) -> bool:
        async with self._db.tx(SYSTEM) as conn:
            return await media_db.is_live(conn, stream_id)

    async def start_job(self, payload: dict) -> None:
        stream_id, room = payload["stream_id"], payload["room"]
        if not await self._live(stream_id):
            log.info("livekit_egress_skipped", stream_id=stream_id, reason="not live")
            return
        api = self.lk.api()
        running = await self.lk.call("ListEgress", api.egress.list_egress(
            lk.ListEgressRequest(room_name=room, active=True)))
        info = next((e for e in running.items if e.WhichOneof("request") == "room_composite"
                     and e.status in ACTIVE), None)
        if info is None:
            await self.lk.call("CreateRoom", api.room.create_room(
                lk.CreateRoomRequest(name=room, empty_timeout=ROOM_EMPTY_TIMEOUT)))
            output = lk.EncodedFileOutput(file_type=lk.EncodedFileType.MP4, filepath=self.filepath)
            info = await self.lk.call("StartRoomCompositeEgress", api.egress.start_room_composite_egress(
                lk.RoomCompositeEgressRequest(room_name=room, file_outputs=[output])))
        async with self._db.tx(SYSTEM) as conn:
            await media_db.add_egress(conn, stream_id, info.egress_id)
            live = await media_db.is_live(conn, stream_id)
        log.info("livekit_egress_started", stream_id=stream_id, egress_id=info.egress_id)
        if not live:  # ended while the egress started (its room may be deleted already): stop it
            await self.lk.call("StopEgress", api.egress.stop_egress(lk.StopEgressRequest(egress_id=info.egress_id)),
                               not_found_ok=True)


    async def check_job(self, payload: dict) -> None:
        """An ended stream's recordings still `recording`: LiveKit's EgressInfo of each (ListEgress by id) goes
        through the webhooks' path (apply_event); one still active is looked at again later (EGRESS_CHECK_DELAYS),
        and after the last look it is stopped and failed. LiveKit not knowing the egress fails it."""
        stream_id, check = payload["stream_id"], int(payload.get("check", 0))
        async with self._db.tx(SYSTEM) as conn:
            egress_ids = await media_db.egresses_recording(conn, stream_id)
        left = []
        for egress_id in egress_ids:
            found = await self.lk.call("ListEgress", self.lk.api().egress.list_egress(
                lk.ListEgressRequest(egress_id=egress_id)))
            info = next((e for e in found.items if e.egress_id == egress_id), None)
            async with self._db.tx(SYSTEM) as conn:
                if info is None:
                    status = await media_db.egress_update(conn, stream_id, egress_id, "failed",
                                                          error="LiveKit does not know this egress")
                else:
                    status = await apply_event(conn, stream_id, info)
            if status == "recording":
                left.append(egress_id)
        log.info("livekit_egress_checked", stream_id=stream_id, check=check, recording=len(left))
        if not left:
            return
        if check + 1 < len(EGRESS_CHECK_DELAYS):
            async with self._db.tx(SYSTEM) as conn:
                await enqueue(conn, CHECK_JOB, {"stream_id": stream_id, "check": check + 1},
                              delay=EGRESS_CHECK_DELAYS[check + 1])
            return
        hours = sum(EGRESS_CHECK_DELAYS) / 3600
        for egress_id in left:
            await self.lk.call("StopEgress", self.lk.api().egress.stop_egress(lk.StopEgressRequest(
                egress_id=egress_id)), not_found_ok=True)
            async with self._db.tx(SYSTEM) as conn:
                await media_db.egress_update(conn, stream_id, egress_id, "failed",
                                             error=f"the egress was still active {hours:.1f} h after the stream ended")
            log.warning("livekit_egress_abandoned", stream_id=stream_id, egress_id=egress_id)


def _time(ns: int) -> datetime | None:
    """LiveKit's Unix nanoseconds (0 or out of range: unknown)."""
    try:
        return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc) if ns > 0 else None
    except (OverflowError, ValueError, OSError):
        return None


async def apply_event(conn: asyncpg.Connection, stream_id: str, info) -> str | None:
    """An `egress_*` webhook's EgressInfo applied to its recording; the recording's status after (None: no id)."""
    if not info.egress_id or len(info.egress_id) > 200:
        return None
    files = list(info.file_results) or ([info.file] if info.HasField("file") else [])
    file = files[0] if files else None
    where = (file.location or file.filename)[:2048] if file is not None else ""
    error = None
    if info.status in READY and where:
        status = "ready"
    elif info.status in READY or info.status in FAILED:
        status = "failed"
        error = (info.error or lk.EgressStatus.Name(info.status) if info.status in FAILED
                 else "the egress ended without a file")[:1000]
    else:
        status = "recording"
    return await media_db.egress_update(
        conn, stream_id, info.egress_id, status, started_at=_time(info.started_at), ended_at=_time(info.ended_at),
        duration_ms=file.duration // 1_000_000 if file is not None and file.duration > 0 else None,
        size=file.size if file is not None and file.size > 0 else None, location=where or None, error=error)
