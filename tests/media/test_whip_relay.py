"""The embedded media server's relay: audio and video together, a joining viewer's keyframe request reaching the
publisher (rate-limited), the keyframe detection, and MEDIA_MAX_SESSIONS (503 past it)."""
from __future__ import annotations

import asyncio
import time

from aiortc import AudioStreamTrack

from live.media.embedded.relay import KEYFRAME_MIN_INTERVAL, Fanout, is_keyframe
from tests.helpers import until
from tests.media.test_whip import Bars, frames, peer, sdp_post, viewer
from tests.rooms.harness import SELLER, start_live


async def test_audio_and_video_relayed_and_the_viewer_pli_reaches_the_publisher(live):
    _, seller_token = await live.user(SELLER, "seller")
    pub = peer()
    video = pub.addTransceiver(Bars(), direction="sendonly")
    pub.addTransceiver(AudioStreamTrack(), direction="sendonly")
    keyframes = []
    inner = video.sender._send_keyframe
    video.sender._send_keyframe = lambda: (keyframes.append(1), inner())  # the PLIs the publisher receives
    pcs = [pub]
    try:
        status, _, _ = await sdp_post(live, "/livestreams/demo/whip", pub, seller_token)
        assert status == 201
        state = await live.demo_state()
        fanout = live.services.embedded.publishers[state.id].fanouts["video"]
        await until(lambda: fanout.frames > 0, what="the publisher's first frames")  # a viewer joins mid-stream
        keyframes.clear()
        pc = peer()
        pcs.append(pc)
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        tracks: asyncio.Queue = asyncio.Queue()
        pc.on("track", tracks.put_nowait)
        status, _, _ = await sdp_post(live, "/livestreams/demo/whep", pc, None)
        assert status == 201
        got = {}
        for _ in range(2):
            track = await asyncio.wait_for(tracks.get(), 10)
            got[track.kind] = await asyncio.wait_for(track.recv(), 10)
        assert got["video"].width == 320 and got["audio"].sample_rate == 48000
        await until(lambda: keyframes, what="the viewer's keyframe request at the publisher")
        # a second viewer plays too, from a keyframe
        pc2, tracks2, status, _, _ = await viewer(live)
        pcs.append(pc2)
        assert status == 201 and len(await frames(tracks2, 2)) == 2
    finally:
        for pc in pcs:
            await pc.close()


async def test_keyframe_requests_are_rate_limited_deferred_and_keyframes_recognised():
    sent = []
    fanout = Fanout("video", "video/VP8", 90000, lambda: sent.append(time.monotonic()) or True)
    for _ in range(10):
        fanout.request_keyframe()
    assert len(sent) == 1  # at most one per KEYFRAME_MIN_INTERVAL
    await asyncio.sleep(KEYFRAME_MIN_INTERVAL + 0.2)
    # the requests within the interval are not dropped: one more PLI at its end (a late joiner's keyframe)
    assert len(sent) == 2 and sent[1] - sent[0] >= KEYFRAME_MIN_INTERVAL - 0.01
    fanout.request_keyframe()  # deferred again; a keyframe arriving first answers it, and no PLI goes out
    fanout.push(b"\x10key", 0)
    await asyncio.sleep(KEYFRAME_MIN_INTERVAL + 0.2)
    assert len(sent) == 2
    assert is_keyframe("video/VP8", b"\x10\x02") and not is_keyframe("video/VP8", b"\x11\x02")
    assert is_keyframe("video/H264", b"\x00\x00\x00\x01\x67\x42") and is_keyframe("video/H264", b"\x00\x00\x01\x65")
    assert not is_keyframe("video/H264", b"\x00\x00\x00\x01\x41\x9a")
    # a viewer that has not had a keyframe gets nothing; then everything from the keyframe on
    relay = fanout.track()
    fanout.push(b"\x11delta", 0)
    fanout.push(b"\x10key", 3000)
    fanout.push(b"\x11delta", 6000)
    assert relay._queue.qsize() == 2 and fanout.viewers == 1
    # a viewer joining right after a keyframe (its request deferred) still gets one: the deferred PLI goes out
    late = fanout.track()
    before = len(sent)
    for i in range(20):  # delta frames only, 0.6 s of them: the waiting viewer keeps asking, rate-limited
        fanout.push(b"\x11delta", 9000 + 3000 * i)
        await asyncio.sleep(0.03)
    assert 1 <= len(sent) - before <= 3 and late._queue.qsize() == 0
    fanout.push(b"\x10key", 90000)
    assert late._queue.qsize() == 1
    fanout.end()
    assert relay._queue.qsize() == 3 + 21 and fanout.viewers == 0  # the end marker


