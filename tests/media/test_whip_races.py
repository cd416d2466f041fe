"""The embedded media server against moderation and the stream's end landing mid-request, real aiortc peers over
loopback and real Socket.IO clients: a ban while a WHEP offer's body is still coming is refused (403), and the
owner of the publisher refuses a banned viewer itself (a forwarded offer); a stream ended while a WHIP request
waited gets no publisher (409), nor does one that ended before the publisher's connection came up."""
from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCSessionDescription

from db import streams as streams_db
from live.auth.principal import SYSTEM
from live.errors import DomainError
from tests.helpers import until
from tests.media.test_whip import Bars, peer, publisher
from tests.rooms.harness import API, SELLER


async def offer_of(pc) -> str:
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription.sdp


async def test_a_ban_while_the_offer_is_read_is_not_missed(live):
    _, seller_token = await live.user(SELLER, "seller")
    troll_id, troll_token = await live.user("slow-troll")
    seller = await live.seller()
    pub, status, _, _ = await publisher(live, seller_token)
    pcs = [pub]
    try:
        assert status == 201
        pcs.append(pc := peer())
        sdp = (await offer_of(pc)).encode()
        half, banned = asyncio.Event(), asyncio.Event()

        async def body():
            yield sdp[:100]
            half.set()
            await banned.wait()  # the ban lands meanwhile
            yield sdp[100:]

        post = asyncio.create_task(live.client.post(f"{API}/livestreams/demo/whep", data=body(), headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {troll_token}"}))
        await half.wait()
        assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": troll_id}))["ok"]
        state = await live.demo_state()
        await until(lambda: troll_id in state.bans, what="the ban in this worker's state of the room")
        banned.set()
        resp = await post
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "banned"
        assert not live.services.embedded.holds((await live.demo_state()).id, troll_id)
    finally:
        for pc in pcs:
            await pc.close()


async def test_the_owner_refuses_a_banned_viewer_itself(live):
    """What a forwarded offer meets (directory.py calls play_here): the owner's own state of the room."""
    _, seller_token = await live.user(SELLER, "seller")
    troll_id, _ = await live.user("far-troll-2")
    fan_id, _ = await live.user("far-fan-2")
    seller = await live.seller()
    pub, status, _, _ = await publisher(live, seller_token)
    pcs = [pub]
    try:
        assert status == 201
        assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": troll_id}))["ok"]
        state = await live.demo_state()
        media = live.services.embedded
        pcs.append(pc := peer())
        with pytest.raises(DomainError) as refused:
            await media.play_here(state.id, await offer_of(pc), troll_id)
        assert refused.value.code == "banned" and not media.holds(state.id, troll_id)
        pcs.append(pc := peer())
        session_id, _ = await media.play_here(state.id, await offer_of(pc), fan_id)  # the others may
        assert media.sessions[session_id].user_id == fan_id
    finally:
        for pc in pcs:
            await pc.close()


async def test_a_stream_ended_while_publish_waited_gets_no_publisher(live):
    _, seller_token = await live.user(SELLER, "seller")
    media = live.services.embedded
    real = media.publish

    async def late(stream_id: str, offer: str):
        # the end lands before the session exists: the worker's end_stream finds nothing to end
        assert (await live.api("POST", "/livestreams/demo/end", seller_token))[0] == 200
        return await real(stream_id, offer)

    media.publish = late
    pc, status, body, _ = await publisher(live, seller_token)
    await pc.close()
    assert status == 409 and body["error"]["code"] == "stream_not_live"
    assert not media.sessions


async def test_a_stream_ended_before_the_publisher_came_up_is_ended_when_it_does(live):
    """The end reached no worker holding the session (here: the row changed without an event); when the
    publisher's connection comes up and its worker follows the room, it reads the stream and ends the media."""
    _, seller_token = await live.user(SELLER, "seller")
    media = live.services.embedded
    pc = peer()
    pc.addTransceiver(Bars(), direction="sendonly")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        resp = await live.client.post(f"{API}/livestreams/demo/whip", data=pc.localDescription.sdp, headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {seller_token}"})
        assert resp.status == 201
        state = await live.demo_state()
        async with live.services.db.tx(SYSTEM) as conn:
            await streams_db.set_status(conn, state.id, "ended")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
        await until(lambda: not media.sessions and state.id not in live.services.rooms._media_rooms, 10,
                    what="the publisher of the ended stream ended, its room no longer followed for it")
    finally:
        await pc.close()
