"""Every publishing session of the embedded media server is recorded, one file per WHIP session (a segment), under
LIVE_DATA_DIR/recordings: H.264 video as MP4, VP8 as WebM (MP4 has no standard VP8 mapping), with the Opus audio.
A PublisherObserver of the server (EmbeddedMedia(observers=...)): `started` inserts the segment's `recordings`
row (status `recording`) and hangs a SegmentWriter (writer.py: remux in a thread, nothing decoded) on the
publisher's fanouts; `ended` closes the file and sets the row `ready` (started_at: when its first frame arrived,
ended_at, duration_ms, bytes, width, height) or `failed` (with why).

Limits: a segment stops at RECORDING_MAX_SECONDS of media or RECORDING_MAX_BYTES of frames, whichever comes first:
the file is closed there and the row set `ready` with what it holds; the rest of that session is not recorded (the
seller reconnecting starts a new segment). Disk: a segment is not started while the recordings' file system has
less than RECORDING_MIN_FREE_BYTES free, and one being written is finished (kept, `ready`) when a check, every
FREE_CHECK_FRAMES video frames (in a thread), finds less. A writer that falls WRITER_QUEUE_FRAMES behind drops
frames until the next keyframe (and asks the publisher for one). A session without video is not recorded.
"""
from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import av

from db import Database
from db import recordings as recordings_db
from live.auth.principal import SYSTEM
from live.logging import get_logger
from live.media.embedded.server import Session
from live.media.embedded.writer import FORMATS, SegmentWriter

log = get_logger("live.media")

RECORDINGS_DIR = "recordings"
STALE_AFTER = 120.0  # seconds without a write to a recording's file (or, before it has one, since its row began)
SWEEP_EVERY = 600.0  # seconds between two sweeps of recordings whose worker stopped
FREE_CHECK_FRAMES = 300  # video frames between two checks of the free disk space while recording (~10 s at 30 fps)


class _Segment:
    def __init__(self, recording_id: str, writer: SegmentWriter, session: Session):
        self.id, self.writer, self.session = recording_id, writer, session
        self.finished: asyncio.Task | None = None
        self.sinks: list = []  # (fanout, sink) to take off when the segment ends
        self.checks: set[asyncio.Task] = set()  # free-space checks running


