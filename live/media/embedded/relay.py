"""Encode once, fan out: the publisher's encoded frames go to every viewer's sender as they arrived.

aiortc has no switch to receive encoded frames: its RTCRtpReceiver reassembles each frame in its jitter buffer
and hands `(codec, JitterFrame)` to a decoder thread through a queue. `EncodedTap` takes that queue's place, so
the frames come here instead of being decoded (the thread only waits for the stop sentinel, which the tap passes
on). Each viewer's `RelayTrack` yields them as `av.Packet`s; aiortc's RTCRtpSender *packs* a Packet (payload
splitting only, `encoder.pack`) where it would encode a Frame. Nothing is decoded or encoded on the server.

Sinks (the recorder, the thumbnails) get every frame too, viewers or not: `(data, timestamp, keyframe)` on the event
loop, as it arrives; a sink must return at once (hand the work to a thread) and one that raises is removed.

Keyframes: a viewer's track starts (and restarts after it lagged) at a keyframe; a viewer's PLI/FIR is forwarded
to the publisher as one PLI, at most one per KEYFRAME_MIN_INTERVAL seconds for all viewers together (a request
within the interval is sent at its end, unless a keyframe comes first).
"""
from __future__ import annotations

import asyncio
import queue
import time
from fractions import Fraction
from typing import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from live.logging import get_logger

log = get_logger("live.media")

RELAY_QUEUE_FRAMES = 120  # frames a viewer may lag (about 4 s of 30 fps video) before it is set back to a keyframe
KEYFRAME_MIN_INTERVAL = 0.5  # seconds between two PLIs sent to the publisher

Sink = Callable[[bytes, int, bool], None]  # (encoded frame, RTP timestamp, keyframe)


def is_keyframe(mime: str, data: bytes) -> bool:
    """Whether a reassembled frame starts a picture a decoder can begin at (VP8: the P bit of the payload header
    is 0; H.264: an IDR or SPS NAL unit in the Annex B stream aiortc depayloads to)."""
    mime = mime.lower()
    if mime == "video/vp8":
        return bool(data) and not data[0] & 0x01
    if mime == "video/h264":
        i = data.find(b"\x00\x00\x01")
        while 0 <= i < len(data) - 3:
            if data[i + 3] & 0x1F in (5, 7):
                return True
            i = data.find(b"\x00\x00\x01", i + 3)
        return False
    return True  # audio: every frame stands alone


class RelayTrack(MediaStreamTrack):
    """One viewer's track of one kind: the publisher's encoded frames as av.Packets, from a keyframe on."""

    def __init__(self, fanout: "Fanout"):
        super().__init__()
        self.kind = fanout.kind
        self._fanout = fanout
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()
        self._waiting_keyframe = fanout.kind == "video"

    def offer(self, packet: av.Packet, keyframe: bool) -> None:
        if self._waiting_keyframe:
            if not keyframe:  # ask again while waiting (a PLI can be lost): at most one per interval for all
                self._fanout.request_keyframe()
                return
            self._waiting_keyframe = False
        if self._queue.qsize() >= RELAY_QUEUE_FRAMES:  # a slow viewer: drop what it has, resume at a keyframe
            while not self._queue.empty():
                self._queue.get_nowait()
            if self.kind == "video":
                self._waiting_keyframe = not keyframe
                if self._waiting_keyframe:
                    self._fanout.request_keyframe()
                    return
        self._queue.put_nowait(packet)

    def end(self) -> None:
        self._queue.put_nowait(None)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        super().stop()
        self._fanout.discard(self)


class Fanout:
    """The publisher's track of one kind, relayed to any number of RelayTracks."""

    def __init__(self, kind: str, mime: str, clock_rate: int, send_pli: Callable[[], bool]):
        self.kind, self.mime = kind, mime
        self._time_base = Fraction(1, clock_rate)
        self._send_pli = send_pli
        self._tracks: set[RelayTrack] = set()
        self._sinks: list[Sink] = []
        self._last_pli = 0.0
        self._pending: asyncio.TimerHandle | None = None  # a request deferred to the end of the interval
        self.frames = 0

    def track(self) -> RelayTrack:
        relay = RelayTrack(self)
        self._tracks.add(relay)
        self.request_keyframe()
        return relay

    def discard(self, relay: RelayTrack) -> None:
        self._tracks.discard(relay)

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    @property
    def viewers(self) -> int:
        return len(self._tracks)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe: now, or (within KEYFRAME_MIN_INTERVAL of the last PLI) once at the
        end of the interval, unless a keyframe arrives first. A request is never dropped: a viewer that joined
        just after a PLI still gets its keyframe within the interval."""
        if self.kind != "video" or self._pending is not None:
            return
        wait = self._last_pli + KEYFRAME_MIN_INTERVAL - time.monotonic()
        if wait <= 0:
            self._pli()
        else:
            self._pending = asyncio.get_running_loop().call_later(wait, self._deferred_pli)

    def _deferred_pli(self) -> None:
        self._pending = None
        self._pli()

    def _pli(self) -> None:
        if self._send_pli():  # not before the publisher's first packets: its first frame is a keyframe anyway
            self._last_pli = time.monotonic()

    def push(self, data: bytes, timestamp: int) -> None:
        self.frames += 1
        if self._pending is not None and is_keyframe(self.mime, data):  # what the deferred request asked for came
            self._pending.cancel()
            self._pending = None
        if not self._tracks and not self._sinks:
            return
        keyframe = is_keyframe(self.mime, data)
        for sink in list(self._sinks):
            try:
                sink(data, timestamp, keyframe)
            except Exception:
                log.exception("media_sink_failed", sink=repr(sink))
                self.remove_sink(sink)
        if not self._tracks:
            return
        packet = av.Packet(data)  # one for all: a sender only reads it (bytes, pts, time_base) to packetize it
        packet.pts = packet.dts = timestamp
        packet.time_base = self._time_base
        for relay in list(self._tracks):
            relay.offer(packet, keyframe)

    def end(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        for relay in list(self._tracks):
            relay.end()
        self._tracks.clear()
        self._sinks.clear()


class EncodedTap:
    """Stands in for an RTCRtpReceiver's decoder queue: encoded frames go to `fanout` (on the event loop, where
    the receiver puts them); the stop sentinel reaches the idle decoder thread, which waits on `inner`."""

    def __init__(self, fanout: Fanout):
        self.fanout = fanout
        self.inner: queue.Queue = queue.Queue()

    def put(self, item) -> None:
        if item is None:
            self.inner.put(None)
            return
        _codec, frame = item
        self.fanout.push(frame.data, frame.timestamp)

    def get(self, *args, **kw):
        return self.inner.get(*args, **kw)
