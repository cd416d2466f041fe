"""Every publishing session of the embedded media server is recorded, one file per WHIP session (a segment), under
LIVE_DATA_DIR/recordings: H.264 video as MP4, VP8 as WebM (MP4 has no standard VP8 mapping), with the Opus audio.
A PublisherObserver of the server (EmbeddedMedia(observers=...)): `started` inserts the segment's `recordings`
row (status `recording`) and hangs a SegmentWriter (writer.py: remux in a thread, nothing decoded) on the
publisher's fanouts; `ended` closes the file and sets the row `ready` (started_at: when its first frame arrived,
ended_at, duration_ms, bytes, width, height) or `failed` (with why).

Limits: a segment stops at RECORDING_MAX_SECONDS of media or RECORDING_MAX_BYTES of frames, whichever comes first:
the file is closed there and the row set `ready` with what it holds; the rest of that session is not recorded (the
seller reconnecting starts a new segment). A writer that falls WRITER_QUEUE_FRAMES behind drops frames until the
next keyframe (and asks the publisher for one). A session without video is not recorded.
"""
from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timezone
from pathlib import Path

from db import Database
from db import recordings as recordings_db
from live.auth.principal import SYSTEM
from live.logging import get_logger
from live.media.embedded.server import Session
from live.media.embedded.writer import FORMATS, SegmentWriter

log = get_logger("live.media")

RECORDINGS_DIR = "recordings"


class _Segment:
    def __init__(self, recording_id: str, writer: SegmentWriter, session: Session):
        self.id, self.writer, self.session = recording_id, writer, session
        self.finished: asyncio.Task | None = None
        self.sinks: list = []  # (fanout, sink) to take off when the segment ends


class Recorder:
    def __init__(self, db: Database, data_dir: Path, *, enabled: bool = True, max_seconds: int = 4 * 3600,
                 max_bytes: int = 4 * 1024**3):
        self.db, self.root = db, Path(data_dir) / RECORDINGS_DIR
        self.enabled, self.max_seconds, self.max_bytes = enabled, max_seconds, max_bytes
        self.segments: dict[str, _Segment] = {}  # session id -> its segment being recorded

    async def started(self, session: Session) -> None:
        video = session.fanouts.get("video")
        if not self.enabled or video is None:
            return
        _, ext, content_type, _ = FORMATS[video.mime.lower()]
        name = f"{session.stream_id}-{secrets.token_hex(8)}.{ext}"
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        async with self.db.tx(SYSTEM) as conn:
            recording_id = await recordings_db.start(conn, session.stream_id, name, content_type)
        audio = session.fanouts.get("audio")
        writer = SegmentWriter(self.root / name, video.mime, audio=audio is not None,
                               ask_keyframe=video.request_keyframe)
        segment = _Segment(recording_id, writer, session)
        self.segments[session.id] = segment

        def on_video(data: bytes, timestamp: int, keyframe: bool) -> None:
            writer.video(data, timestamp, keyframe)
            if (writer.seconds >= self.max_seconds or writer.payload_bytes >= self.max_bytes) and not writer.closed:
                log.warning("recording_limit_reached", recording=recording_id, seconds=round(writer.seconds),
                            bytes=writer.payload_bytes)
                self._finish(segment)

        segment.sinks = [(video, on_video)] + ([(audio, writer.audio)] if audio is not None else [])
        for fanout, sink in segment.sinks:
            fanout.add_sink(sink)
        if session.ended:  # the session ended while its row was written: `ended` found no segment to close
            await self._finish(segment)

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

    async def close(self) -> None:
        """At shutdown: every segment still recording is closed and its row finished."""
        await asyncio.gather(*(self._finish(s) for s in list(self.segments.values())), return_exceptions=True)