class Recorder:
    def __init__(self, db: Database, data_dir: Path, *, enabled: bool = True, max_seconds: int = 4 * 3600,
                 max_bytes: int = 4 * 1024**3, min_free_bytes: int = 2 * 1024**3):
        self.db, self.root = db, Path(data_dir) / RECORDINGS_DIR
        self.enabled, self.max_seconds, self.max_bytes = enabled, max_seconds, max_bytes
        self.min_free_bytes = min_free_bytes
        self.segments: dict[str, _Segment] = {}  # session id -> its segment being recorded
        self._sweeper: asyncio.Task | None = None

    async def started(self, session: Session) -> None:
        video = session.fanouts.get("video")
        if not self.enabled or video is None:
            return
        _, ext, content_type, _ = FORMATS[video.mime.lower()]
        name = f"{session.stream_id}-{secrets.token_hex(8)}.{ext}"
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        if await self._free() < self.min_free_bytes:
            log.warning("recording_skipped_disk_full", stream_id=session.stream_id, min_free=self.min_free_bytes)
            return
        if session.ended:
            return
        async with self.db.tx(SYSTEM) as conn:
            recording_id = await recordings_db.start(conn, session.stream_id, name, content_type)
        audio = session.fanouts.get("audio")
        writer = SegmentWriter(self.root / name, video.mime, audio=audio is not None,
                               ask_keyframe=video.request_keyframe)
        segment = _Segment(recording_id, writer, session)
        self.segments[session.id] = segment

        def on_video(data: bytes, timestamp: int, keyframe: bool) -> None:
            writer.video(data, timestamp, keyframe)
            if writer.video_frames and writer.video_frames % FREE_CHECK_FRAMES == 0 and not writer.closed:
                check = asyncio.get_running_loop().create_task(self._check_free(segment))
                segment.checks.add(check)
                check.add_done_callback(segment.checks.discard)
            if (writer.seconds >= self.max_seconds or writer.payload_bytes >= self.max_bytes) and not writer.closed:
                log.warning("recording_limit_reached", recording=recording_id, seconds=round(writer.seconds),
                            bytes=writer.payload_bytes)
                self._finish(segment)

        segment.sinks = [(video, on_video)] + ([(audio, writer.audio)] if audio is not None else [])
        for fanout, sink in segment.sinks:
            fanout.add_sink(sink)
        if session.ended:  # the session ended while its row was written: `ended` found no segment to close
            await self._finish(segment)

    async def _free(self) -> int:
        return (await asyncio.to_thread(shutil.disk_usage, self.root)).free

    async def _check_free(self, segment: _Segment) -> None:
        free = await self._free()
        if free < self.min_free_bytes and not segment.writer.closed:
            log.warning("recording_disk_full", recording=segment.id, free=free, min_free=self.min_free_bytes)
            self._finish(segment)

    async def ended(self, session: Session) -> None:
        segment = self.segments.get(session.id)
        if segment is not None:
            await self._finish(segment)

    def _finish(self, segment: _Segment) -> asyncio.Task:
        if segment.finished is None:
            segment.finished = asyncio.get_running_loop().create_task(self._close(segment))
        return segment.finished

    async def _close(self, segment: _Segment) -> None:
        for fanout, sink in segment.sinks:
            fanout.remove_sink(sink)
        writer = segment.writer
        try:
            result = await writer.close()
            ended = datetime.now(timezone.utc)
            started = (datetime.fromtimestamp(writer.started_wall, timezone.utc)
                       if writer.started_wall is not None else None)
            duration_ms = writer.duration_ms() if result.ok else None
            async with self.db.tx(SYSTEM) as conn:
                await recordings_db.finish(conn, segment.id, ok=result.ok, started_at=started, ended_at=ended,
                                           duration_ms=duration_ms, size=result.bytes if result.ok else None,
                                           width=result.width, height=result.height, error=result.error)
        finally:
            self.segments.pop(segment.session.id, None)  # once its row says what became of it
        log.info("recording_finished", recording=segment.id, ok=result.ok, error=result.error,
                 duration_ms=duration_ms, bytes=result.bytes, dropped=writer.dropped)

    def start(self) -> None:
        """Sweep now and every SWEEP_EVERY seconds (see `sweep`)."""
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop(), name="recordings-sweep")

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("recordings_sweep_failed")
            await asyncio.sleep(SWEEP_EVERY)

    async def sweep(self) -> int:
        """Finish the rows left `recording` by a worker that stopped (a crash, a kill): not this worker's, with no
        write to their file for STALE_AFTER seconds. A complete file (renamed, its row not yet written) makes the
        row `ready` (its duration and size read back); otherwise the row is `failed` and its partial file deleted.
        A row this sweeps by mistake (a recording on another worker, idle that long) is set right when that
        recording ends. Returns how many rows it finished."""
        async with self.db.tx(SYSTEM) as conn:
            rows = await recordings_db.embedded_recording(conn)
        mine = {segment.id for segment in self.segments.values()}
        done = 0
        for row in rows:
            if row["id"] in mine:
                continue
            verdict = await asyncio.to_thread(self._inspect, row["file_name"], row["started_at"].timestamp())
            if verdict is None:
                continue
            async with self.db.tx(SYSTEM) as conn:
                done += await recordings_db.settle_stale(conn, row["id"], **verdict)
        if done:
            log.warning("recordings_swept", rows=done)
        return done

    def _inspect(self, name: str, started: float) -> dict | None:
        """What became of a recording whose row still says `recording` (blocking: in a thread); None while it may
        still be recorded."""
        final, part = self.root / name, self.root / f".{name}.part"
        now = time.time()
        if final.is_file():
            try:
                with av.open(str(final)) as played:
                    video = played.streams.video[0]
                    return {"ok": True, "duration_ms": round((played.duration or 0) / 1000),
                            "size": final.stat().st_size, "width": video.codec_context.width,
                            "height": video.codec_context.height, "error": None}
            except (av.error.FFmpegError, IndexError) as exc:
                return {"ok": False, "duration_ms": None, "size": None, "width": None, "height": None,
                        "error": f"the file cannot be read: {exc}"[:1000]}
        try:
            if now - part.stat().st_mtime < STALE_AFTER:
                return None
            part.unlink()
        except FileNotFoundError:
            if now - started < STALE_AFTER:
                return None
        return {"ok": False, "duration_ms": None, "size": None, "width": None, "height": None,
                "error": "the worker recording it stopped before the recording ended"}

    async def close(self) -> None:
        """At shutdown: every segment still recording is closed and its row finished."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await asyncio.gather(*(self._finish(s) for s in list(self.segments.values())), return_exceptions=True)

