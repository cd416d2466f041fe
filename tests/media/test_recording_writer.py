"""The recording writer alone, fed real encoded frames (libvpx): a full queue drops frames up to the next keyframe
and asks for one, so does a writer that starts between keyframes, and what was written still decodes; RTP
timestamps wrap; audio starts where it arrived; a frame whose size cannot be read fails the recording and leaves no
file; picture sizes read from VP8 and H.264 keyframe headers."""
from __future__ import annotations

import asyncio
import threading
from fractions import Fraction

import av

from live.media.embedded import writer as writer_module
from live.media.embedded.headers import frame_size
from live.media.embedded.writer import SegmentWriter, _Clock


def vp8_frames(n: int, keyframe_every: int = 10) -> list[tuple[bytes, bool]]:
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt, enc.time_base = 160, 120, "yuv420p", Fraction(1, 30)
    enc.gop_size = keyframe_every
    out = []
    for i in range(n):
        frame = av.VideoFrame(160, 120, "yuv420p")
        frame.pts = i
        out += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(frame)]
    return out + [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(None)]


async def test_a_full_queue_drops_to_the_next_keyframe_and_the_file_still_plays(tmp_path, monkeypatch):
    gate = threading.Event()
    real = writer_module.frame_size
    monkeypatch.setattr(writer_module, "frame_size", lambda mime, data: gate.wait(10) and real(mime, data))
    asked = []
    writer = SegmentWriter(tmp_path / "seg.webm", "video/VP8", audio=False, ask_keyframe=lambda: asked.append(1),
                           max_queue=5)
    frames = vp8_frames(40)
    assert frames[0][1] and sum(k for _, k in frames) >= 3
    for i, (data, key) in enumerate(frames):
        writer.video(data, (2**32 - 6000 + i * 3000) % 2**32, key)  # the RTP clock wraps after two frames
        await asyncio.sleep(0)
    # dropped while full, a keyframe asked for (the fanout limits how often that reaches the publisher)
    assert writer.dropped > 0 and asked
    gate.set()
    result = await writer.close()
    assert result.ok and (result.width, result.height) == (160, 120), result
    with av.open(str(tmp_path / "seg.webm")) as played:
        decoded = list(played.decode(video=0))
    assert 5 <= len(decoded) < 40
    assert not list(tmp_path.glob(".*"))


def test_timestamps_unwrap_and_never_go_back():
    clock = _Clock(2**32 - 100, 500)
    assert [clock.pts(t) for t in (2**32 - 100, 2**32 - 10, 20, 20, 10, 2000)] == [500, 590, 620, 621, 622, 2600]


async def test_audio_starts_where_it_arrived_and_a_bad_first_frame_fails(tmp_path):
    asked = []
    writer = SegmentWriter(tmp_path / "a.webm", "video/VP8", audio=True, ask_keyframe=lambda: asked.append(1))
    frames = vp8_frames(3)
    writer.video(frames[1][0], 0, False)  # joined after a keyframe: a keyframe is asked for, the frame not kept
    assert asked == [1] and writer.started_wall is None
    writer.audio(b"\xfc\xff\xfe", 0)  # before the first keyframe: not kept
    writer.video(frames[0][0], 1000, True)
    await asyncio.sleep(0.2)
    writer.audio(b"\xfc\xff\xfe", 777)
    writer.audio(b"\xfc\xff\xfe", 777 + 960)
    assert 0.15 * 48000 <= writer._audio.last - 960 <= 0.5 * 48000  # placed ~0.2 s in
    assert (await writer.close()).ok
    bad = SegmentWriter(tmp_path / "b.webm", "video/VP8", audio=False)
    bad.video(b"\x10\x00\x00not a vp8 header", 0, True)
    result = await bad.close()
    assert not result.ok and "picture size" in result.error
    assert not (tmp_path / "b.webm").exists() and not list(tmp_path.glob(".b.webm*"))


