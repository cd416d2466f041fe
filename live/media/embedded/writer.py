"""One recording's file, written by its own thread: the publisher's encoded frames remuxed by PyAV into MP4
(H.264) or WebM (VP8), Opus audio beside them. Nothing is decoded or encoded: each frame becomes an av.Packet muxed
into a stream that has no open codec (PyAV's `add_mux_stream`; the Opus stream is made from an unopened template
so it can carry its OpusHead, which WebM and MP4 both require).

The event loop only `offer`s frames: `SegmentWriter` rebases their RTP timestamps and puts them on a queue of at
most WRITER_QUEUE_FRAMES frames and WRITER_QUEUE_BYTES bytes (full: frames are dropped up to the next keyframe);
its thread opens the file at the first frame (a video keyframe), muxes, and closes it (MP4: `faststart`, the index
moved to the front so a player can start before it has the whole file). The file is written as `.<name>.part` and
renamed to `<name>` once complete: a complete file is the only one under its name.

Timestamps: each track's RTP timestamps (32-bit, unwrapped) counted from its first recorded frame; the audio
track starts at the offset at which its first frame arrived after the first video keyframe (the two tracks are
aligned by arrival time). A track's timestamps never go back (a frame that would is moved to 1 tick after the
previous one).
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import os
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from live.media.embedded.headers import frame_size

WRITER_QUEUE_FRAMES = 300  # frames (audio and video) waiting for the writer thread: ~4 s of 30 fps video + audio
WRITER_QUEUE_BYTES = 8 * 1024 * 1024  # and at most this many bytes of them
VIDEO_CLOCK, AUDIO_CLOCK = 90000, 48000
# OpusHead (RFC 7845 5.1): version 1, 2 channels, pre-skip 0, 48 kHz input, gain 0, channel mapping family 0
OPUS_HEAD = b"OpusHead\x01\x02\x00\x00\x80\xbb\x00\x00\x00\x00\x00"
# video codec -> (container format, file extension, Content-Type, PyAV codec name)
FORMATS = {"video/h264": ("mp4", "mp4", "video/mp4", "h264"), "video/vp8": ("webm", "webm", "video/webm", "vp8")}


@dataclass
class Result:
    ok: bool
    error: str | None = None
    bytes: int = 0
    width: int | None = None
    height: int | None = None


class _Clock:
    """A track's 32-bit RTP timestamps unwrapped and counted from its first frame, plus `offset` ticks."""

    def __init__(self, first: int, offset: int):
        self._last_raw, self._ext, self.offset, self.last = first, 0, offset, -1

    def pts(self, timestamp: int) -> int:
        self._ext += ((timestamp - self._last_raw + 2**31) % 2**32) - 2**31
        self._last_raw = timestamp
        pts = max(self.offset + self._ext, self.last + 1)
        self.last = pts
        return pts


