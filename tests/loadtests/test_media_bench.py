"""The media benchmark (`python -m loadtests media`): its frame numbers survive a real VP8 encode and decode and
a damaged number is refused; latency and a step's limits from known inputs; and a tiny run in a subprocess (a fresh
test database, nothing pinned, 3 viewers for 2 s) whose report has its structure and shows frames flowing to every
viewer, the probes' numbers read and matched to the publisher's send times."""
from __future__ import annotations

import asyncio
import json
import sys
import time
from argparse import Namespace
from pathlib import Path

from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame

from loadtests.media_peers import BLOCK, NumberedTrack, Viewer, read_number
from loadtests.media_report import frame_of, latencies, step_result

ROOT = Path(__file__).resolve().parents[2]


async def test_frame_numbers_survive_vp8_and_a_damaged_one_is_refused():
    track = NumberedTrack()
    encoder, decoder = Vp8Encoder(), Vp8Decoder()
    read = []
    for i in range(40):
        frame = await track.recv()
        payloads, timestamp = encoder.encode(frame, force_keyframe=i == 0)
        (decoded,) = decoder.decode(JitterFrame(b"".join(vp8_depayload(p) for p in payloads), timestamp))
        assert (decoded.width, decoded.height) == (640, 360)
        read.append(read_number(decoded))
    assert read == list(range(40)) and len(track.sent) == 40
    assert all(a < b for a, b in zip(track.sent, track.sent[1:]))  # send times
    plane = decoded.planes[0]  # the check row of block 3 painted like its bit row: not a number
    data = bytearray(bytes(plane))
    for y in range(BLOCK, 2 * BLOCK):
        x = y * plane.line_size + 3 * BLOCK
        data[x:x + BLOCK] = bytes(data[(y - BLOCK) * plane.line_size + 3 * BLOCK:][:BLOCK])
    plane.update(bytes(data))
    assert read_number(decoded) is None


async def test_rtp_counting_takes_only_whole_frames():
    viewer = Viewer(probe=False, bulk="rtp")

    def rtp(seq: int, timestamp: int, marker: bool, size: int = 100) -> bytes:
        return bytes([0x80, 0x80 * marker | 96]) + seq.to_bytes(2, "big") + timestamp.to_bytes(4, "big") + \
            bytes(4) + bytes(size)

    def ts(k: int) -> int:  # frame k's timestamp: the clock wraps between frames 2 and 3
        return (2**32 - 6000 + 3000 * k) % 2**32

    packets = [rtp(9, ts(0), True),  # the end of a frame it joined in the middle of: not counted
               rtp(10, ts(1), False), rtp(11, ts(1), True),  # whole
               rtp(12, ts(2), False), rtp(14, ts(2), True),  # a packet missing: not counted
               rtp(15, ts(3), False), rtp(16, ts(3), False), rtp(17, ts(3), True, 50),  # whole, past the wrap
               rtp(18, ts(4), True)]  # whole
    for packet in packets:
        await viewer._rtp(packet, 0)
    assert [(a[1], a[2]) for a in viewer.arrivals] == [(ts(1), 200), (ts(3), 250), (ts(4), 100)]
    result = viewer.result(0, time.time() + 1)
    assert (result["frames"], result["lost"]) == (3, 1)  # frame 2
    await viewer.pc.close()


