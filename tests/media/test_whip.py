"""The embedded media server over real aiortc peers on loopback, against the real app: a seller publishes a
synthetic video track by WHIP, two viewers play it by WHEP and decode its frames (relayed encoded: nothing is
decoded on the server), the room hears `media:status`; the refusals (409, 403, 401, 415, 400, 413) and DELETE."""
from __future__ import annotations

import asyncio
import fractions

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from tests.rooms.harness import API, SELLER


class Bars(VideoStreamTrack):
    """A synthetic camera: 320x240 frames whose colour changes every frame."""

    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self.n += 1
        frame = av.VideoFrame(320, 240, "yuv420p")
        for plane, value in zip(frame.planes, (self.n * 7 % 256, 128, 128)):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base or fractions.Fraction(1, 90000)
        return frame


def peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def sdp_post(live, path: str, pc: RTCPeerConnection, token: str | None = None):
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", **({"Authorization": f"Bearer {token}"} if token else {})}
    resp = await live.client.post(API + path, data=pc.localDescription.sdp, headers=headers)
    if resp.status != 201:
        return resp.status, await resp.json(), None
    await pc.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
    return resp.status, resp.content_type, resp.headers["Location"]


async def publisher(live, token: str):
    pc = peer()
    pc.addTransceiver(Bars(), direction="sendonly")
    status, body, location = await sdp_post(live, "/livestreams/demo/whip", pc, token)
    return pc, status, body, location


async def viewer(live, token: str | None = None):
    pc = peer()
    pc.addTransceiver("video", direction="recvonly")
    tracks: asyncio.Queue = asyncio.Queue()
    pc.on("track", tracks.put_nowait)
    status, body, location = await sdp_post(live, "/livestreams/demo/whep", pc, token)
    return pc, tracks, status, body, location


async def frames(tracks: asyncio.Queue, n: int = 3) -> list[av.VideoFrame]:
    track = await asyncio.wait_for(tracks.get(), 10)
    return [await asyncio.wait_for(track.recv(), 10) for _ in range(n)]


async def test_publish_and_two_viewers_decode_the_relayed_frames(live):
    _, seller_token = await live.user(SELLER, "seller")
    room = await live.viewer("room-watcher")
    pub, status, ctype, location = await publisher(live, seller_token)
    pcs = [pub]
    try:
        assert status == 201 and ctype == "application/sdp", ctype
        state = await live.demo_state()
        assert location.startswith(f"{API}/livestreams/{state.id}/whip/")
        assert (await room.wait_for("media:status"))["publishing"] is True
        # one publisher per stream
        other, status, body, _ = await publisher(live, seller_token)
        pcs.append(other)
        assert status == 409 and body["error"]["code"] == "conflict"
        got = []
        for _ in range(2):
            pc, tracks, status, _, where = await viewer(live)
            pcs.append(pc)
            assert status == 201 and "/whep/" in where
            got.append(await frames(tracks))
        for seen in got:
            assert all(f.width == 320 and f.height == 240 for f in seen)
        media = live.services.embedded
        session = media.publishers[state.id]
        assert session.fanouts["video"].viewers == 2 and session.fanouts["video"].frames > 0
        # relayed, not decoded: the server's receiving track never got a decoded frame
        receiver = session.pc.getTransceivers()[0].receiver
        assert receiver.track._queue.qsize() == 0
        # DELETE ends it: the room hears it, the viewers' tracks end, the session is gone
        resp = await live.client.delete(location, headers={"Authorization": f"Bearer {seller_token}"})
        assert resp.status == 204
        assert (await room.wait_for("media:status", lambda d: d["publishing"] is False))["stream_id"] == state.id
        assert not media.sessions
        resp = await live.client.delete(location, headers={"Authorization": f"Bearer {seller_token}"})
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    finally:
        for pc in pcs:
            await pc.close()


async def test_refusals(live):
    _, seller_token = await live.user(SELLER, "seller")
    _, customer = await live.user("just-a-buyer")
    _, other_seller = await live.user("other-seller", "seller")
    # a viewer before anyone publishes
    pc, _, status, body, _ = await viewer(live)
    await pc.close()
    assert status == 409 and body["error"]["code"] == "conflict"
    for token, code in ((None, 401), (customer, 403), (other_seller, 403)):
        pc, status, body, _ = await publisher(live, token)
        await pc.close()
        assert status == code and "error" in body, (token, body)
    url = f"{API}/livestreams/demo/whip"
    auth = {"Authorization": f"Bearer {seller_token}"}
    for data, ctype, code, err in ((b"v=0\r\n", "application/json", 415, "unsupported_media_type"),
                                   (b"hello", "application/sdp", 400, "invalid"),
                                   (b"\xff\xfe", "application/sdp", 400, "invalid"),
                                   (b"v=0\r\n" + b"a" * (65 * 1024), "application/sdp", 413, "payload_too_large")):
        resp = await live.client.post(url, data=data, headers={**auth, "Content-Type": ctype})
        assert resp.status == code and (await resp.json())["error"]["code"] == err, (code, await resp.text())
    assert not live.services.embedded.sessions


async def test_a_banned_user_cannot_watch(live):
    _, seller_token = await live.user(SELLER, "seller")
    troll_id, troll = await live.user("whep-troll")
    seller = await live.seller()
    assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": troll_id, "reason": "spam"}))["ok"]
    pub, status, _, location = await publisher(live, seller_token)
    pcs = [pub]
    try:
        assert status == 201
        pc, _, status, body, _ = await viewer(live, troll)
        pcs.append(pc)
        assert status == 403 and body["error"]["code"] == "banned"
        pc, tracks, status, _, where = await viewer(live)  # an anonymous viewer may watch, and leave
        pcs.append(pc)
        assert status == 201 and len(await frames(tracks, 1)) == 1
        assert (await live.client.delete(where)).status == 204
        assert (await live.client.delete(where)).status == 404
    finally:
        for pc in pcs:
            await pc.close()


async def test_an_offer_without_media_and_an_ended_stream_are_refused(live):
    _, seller_token = await live.user(SELLER, "seller")
    pc = peer()
    pc.createDataChannel("chat")  # an offer with only a data channel: nothing to publish
    status, body, _ = await sdp_post(live, "/livestreams/demo/whip", pc, seller_token)
    await pc.close()
    assert status == 422 and body["error"]["code"] == "validation_failed"
    assert (await live.api("POST", "/livestreams/demo/end", seller_token))[0] == 200
    pc, status, body, _ = await publisher(live, seller_token)
    await pc.close()
    assert status == 409 and body["error"]["code"] == "stream_not_live"
    assert not live.services.embedded.sessions