class SegmentWriter:
    """Frames in on the event loop (`video`, `audio`), the file written in a thread, `close()` awaits it."""

    def __init__(self, path: Path, video_mime: str, *, audio: bool, ask_keyframe=None,
                 max_queue: int = WRITER_QUEUE_FRAMES):
        self.path, self.mime, self.has_audio = path, video_mime.lower(), audio
        self.format, _, self.content_type, self.codec = FORMATS[self.mime]
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._queued_bytes = 0  # of the frames in the queue (the loop adds, the thread takes away, under the lock)
        self._lock = threading.Lock()
        # called (on the loop) while a keyframe is awaited (at the start, after a drop): the fanout's rate-limited PLI
        self._ask = ask_keyframe
        self._video: _Clock | None = None
        self._audio: _Clock | None = None
        self._t0 = 0.0
        self._skipping = False  # after the queue was full: frames are dropped until the next video keyframe
        self.started_wall: float | None = None  # time.time() of the first recorded frame
        self.dropped = 0
        self.video_frames = 0
        self.payload_bytes = 0
        self.closed = False
        self._done: asyncio.Future = asyncio.get_running_loop().create_future()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{path.name}", daemon=True)
        self._thread.start()

    @property
    def seconds(self) -> float:
        """Media time recorded so far."""
        return max(self._video.last if self._video else 0, 0) / VIDEO_CLOCK

    def duration_ms(self) -> int:
        """The media time recorded: the later track's last timestamp plus one frame (video: the mean interval,
        audio: 20 ms)."""
        video = audio = 0.0
        if self._video is not None and self.video_frames:
            last = self._video.last / VIDEO_CLOCK
            video = last + (last / (self.video_frames - 1) if self.video_frames > 1 else 0)
        if self._audio is not None:
            audio = self._audio.last / AUDIO_CLOCK + 0.02
        return round(max(video, audio) * 1000)

    def video(self, data: bytes, timestamp: int, keyframe: bool) -> None:
        if self.closed:
            return
        if self._video is None:
            if not keyframe:  # joined mid-stream (its first keyframe went by): ask for one (rate-limited)
                self._ask_keyframe()
                return
            self._video, self._t0, self.started_wall = _Clock(timestamp, 0), time.monotonic(), time.time()
        elif self._skipping:
            if not keyframe:
                self.dropped += 1
                self._ask_keyframe()
                return
            self._skipping = False
        self.video_frames += 1
        self._put(("v", data, self._video.pts(timestamp), keyframe))

    def audio(self, data: bytes, timestamp: int, _keyframe: bool = True) -> None:
        if self.closed or self._video is None or not self.has_audio:
            return
        if self._audio is None:
            self._audio = _Clock(timestamp, round((time.monotonic() - self._t0) * AUDIO_CLOCK))
        self._put(("a", data, self._audio.pts(timestamp), True))

    def _put(self, item: tuple) -> None:
        size = len(item[1])
        try:
            with self._lock:
                if self._queued_bytes + size > WRITER_QUEUE_BYTES:
                    raise queue.Full
                self._queue.put_nowait(item)
                self._queued_bytes += size
            self.payload_bytes += size
        except queue.Full:  # the disk is slower than the stream: drop, resume at the next keyframe
            self.dropped += 1
            if not self._skipping:
                self._skipping = True
                self._ask_keyframe()

    def _ask_keyframe(self) -> None:
        if self._ask is not None:
            self._ask()

    async def close(self) -> Result:
        """Stop taking frames, let the thread write what is queued and close the file; its Result."""
        if not self.closed:
            self.closed = True
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                await asyncio.to_thread(self._queue.put, None)
        return await asyncio.shield(self._done)

    # ---------------------------------------------------------------- the writer thread

    def _run(self) -> None:
        result = Result(False, "no video keyframe arrived: nothing was recorded")
        part = self.path.with_name(f".{self.path.name}.part")
        container = None
        item = ()  # the last item taken: None once the end marker was (nothing more will come)
        try:
            streams: dict[str, av.stream.Stream] = {}
            while (item := self._queue.get()) is not None:
                kind, data, pts, keyframe = item
                with self._lock:
                    self._queued_bytes -= len(data)
                if container is None:
                    size = frame_size(self.mime, data)
                    if size is None:
                        raise ValueError("the first keyframe does not say the picture size")
                    result.width, result.height = size
                    container, streams = self._open(part, *size)
                packet = av.Packet(data)
                packet.stream = streams[kind]
                packet.pts = packet.dts = pts
                packet.time_base = Fraction(1, VIDEO_CLOCK if kind == "v" else AUDIO_CLOCK)
                packet.is_keyframe = keyframe
                container.mux(packet)
            if container is not None:
                container.close()
                container = None
                os.replace(part, self.path)
                result.ok, result.error, result.bytes = True, None, self.path.stat().st_size
        except Exception as exc:  # a failed write (disk full, a muxer's refusal): the recording fails
            result.ok, result.error = False, f"{type(exc).__name__}: {exc}"[:1000]
            while item is not None:  # let close() finish: drain up to its end marker, unless it was taken already
                item = self._queue.get()
        finally:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.close()
            if not result.ok:
                with contextlib.suppress(OSError):
                    part.unlink()
            self._done.get_loop().call_soon_threadsafe(_settle, self._done, result)

    def _open(self, part: Path, width: int, height: int):
        options = {"movflags": "+faststart"} if self.format == "mp4" else {}
        container = av.open(str(part), "w", format=self.format, container_options=options)
        video = container.add_mux_stream(self.codec, width=width, height=height)
        video.time_base = Fraction(1, VIDEO_CLOCK)
        streams = {"v": video}
        if self.has_audio:
            streams["a"] = _opus_stream(container)
        return container, streams


def _settle(future: asyncio.Future, result: Result) -> None:
    if not future.done():
        future.set_result(result)


def _opus_stream(container):
    """An Opus stream with its OpusHead: made from a template codec context that is never opened (a muxed-only
    stream of PyAV has no place for extradata; a template's context is copied into the stream's parameters
    when the header is written, and not opened as an encoder)."""
    scratch = av.open(io.BytesIO(), "w", format="webm")
    template = scratch.add_stream("libopus", rate=AUDIO_CLOCK)
    stream = container.add_stream_from_template(template)
    ctx = stream.codec_context
    ctx.sample_rate, ctx.layout, ctx.extradata = AUDIO_CLOCK, "stereo", OPUS_HEAD
    stream.time_base = Fraction(1, AUDIO_CLOCK)
    return stream
