"""The embedded media server's sessions at their edges, over real aiortc peers on loopback and real Socket.IO
clients: a viewer whose connection never came up leaves the publisher's fanout when its session ends; a publisher
that ends while its `started` observers still run is never announced publishing, and its room is not followed."""
from __future__ import annotations

import asyncio

import pytest

from live.errors import DomainError
from tests.helpers import until
from tests.media.test_recording_writer import vp8_frames
from tests.media.test_whip import peer, publisher
from tests.media.test_whip_races import offer_of
from tests.rooms.harness import API, SELLER, start_live


async def test_viewers_that_never_connected_leave_the_fanout(live):
    _, seller_token = await live.user(SELLER, "seller")
    pub, status, _, _ = await publisher(live, seller_token)
    pcs = [pub]
    try:
        assert status == 201
        state = await live.demo_state()
        fanout = live.services.embedded.publishers[state.id].fanouts["video"]
        await until(lambda: fanout.frames > 0, what="the publisher's first frames")
        where = []
        for _ in range(5):  # offers whose answers are never applied: those connections never come up
            pc = peer()
            pcs.append(pc)
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            resp = await live.client.post(f"{API}/livestreams/demo/whep", data=pc.localDescription.sdp,
                                          headers={"Content-Type": "application/sdp"})
            assert resp.status == 201
            where.append(resp.headers["Location"])
        assert fanout.viewers == 5
        for location in where:
            assert (await live.client.delete(location)).status == 204
        assert fanout.viewers == 0  # the relay tracks are gone (not filling up and asking for keyframes)
    finally:
        for pc in pcs:
            await pc.close()


class SlowStart:
    """An observer whose `started` waits until it is let go (as the recorder's database insert may)."""

    def __init__(self):
        self.entered, self.go = asyncio.Event(), asyncio.Event()

    async def started(self, session) -> None:
        self.entered.set()
        await self.go.wait()

    async def ended(self, session) -> None:
        pass


async def test_a_publisher_ending_while_its_start_is_observed_is_not_announced(live):
    _, seller_token = await live.user(SELLER, "seller")
    room = await live.viewer("slow-start-watcher")
    media = live.services.embedded
    slow = SlowStart()
    media.observers.insert(0, slow)
    pub, status, _, location = await publisher(live, seller_token)
    try:
        assert status == 201
        await asyncio.wait_for(slow.entered.wait(), 10)
        resp = await live.client.delete(location, headers={"Authorization": f"Bearer {seller_token}"})
        assert resp.status == 204
        slow.go.set()
        await asyncio.sleep(0.2)
        await live.barrier(room)
        assert room.events.get("media:status", []) == []  # neither publishing nor (never told) stopped
        state = await live.demo_state()
        assert state.id not in live.services.rooms._media_rooms
        assert not media.sessions
    finally:
        await pub.close()


async def test_viewers_leave_a_reserve_for_publishers_and_whep_has_its_own_limit(tmp_path, dsn, aiohttp_client):
    """MEDIA_MAX_SESSIONS 10: a tenth (PUBLISHER_RESERVE at most) is the publishers' alone; WHEP offers are rate
    limited per caller (`whep`, 30 a minute by default)."""
    live = await start_live(tmp_path, dsn, aiohttp_client, media_max_sessions=10, rate_limits="whep=5/60")
    _, seller_token = await live.user(SELLER, "seller")
    pub, status, _, _ = await publisher(live, seller_token)
    pcs = [pub]
    media = live.services.embedded
    try:
        assert status == 201
        state = await live.demo_state()
        for _ in range(8):  # 1 publisher + 8 viewers = 9 = 10 - the reserve of 1
            pcs.append(pc := peer())
            await media.play_here(state.id, await offer_of(pc))
        pcs.append(pc := peer())
        with pytest.raises(DomainError) as full:
            await media.play_here(state.id, await offer_of(pc))
        assert full.value.code == "unavailable" and len(media.sessions) == 9
        media._room("publisher")  # a publisher still has room
        codes = []
        for _ in range(6):
            resp = await live.client.post(f"{API}/livestreams/demo/whep", data=b"hello",
                                          headers={"Content-Type": "application/sdp"})
            codes.append(resp.status)
        assert codes == [400] * 5 + [429], codes
    finally:
        for pc in pcs:
            await pc.close()


async def test_media_status_carries_the_picture_size(live):
    _, seller_token = await live.user(SELLER, "seller")
    room = await live.viewer("size-watcher")
    pub, status, _, _ = await publisher(live, seller_token)  # Bars: 320x240 VP8
    try:
        assert status == 201
        told = await room.wait_for("media:status", lambda d: d["publishing"] and "width" in d)
        assert (told["width"], told["height"]) == (320, 240)
        state = await live.demo_state()
        session = live.services.embedded.publishers[state.id]
        # a new size (as a keyframe of another resolution would say) is announced again; the same is not
        session.fanouts["video"].push(vp8_frames(1)[0][0], 0)  # a 160x120 VP8 keyframe
        again = await room.wait_for("media:status", lambda d: d.get("width") == 160)
        assert again["publishing"] is True and again["height"] == 120
    finally:
        await pub.close()
