"""The peers of `python -m loadtests media` (loadtests/media.py), each kind a process of its own:

  python -m loadtests.media_peers publisher --url URL --stream demo --token T --out FILE
  python -m loadtests.media_peers viewers --url URL --stream demo --count 25 --probes 2 --out FILE

The publisher sends a 640x360, 30 fps VP8 track by WHIP: a scrolling texture (so the encoder spends its bitrate
as on a camera) with the frame number drawn at the top as two rows of 16 black/white 40x40 blocks (the bits, then
their complement as a check: they survive compression), and records each frame's send time (wall clock, when the
frame is made, before it is encoded). It prints `ready` once its connection is up and, when its stdin closes, writes
{fps_sent, sent: [send time of frame n], keyframe_requests: [when each PLI/FIR came]} to FILE.

Viewers play by WHEP. A *probe* decodes every frame (aiortc's own decoder), reads the number and keeps (number,
receive time after decode); a *bulk* viewer does not decode: its receiver's reassembled frames are taken before
the decoder (as live/media/embedded/relay.py's EncodedTap does) and counted, and it sends no REMB (aiortc's
bandwidth estimator is a third of a receiver's CPU; the server ignores REMB: it relays the publisher's packets).
The process prints `ready N` when N of its viewers have had a first frame (or after --ready-timeout), then reads
`window START END` (wall clock) on stdin, counts what arrives in that window, writes the per-viewer results to FILE,
prints `done`, ends its sessions (WHEP DELETE) and exits. The publisher's VP8 bitrate is fixed (--bitrate)."""
from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import queue
import random
import sys
import time

import aiohttp
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

WIDTH, HEIGHT, FPS = 640, 360, 30
BLOCK, BITS = 40, 16  # the frame number: 16 blocks of 40x40 pixels across, bits then complement below
TICKS = 90000 // FPS  # RTP timestamp step of one frame (90 kHz clock)
BLACK, WHITE = 16, 235