def test_frame_sizes_from_keyframe_headers():
    for codec, mime in (("libx264", "video/H264"), ("libvpx", "video/VP8")):
        ctx = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = 642, 362, "yuv420p"
        ctx.time_base = Fraction(1, 30)
        frame = av.VideoFrame(642, 362, "yuv420p")
        frame.pts = 0
        packets = list(ctx.encode(frame)) + list(ctx.encode(None))
        assert frame_size(mime, bytes(packets[0])) == (642, 362)
    assert frame_size("video/VP8", b"\x11\x00\x00") is None  # not a keyframe
    assert frame_size("video/H264", b"\x00\x00\x01\x65\x88") is None  # no SPS
    assert frame_size("video/H264", b"\x00\x00\x01\x67\x42") is None  # a cut SPS


async def test_the_queue_is_bounded_in_bytes_too(tmp_path, monkeypatch):
    gate = threading.Event()
    real = writer_module.frame_size
    monkeypatch.setattr(writer_module, "frame_size", lambda mime, data: gate.wait(10) and real(mime, data))
    frames = vp8_frames(30)
    limit = len(frames[0][0]) + 2 * len(frames[1][0])
    monkeypatch.setattr(writer_module, "WRITER_QUEUE_BYTES", limit)
    writer = SegmentWriter(tmp_path / "seg.webm", "video/VP8", audio=False)
    for i, (data, key) in enumerate(frames):
        writer.video(data, i * 3000, key)
    # 30 frames, far below its 300-frame bound: dropped by bytes (how many stay queued depends on whether the writer
    # thread has taken the keyframe off the queue yet, and on the frames' sizes: not a fixed count)
    assert writer.dropped > 0 and 0 < writer._queued_bytes <= limit
    assert sum(len(item[1]) for item in list(writer._queue.queue) if item) == writer._queued_bytes
    gate.set()
    assert (await writer.close()).ok


async def test_a_picture_size_change_midway_is_recorded_as_sent(tmp_path):
    def encoded(codec: str, width: int, height: int, n: int) -> list[tuple[bytes, bool]]:
        enc = av.CodecContext.create(codec, "w")
        enc.width, enc.height, enc.pix_fmt, enc.time_base = width, height, "yuv420p", Fraction(1, 30)
        if codec == "libx264":
            enc.options = {"tune": "zerolatency", "bf": "0"}
        out = []
        for i in range(n):
            frame = av.VideoFrame(width, height, "yuv420p")
            frame.pts = i
            out += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(frame)]
        return out + [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(None)]

    for codec, mime, ext in (("libvpx", "video/VP8", "webm"), ("libx264", "video/H264", "mp4")):
        writer = SegmentWriter(tmp_path / f"x.{ext}", mime, audio=False)
        for i, (data, key) in enumerate(encoded(codec, 320, 240, 20) + encoded(codec, 160, 120, 20)):
            writer.video(data, i * 3000, key)
        result = await writer.close()
        assert result.ok and (result.width, result.height) == (320, 240)
        with av.open(str(tmp_path / f"x.{ext}")) as played:
            sizes = [(f.width, f.height) for f in played.decode(video=0)]
        assert len(sizes) >= 38 and sizes[0] == (320, 240) and sizes[-1] == (160, 120), (codec, len(sizes))


async def test_a_write_failing_after_the_last_frame_fails_the_recording_and_close_returns(tmp_path):
    target = tmp_path / "seg.webm"
    target.mkdir()
    (target / "x").write_bytes(b"x")  # a non-empty directory: the final rename fails after the end marker
    writer = SegmentWriter(target, "video/VP8", audio=False)
    for i, (data, key) in enumerate(vp8_frames(10)):
        writer.video(data, i * 3000, key)
    result = await asyncio.wait_for(writer.close(), 5)
    assert not result.ok and result.error.startswith(("OSError", "IsADirectoryError")), result
    assert not list(tmp_path.glob(".*"))  # the part file removed