async def test_sessions_are_bounded_per_worker(tmp_path, dsn, aiohttp_client):
    live = await start_live(tmp_path, dsn, aiohttp_client, media_max_sessions=1)
    _, seller_token = await live.user(SELLER, "seller")
    pub = peer()
    pub.addTransceiver(Bars(), direction="sendonly")
    try:
        assert (await sdp_post(live, "/livestreams/demo/whip", pub, seller_token))[0] == 201
        pc, _, status, body, _ = await viewer(live)
        await pc.close()
        assert status == 503 and body["error"]["code"] == "unavailable"
    finally:
        await pub.close()


async def test_an_h264_publisher_is_relayed_in_h264(live):
    from aiortc import RTCRtpSender

    _, seller_token = await live.user(SELLER, "seller")
    pub = peer()
    video = pub.addTransceiver(Bars(), direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"])
    pcs = [pub]
    try:
        assert (await sdp_post(live, "/livestreams/demo/whip", pub, seller_token))[0] == 201
        state = await live.demo_state()
        assert live.services.embedded.publishers[state.id].fanouts["video"].mime == "video/H264"
        pc, tracks, status, _, _ = await viewer(live)
        pcs.append(pc)
        assert status == 201 and "H264" in pc.remoteDescription.sdp and "VP8" not in pc.remoteDescription.sdp
        assert all(f.width == 320 for f in await frames(tracks, 2))
    finally:
        for pc in pcs:
            await pc.close()


async def test_a_late_viewer_decodes_its_first_frame_within_a_second(live):
    """A viewer joining mid-stream, seconds after the publisher's first keyframe and right after another viewer
    (whose keyframe request was just sent: this one's is deferred, not dropped), decodes a frame within 1.0 s of
    its connection coming up."""
    _, seller_token = await live.user(SELLER, "seller")
    pub = peer()
    pub.addTransceiver(Bars(), direction="sendonly")
    pcs = [pub]
    try:
        status, _, _ = await sdp_post(live, "/livestreams/demo/whip", pub, seller_token)
        assert status == 201
        state = await live.demo_state()
        fanout = live.services.embedded.publishers[state.id].fanouts["video"]
        await until(lambda: fanout.frames > 0, what="the publisher's first frames")
        await asyncio.sleep(3)  # well past the first keyframe (aiortc's next periodic one is far away)
        waits = []
        for _ in range(2):  # the second right after the first
            pc = peer()
            pcs.append(pc)
            pc.addTransceiver("video", direction="recvonly")
            up = asyncio.get_running_loop().create_future()
            pc.on("connectionstatechange", lambda pc=pc, up=up: pc.connectionState == "connected"
                  and not up.done() and up.set_result(time.monotonic()))
            tracks: asyncio.Queue = asyncio.Queue()
            pc.on("track", tracks.put_nowait)
            status, _, _ = await sdp_post(live, "/livestreams/demo/whep", pc, None)
            assert status == 201
            waits.append((pc, up, tracks))

        async def first_frame(up, tracks) -> float:
            track = await asyncio.wait_for(tracks.get(), 10)
            assert (await asyncio.wait_for(track.recv(), 10)).width == 320
            return time.monotonic() - await asyncio.wait_for(up, 5)

        seconds = await asyncio.gather(*(first_frame(up, tracks) for _, up, tracks in waits))
        assert all(s <= 1.0 for s in seconds), seconds
    finally:
        for pc in pcs:
            await pc.close()
