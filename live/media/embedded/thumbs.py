"""Live thumbnails: while a stream publishes on the embedded media server, a JPEG of its video every
THUMBNAIL_INTERVAL seconds at LIVE_DATA_DIR/thumbnails/<stream id>.jpg, for the stream lists.

A PublisherObserver (EmbeddedMedia(observers=...)): `started` begins a loop that asks the publisher for a keyframe
(the fanout's rate-limited PLI), takes the next keyframe from the fanout (a sink), and turns it into a JPEG in a
thread: that one frame decoded by a fresh PyAV decoder, scaled to THUMBNAIL_WIDTH px wide (the height keeps the
aspect, even), encoded by PyAV's mjpeg encoder, written atomically (a temporary file renamed over the old one).
One thumbnail is made at a time per stream; a keyframe that does not come within KEYFRAME_WAIT seconds skips that
turn. `ended` stops the loop and removes the file: a live thumbnail exists only while the stream publishes.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from fractions import Fraction
from pathlib import Path

import av

from live.logging import get_logger
from live.media.embedded.server import Session
from live.uploads import write_atomic

log = get_logger("live.media")

THUMBNAILS_DIR = "thumbnails"
THUMBNAIL_WIDTH = 320
KEYFRAME_WAIT = 5.0  # seconds to wait for the keyframe asked for
DECODERS = {"video/vp8": "vp8", "video/h264": "h264"}


def jpeg_of_keyframe(mime: str, data: bytes, width: int = THUMBNAIL_WIDTH) -> bytes:
    """A JPEG `width` px wide of one encoded keyframe (blocking: call it in a thread). ValueError when the frame
    does not decode."""
    decoder = av.CodecContext.create(DECODERS[mime.lower()], "r")
    try:
        frames = decoder.decode(av.Packet(data)) + decoder.decode(None)
    except av.error.FFmpegError as exc:
        raise ValueError(f"the keyframe does not decode: {exc}") from None
    if not frames:
        raise ValueError("the keyframe decoded to no picture")
    frame = frames[0]
    height = max(2, round(frame.height * width / frame.width / 2) * 2)
    small = frame.reformat(width=width, height=height, format="yuvj420p")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    small.pts = 0
    packets = encoder.encode(small) + encoder.encode(None)
    return bytes(packets[0])


class Thumbnails:
    def __init__(self, data_dir: Path, *, interval: float = 5.0):
        self.root, self.interval = Path(data_dir) / THUMBNAILS_DIR, interval
        self._loops: dict[str, asyncio.Task] = {}  # session id -> its thumbnail loop
        self._making: dict[str, asyncio.Future] = {}  # session id -> the thumbnail being made in a thread

    def path(self, stream_id: str) -> Path:
        return self.root / f"{stream_id}.jpg"

    def url(self, stream_id: str) -> str | None:
        """The stream's live thumbnail URL (its version in the query, so a new one is fetched anew), None without
        one. A stat of one file."""
        try:
            version = os.stat(self.path(stream_id)).st_mtime_ns
        except OSError:
            return None
        return f"/api/v1/livestreams/{stream_id}/thumbnail?v={version}"

    def find(self, stream_id: str) -> Path | None:
        path = self.path(stream_id)
        return path if path.is_file() else None

    async def started(self, session: Session) -> None:
        video = session.fanouts.get("video")
        if video is None or session.id in self._loops:
            return
        self._loops[session.id] = asyncio.get_running_loop().create_task(self._run(session, video),
                                                                          name=f"thumbnails-{session.stream_id}")

    async def ended(self, session: Session) -> None:
        task = self._loops.pop(session.id, None)
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        making = self._making.pop(session.id, None)
        if making is not None:  # its thread still writes: let it finish before the file goes
            await asyncio.gather(making, return_exceptions=True)
        await asyncio.to_thread(self._remove, session.stream_id)

    async def _run(self, session: Session, video) -> None:
        try:
            await self._loop(session, video)
        finally:
            if self._loops.get(session.id) is asyncio.current_task():  # (ended before `started` ran: not kept)
                del self._loops[session.id]

    async def _loop(self, session: Session, video) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        while not session.ended:
            data = await self._next_keyframe(video)
            if data is not None:
                making = asyncio.ensure_future(asyncio.to_thread(self._make, session.stream_id, video.mime, data))
                self._making[session.id] = making
                try:
                    await asyncio.shield(making)
                except Exception as exc:  # a frame that does not decode, a full disk: the next turn tries again
                    log.warning("thumbnail_failed", stream=session.stream_id, error=str(exc))
                self._making.pop(session.id, None)
            await asyncio.sleep(self.interval)

    async def _next_keyframe(self, video) -> bytes | None:
        got: asyncio.Future = asyncio.get_running_loop().create_future()

        def sink(data: bytes, _timestamp: int, keyframe: bool) -> None:
            if keyframe and not got.done():
                got.set_result(data)

        video.add_sink(sink)
        try:
            video.request_keyframe()
            return await asyncio.wait_for(got, KEYFRAME_WAIT)
        except TimeoutError:
            return None
        finally:
            video.remove_sink(sink)

    def _make(self, stream_id: str, mime: str, data: bytes) -> None:
        write_atomic(self.path(stream_id), jpeg_of_keyframe(mime, data), fsync=False)

    def _remove(self, stream_id: str) -> None:
        with contextlib.suppress(OSError):
            self.path(stream_id).unlink()

    async def close(self) -> None:
        for task in self._loops.values():
            task.cancel()
        await asyncio.gather(*self._loops.values(), return_exceptions=True)
        self._loops.clear()