def test_latency_and_the_limits_of_a_step():
    sent = [100.0 + i / 30 for i in range(100)]
    numbers = [[i, sent[i] + 0.05 + (0.2 if i == 99 else 0)] for i in range(100)] + [[None, 0.0], [500, 0.0]]
    lat = latencies(numbers, sent)
    assert frame_of(5, 69999.5, [float(i) for i in range(70000)]) == 5 + 65536  # the number after its wrap
    assert frame_of(5, 100.0, [float(i) for i in range(70000)]) == 5 and frame_of(5, 1.0, [2.0] * 9) is None
    assert (lat["p50"], lat["p95"], lat["max"], lat["frames"], lat["unmatched"]) == (50.0, 50.0, 250.0, 100, 2)
    a = Namespace(min_fps=25.0, max_cpu=95.0, client_cpus="1", seconds=10.0)
    viewers = [{"probe": False, "fps": 30.0, "lost": 0, "kbps": 900.0, "first_frame_s": 0.2, "connected_s": 0.1},
               {"probe": True, "fps": 29.0, "lost": 3, "kbps": 0.0, "unreadable": 1, "numbers": [[1, 2.0]],
                "first_frame_s": None, "connected_s": 0.3}]
    cpu = {"server": 20.0, "publisher": 10.0, "viewers": 30.0}
    step = step_result(2, 2, 1.0, viewers, cpu, [0.5], a)
    assert step["limit"] is None and step["fps"]["min"] == 29.0 and step["lost"] == {"total": 3, "max": 3}
    assert step["first_frame_s"] == {"median": 0.2, "max": 0.2, "none": 1}
    assert step["connected_s"] == {"median": 0.1, "max": 0.3}
    assert step["per_core_linear"] == 10 and step["cpu"]["clients"] == 40.0 and step["numbers"] == [[1, 2.0]]
    viewers[0]["fps"] = 24.0
    step = step_result(3, 2, 1.0, viewers, {**cpu, "server": 96.0, "viewers": 90.0}, [0.5], a)
    assert step["limit"] == "a viewer < 25 fps, worker >= 95 % CPU, 1 viewers without a frame, the clients' CPUs " \
                            "are full"
    step = step_result(2, 2, 1.0, viewers, cpu, [0.5], a, {"server": 35.0})
    assert step["limit"] == "a viewer < 25 fps, the worker waited for a CPU 35 % of the window: a busy machine, " \
                            "not its own cost"
    assert step_result(2, 2, 1.0, [viewers[1]], cpu, [0.5], a, {"server": 35.0})["limit"] is None


async def test_a_tiny_media_run_reports_frames_at_every_viewer(dsn, tmp_path):
    out = tmp_path / "media"
    t = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests", "media", "--database-url", dsn, "--out", str(out), "--viewers", "3",
        "--probes", "1", "--per-proc", "3", "--seconds", "2", "--warmup", "0.5",
        "--concurrency", "1", "--join-gap", "0.6", "--server-cpus", "",
        "--client-cpus", "", cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode in (0, 1), stdout.decode()[-3000:] + stderr.decode()[-3000:]
    report = json.loads((out / "media.json").read_text())
    assert report["command"].startswith("python -m loadtests media --database-url")
    assert report["publisher"]["frames"] > 30 and report["capacity"] is None
    assert report["publisher"]["keyframe_requests"] >= 1  # the first viewer's join asks for one
    (step,) = report["steps"]
    # one at a time, 0.6 s apart: each join asks the publisher for its own keyframe (the server sends one PLI per 0.5 s)
    assert (step["viewers"], step["probes"], step["ready"]) == (3, 1, 3) and step["first_frame_s"]["max"] < 10
    assert 0 < step["connected_s"]["max"] <= step["first_frame_s"]["max"]
    assert step["fps"]["min"] > 5 and step["kbps_median"] > 50  # frames flowed to every viewer, bulk ones counted
    assert step["latency_ms"]["frames"] > 10 and step["latency_ms"]["unmatched"] == 0 and step["unreadable"] == 0
    assert 0 < step["latency_ms"]["p50"] < 2000
    assert step["cpu"]["server"] > 0 and step["cpu"]["viewers"] > 0 and step["cpu"]["publisher"] > 0
    assert [c["name"] for c in step["checks"]] == ["every viewer >= 25.0 fps", "every viewer joined",
                                                   "worker CPU <= 100 % of a core", "latency p95 <= 300 ms"]
    text = (out / "media.txt").read_text()
    assert "| 3 |" in text and "check " in text
    assert time.monotonic() - t < 60
