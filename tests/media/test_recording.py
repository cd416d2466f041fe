"""Recordings of the embedded media server with real aiortc peers over loopback: a seller publishes ~3 s of a
synthetic camera (and audio) by WHIP, then DELETEs; the `recordings` row is ready, PyAV opens the file and decodes
its frames and its duration is within 10 % of the live time, for VP8 (WebM) and H.264 (MP4). Also: the limit and the
off switch."""
from __future__ import annotations

import asyncio
import time

import av
import pytest
from aiortc import AudioStreamTrack, RTCRtpSender

from live.auth.principal import SYSTEM
from tests.helpers import until
from tests.media.test_whip import Bars, peer, sdp_post
from tests.rooms.harness import SELLER, start_live

LIVE_SECONDS = 3.0


async def rows(live, stream_id: str) -> list:
    async with live.services.db.tx(SYSTEM) as conn:
        return await conn.fetch("SELECT * FROM recordings WHERE livestream_id = $1::uuid ORDER BY started_at",
                                stream_id)


async def publish(live, token: str, *, codec: str | None = None, audio: bool = True):
    pc = peer()
    video = pc.addTransceiver(Bars(), direction="sendonly")
    if codec:
        video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == codec])
    if audio:
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    status, _, location = await sdp_post(live, "/livestreams/demo/whip", pc, token)
    assert status == 201
    return pc, location


async def record(live, seconds: float, **kw) -> tuple[dict, float]:
    """Publish for `seconds` of recorded time, DELETE, wait for the row to be finished: (row, live seconds)."""
    _, token = await live.user(SELLER, "seller")
    state = await live.demo_state()
    pc, location = await publish(live, token, **kw)
    try:
        recorder = live.services.recorder
        await until(lambda: any(s.writer.started_wall for s in recorder.segments.values()), what="the first frame")
        (segment,) = recorder.segments.values()
        began = time.monotonic()
        await asyncio.sleep(seconds)
        resp = await live.client.delete(location, headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 204
        lived = time.monotonic() - began
    finally:
        await pc.close()
    await until(lambda: not recorder.segments, what="the recording closed")
    (row,) = await rows(live, state.id)
    assert str(row["id"]) == segment.id
    return dict(row), lived


@pytest.mark.parametrize("codec, container, content_type", [("video/VP8", "webm", "video/webm"),
                                                            ("video/H264", "mp4", "video/mp4")])
async def test_a_published_stream_is_recorded_and_plays_back(live, codec, container, content_type):
    row, lived = await record(live, LIVE_SECONDS, codec=codec)
    assert row["status"] == "ready", row["error"]
    assert row["source"] == "embedded" and row["content_type"] == content_type
    assert row["file_name"].endswith("." + container) and (row["width"], row["height"]) == (320, 240)
    path = live.services.settings.data_dir / "recordings" / row["file_name"]
    assert row["bytes"] == path.stat().st_size > 0
    assert abs(row["duration_ms"] / 1000 - lived) <= 0.1 * lived, (row["duration_ms"], lived)
    assert row["ended_at"] > row["started_at"]
    with av.open(str(path)) as played:
        assert played.format.name.startswith("mov" if container == "mp4" else "matroska")
        assert abs(played.duration / 1e6 - lived) <= 0.1 * lived, (played.duration, lived)
        kinds = {s.type: s for s in played.streams}
        assert kinds["video"].codec_context.name == ("vp8" if container == "webm" else "h264")
        assert kinds["audio"].codec_context.extradata.startswith(b"OpusHead")
        decoded = [f for f in played.decode(video=0)]
    assert len(decoded) >= 20 * lived and all(f.width == 320 and f.height == 240 for f in decoded)
    with av.open(str(path)) as played:
        assert sum(1 for _ in played.decode(audio=0)) >= 40 * lived  # 20 ms Opus frames
    assert not list(path.parent.glob(".*.part"))  # only the complete file is left


async def test_the_length_limit_closes_the_recording(tmp_path, dsn, aiohttp_client):
    live = await start_live(tmp_path, dsn, aiohttp_client, recording_max_seconds=10)
    live.services.recorder.max_seconds = 1  # (the setting's floor is 10 s; a test cannot wait that long)
    _, token = await live.user(SELLER, "seller")
    state = await live.demo_state()
    pc, location = await publish(live, token, audio=False)
    try:
        await until(lambda: len(live.services.recorder.segments) == 1, what="recording")
        await until(lambda: not live.services.recorder.segments, what="the recording stopped at its limit")
        (row,) = await rows(live, state.id)
        assert row["status"] == "ready" and 900 <= row["duration_ms"] <= 1500, dict(row)
        assert live.services.embedded.publishing(state.id)  # the stream goes on, unrecorded
    finally:
        await live.client.delete(location, headers={"Authorization": f"Bearer {token}"})
        await pc.close()


async def test_the_size_limit_closes_the_recording(live):
    live.services.recorder.max_bytes = 2000  # (the setting's floor is 1 MiB)
    _, token = await live.user(SELLER, "seller")
    state = await live.demo_state()
    pc, location = await publish(live, token, audio=False)
    try:
        await until(lambda: len(live.services.recorder.segments) == 1, what="recording")
        await until(lambda: not live.services.recorder.segments, what="the recording stopped at its limit")
        (row,) = await rows(live, state.id)
        assert row["status"] == "ready" and 0 < row["bytes"] and row["duration_ms"] < 3000, dict(row)
        assert live.services.embedded.publishing(state.id)
    finally:
        await live.client.delete(location, headers={"Authorization": f"Bearer {token}"})
        await pc.close()


async def test_recording_can_be_turned_off(tmp_path, dsn, aiohttp_client):
    live = await start_live(tmp_path, dsn, aiohttp_client, recordings_enabled="false")
    _, token = await live.user(SELLER, "seller")
    state = await live.demo_state()
    pc, _ = await publish(live, token, audio=False)
    try:
        fanout = live.services.embedded.publishers[state.id].fanouts["video"]
        await until(lambda: fanout.frames > 10, what="frames")
        assert not live.services.recorder.segments and await rows(live, state.id) == []
    finally:
        await pc.close()


async def test_a_session_that_ends_while_its_row_is_written_leaves_no_segment_behind(live, monkeypatch):
    from live.media.embedded import recorder as recorder_module

    release = asyncio.Event()
    real_start = recorder_module.recordings_db.start

    async def slow_start(*args):
        await release.wait()
        return await real_start(*args)

    monkeypatch.setattr(recorder_module.recordings_db, "start", slow_start)
    _, token = await live.user(SELLER, "seller")
    state = await live.demo_state()
    pc, location = await publish(live, token, audio=False)
    try:
        await until(lambda: live.services.embedded.publishing(state.id) and
                    live.services.embedded.publishers[state.id].announced, what="connected")
        # `started` waits on its row; the seller leaves meanwhile (the DELETE waits for `ended`, not for `started`)
        assert (await live.client.delete(location, headers={"Authorization": f"Bearer {token}"})).status == 204
    finally:
        await pc.close()
    release.set()
    await until(lambda: rows(live, state.id), what="the row")
    (row,) = await rows(live, state.id)
    await until(lambda: _status(live, row["id"]), what="the row finished")  # failed: no frame came after it
    assert not live.services.recorder.segments


async def _status(live, recording_id) -> bool:
    async with live.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT status <> 'recording' FROM recordings WHERE id = $1", recording_id)