def number_rows(n: int) -> tuple[bytes, bytes]:
    """One pixel line of each of the two block rows that carry `n`."""
    bits = [(n >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    row = b"".join(bytes([WHITE if b else BLACK]) * BLOCK for b in bits)
    check = b"".join(bytes([BLACK if b else WHITE]) * BLOCK for b in bits)
    return row, check


def read_number(frame: av.VideoFrame) -> int | None:
    """The number drawn in a decoded frame, None when a block is unreadable or the check row disagrees."""
    plane = frame.planes[0]
    data, stride = bytes(plane), plane.line_size
    n = 0
    for i in range(BITS):
        x = i * BLOCK + BLOCK // 2
        bit = sum(data[y * stride + x + d] for y in (BLOCK // 2 - 4, BLOCK // 2 + 4) for d in (-4, 4)) > 4 * 126
        check = sum(data[y * stride + x + d] for y in (BLOCK + BLOCK // 2 - 4, BLOCK + BLOCK // 2 + 4)
                    for d in (-4, 4)) > 4 * 126
        if bit == check:
            return None
        n = n << 1 | bit
    return n


class NumberedTrack(VideoStreamTrack):
    """The synthetic camera: frame n carries n in its pixels; sent[n] is its send time."""

    def __init__(self, seed: int = 1):
        super().__init__()
        rnd = random.Random(seed)
        # a texture of 8x8 cells, twice the height so a window of it can scroll down by 2 lines a frame
        cells = [bytes(rnd.randrange(40, 216) for _ in range(WIDTH // 8)) for _ in range(HEIGHT * 2 // 8)]
        self._texture = b"".join(b"".join(bytes([v]) * 8 for v in line) * 8 for line in cells)
        self.sent: list[float] = []

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        n = len(self.sent) % (1 << BITS)  # the pixels carry the frame's index modulo 2^16
        self.sent.append(time.time())
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        y = frame.planes[0]
        offset = (n * 2 % HEIGHT) * WIDTH
        luma = bytearray(self._texture[offset:offset + WIDTH * HEIGHT])
        row, check = number_rows(n)
        for line in range(BLOCK):
            luma[line * WIDTH:line * WIDTH + BITS * BLOCK] = row
            luma[(BLOCK + line) * WIDTH:(BLOCK + line) * WIDTH + BITS * BLOCK] = check
        y.update(_strided(luma, WIDTH, HEIGHT, y.line_size))
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base or fractions.Fraction(1, 90000)
        return frame


def _strided(data: bytearray, width: int, height: int, stride: int) -> bytes:
    if stride == width:
        return bytes(data)
    pad = bytes(stride - width)
    return b"".join(bytes(data[i * width:(i + 1) * width]) + pad for i in range(height))


def peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def exchange(http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection, token: str | None) -> str:
    """POST the offer (WHIP/WHEP), apply the answer; the session's Location."""
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", **({"Authorization": f"Bearer {token}"} if token else {})}
    async with http.post(url, data=pc.localDescription.sdp, headers=headers) as resp:
        if resp.status != 201:
            raise SystemExit(f"{url}: {resp.status} {await resp.text()}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
        return resp.headers["Location"]


async def stdin_lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def fixed_bitrate(bps: int) -> None:
    """aiortc's VP8 encoders of this process encode at `bps`, whatever the receiver's REMB asks."""
    from aiortc.codecs import vpx

    vpx.Vp8Encoder.target_bitrate = property(lambda self: bps, lambda self, value: None)


async def publish(a) -> None:
    fixed_bitrate(a.bitrate * 1000)
    track = NumberedTrack()
    pc = peer()
    video = pc.addTransceiver(track, direction="sendonly")
    plis: list[float] = []  # when the server asked for a keyframe (PLI/FIR)
    ask = video.sender._send_keyframe
    video.sender._send_keyframe = lambda: (plis.append(time.time()), ask())
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"])
    up = asyncio.Event()
    pc.on("connectionstatechange", lambda: up.set() if pc.connectionState == "connected" else None)
    stdin = await stdin_lines()
    async with aiohttp.ClientSession() as http:
        location = await exchange(http, f"{a.url}/api/v1/livestreams/{a.stream}/whip", pc, a.token)
        await asyncio.wait_for(up.wait(), 30)
        say("ready")
        await stdin.read()  # until the parent closes our stdin
        elapsed = time.time() - track.sent[0] if track.sent else 0.0
        with open(a.out, "w") as f:
            json.dump({"fps_sent": round(len(track.sent) / elapsed, 2) if elapsed else 0.0, "sent": track.sent,
                       "keyframe_requests": plis}, f)
        async with http.delete(a.url + location, headers={"Authorization": f"Bearer {a.token}"}):
            pass
    await pc.close()


class Viewer:
    """One WHEP viewer: arrivals as (receive time, RTP timestamp, bytes, frame number or None)."""

    def __init__(self, probe: bool, bulk: str = "tap"):
        self.probe, self.bulk = probe, bulk
        self.pc = peer()
        self.arrivals: list[tuple[float, int, int, int | None]] = []
        self.location = ""
        self.first = asyncio.Event()
        self.joined = self.connected_at = self.first_at = 0.0  # its answer, its connection up, its first frame
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        self.transceiver = transceiver
        self._next_seq: int | None = None
        self._whole, self._size = False, 0  # rtp mode: the frame being received has no sequence gap; its bytes
        if not probe and bulk == "tap":  # reassembled frames are counted where the decoder would have got them
            transceiver.receiver._RTCRtpReceiver__decoder_queue = CountingTap(self)
            # and no bandwidth estimate (a third of a receiver's CPU): the server relays packets as they came,
            # whatever REMB a viewer sends, and the probes still send theirs
            transceiver.receiver._RTCRtpReceiver__remote_bitrate_estimator = None
        self.pc.on("track", self._track)
        self.pc.on("connectionstatechange", self._state)

    def _state(self) -> None:
        if self.pc.connectionState == "connected" and not self.connected_at:
            self.connected_at = time.time()

    def counted_from_rtp(self) -> None:
        """--bulk rtp: this viewer's packets stop after SRTP (decrypted and authenticated) and are counted here:
        a frame is the packets up to the marker bit, whole when their sequence numbers have no gap (no receiver,
        no jitter buffer, no NACK: about half the tap's CPU, for ramps on a small machine)."""
        self.transceiver.receiver.transport._handle_rtp_data = self._rtp

    async def _rtp(self, data: bytes, arrival_time_ms: int) -> None:
        if len(data) < 12:
            return
        seq = int.from_bytes(data[2:4], "big")
        if seq != self._next_seq:
            self._whole = False
        self._next_seq = (seq + 1) & 0xFFFF
        self._size += len(data) - 12
        if data[1] & 0x80:  # the marker: the frame's last packet
            if self._whole:
                self.arrived(time.time(), int.from_bytes(data[4:8], "big"), self._size, None)
            self._whole, self._size = True, 0

    def _track(self, track) -> None:
        if self.probe:
            asyncio.get_running_loop().create_task(self._decode(track))

    async def _decode(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.arrived(time.time(), frame.pts, 0, read_number(frame))

    def arrived(self, at: float, timestamp: int, size: int, number: int | None) -> None:
        self.arrivals.append((at, timestamp, size, number))
        if not self.first.is_set():
            self.first_at = at
            self.first.set()

    def result(self, start: float, end: float) -> dict:
        mine = [a for a in self.arrivals if start <= a[0] < end]
        stamps = [a[1] for a in mine]
        lost = sum(max(0, round((b - a) % 2**32 / TICKS) - 1) for a, b in zip(stamps, stamps[1:]))
        out = {"probe": self.probe, "frames": len(mine), "fps": round(len(mine) / (end - start), 2), "lost": lost,
               "kbps": round(sum(a[2] for a in mine) * 8 / (end - start) / 1000, 1),
               "first_frame_s": round(self.first_at - self.joined, 3) if self.first_at else None,
               "connected_s": round(self.connected_at - self.joined, 3) if self.connected_at else None}
        if self.probe:
            out["numbers"] = [[a[3], a[0]] for a in mine]
            out["unreadable"] = sum(1 for a in mine if a[3] is None)
        return out


class CountingTap:
    """Stands in for a bulk viewer's decoder queue (on the event loop, where the receiver puts its frames); the
    stop sentinel reaches the idle decoder thread, which waits on `inner`."""

    def __init__(self, viewer: Viewer):
        self.viewer = viewer
        self.inner: queue.Queue = queue.Queue()

    def put(self, item) -> None:
        if item is None:
            self.inner.put(None)
            return
        _codec, frame = item
        self.viewer.arrived(time.time(), frame.timestamp, len(frame.data), None)

    def get(self, *args, **kw):
        return self.inner.get(*args, **kw)


async def watch(a) -> None:
    viewers = [Viewer(i < a.probes, a.bulk) for i in range(a.count)]
    stdin = await stdin_lines()
    gate = asyncio.Semaphore(a.concurrency)
    url = f"{a.url}/api/v1/livestreams/{a.stream}/whep"
    async with aiohttp.ClientSession() as http:
        async def join(v: Viewer) -> None:
            async with gate:
                v.location = await exchange(http, url, v.pc, None)
                if not v.probe and a.bulk == "rtp":
                    v.counted_from_rtp()
                v.joined = time.time()
                await asyncio.sleep(a.join_gap)
        await asyncio.gather(*(join(v) for v in viewers))
        try:
            await asyncio.wait_for(asyncio.gather(*(v.first.wait() for v in viewers)), a.ready_timeout)
        except asyncio.TimeoutError:
            pass
        say(f"ready {sum(v.first.is_set() for v in viewers)}")
        words = (await stdin.readline()).split()
        if len(words) == 3:  # else the parent is gone (its end of the pipe closed): just leave
            start, end = float(words[1]), float(words[2])
            await asyncio.sleep(max(0.0, end - time.time()))
            with open(a.out, "w") as f:
                json.dump([v.result(start, end) for v in viewers], f)
            say("done")
        for v in viewers:
            async with http.delete(a.url + v.location):
                pass
    await asyncio.gather(*(v.pc.close() for v in viewers))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m loadtests.media_peers")
    p.add_argument("role", choices=["publisher", "viewers"])
    p.add_argument("--url", required=True)
    p.add_argument("--stream", default="demo")
    p.add_argument("--token", help="publisher: the seller's bearer token")
    p.add_argument("--bitrate", type=int, default=1000, help="publisher: VP8 kbit/s, fixed (REMB ignored)")
    p.add_argument("--count", type=int, default=1, help="viewers: how many")
    p.add_argument("--probes", type=int, default=0, help="viewers: of them decoding (the first ones)")
    p.add_argument("--concurrency", type=int, default=10, help="viewers: WHEP offers at once")
    p.add_argument("--bulk", choices=["tap", "rtp"], default="tap", help="viewers: how bulk viewers count frames")
    p.add_argument("--join-gap", type=float, default=0.0, help="viewers: seconds each offer slot waits after its "
                                                               "answer")
    p.add_argument("--ready-timeout", type=float, default=30.0)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(publish(a) if a.role == "publisher" else watch(a))


if __name__ == "__main__":
    main()
