"""The embedded media server follows the stream's moderation and life, with real aiortc peers over loopback and
real Socket.IO clients: a ban cuts the banned user's running playback (another viewer keeps playing); ending the
stream ends its WHIP session and its viewers, and the room hears `media:status {publishing: false}` once."""
from __future__ import annotations

import asyncio

from aiortc.mediastreams import MediaStreamError

from tests.helpers import until
from tests.media.test_whip import publisher, viewer
from tests.rooms.harness import SELLER, start_live


async def ended(track, timeout: float = 5.0) -> bool:
    """Whether a received track ends (the server closed its peer connection) within `timeout` seconds."""
    async def drain() -> None:
        while True:
            await track.recv()
    try:
        await asyncio.wait_for(drain(), timeout)
    except MediaStreamError:
        return True
    except asyncio.TimeoutError:
        return False
    return False


async def playing(live, token: str | None, pcs: list):
    """A viewer peer that plays the demo stream: (its track, its session's Location)."""
    pc, tracks, status, body, location = await viewer(live, token)
    pcs.append(pc)
    assert status == 201, body
    track = await asyncio.wait_for(tracks.get(), 10)
    assert (await asyncio.wait_for(track.recv(), 10)).width == 320
    return track, location


async def test_a_ban_cuts_the_banned_viewers_playback(live):
    _, seller_token = await live.user(SELLER, "seller")
    troll_id, troll_token = await live.user("whep-banned")
    fan_id, fan_token = await live.user("whep-fan")
    seller = await live.seller()
    troll_socket = await live.viewer("whep-banned")
    pub, status, _, _ = await publisher(live, seller_token)
    pcs = [pub]
    try:
        assert status == 201
        troll_track, troll_where = await playing(live, troll_token, pcs)
        troll_again, troll_where_2 = await playing(live, troll_token, pcs)  # two tabs: both cut
        fan_track, fan_where = await playing(live, fan_token, pcs)
        anon_track, anon_where = await playing(live, None, pcs)
        media = live.services.embedded  # each session knows its viewer
        assert [user_of(media, w) for w in (troll_where, troll_where_2, fan_where, anon_where)] == [
            troll_id, troll_id, fan_id, None]
        assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": troll_id}))["ok"]
        await troll_socket.wait_for("user:banned")
        assert await ended(troll_track) and await ended(troll_again)
        for where in (troll_where, troll_where_2):
            assert (await live.client.delete(where)).status == 404  # the session is gone
        # the others keep playing
        for track in (fan_track, anon_track):
            assert all(f.width == 320 for f in [await asyncio.wait_for(track.recv(), 5) for _ in range(5)])
        assert (await live.client.delete(fan_where)).status == 204
        # and the banned user cannot start again
        pc, _, status, body, _ = await viewer(live, troll_token)
        pcs.append(pc)
        assert status == 403 and body["error"]["code"] == "banned"
    finally:
        for pc in pcs:
            await pc.close()


def user_of(media, location: str) -> str | None:
    """The viewer's user id the session at `location` remembers."""
    return media.sessions[location.rsplit("/", 1)[1]].user_id


async def test_ending_the_stream_ends_its_media(live):
    _, seller_token = await live.user(SELLER, "seller")
    room = await live.viewer("end-watcher")
    pub, status, _, _ = await publisher(live, seller_token)
    pcs = [pub]
    try:
        assert status == 201
        await room.wait_for("media:status", lambda d: d["publishing"] is True and "width" in d)  # sized
        mark = room.mark("media:status")
        tracks = [(await playing(live, None, pcs))[0] for _ in range(2)]
        assert (await live.api("POST", "/livestreams/demo/end", seller_token))[0] == 200
        for track in tracks:
            assert await ended(track)
        media = live.services.embedded
        await until(lambda: not media.sessions, 5, what="every media session ended")
        told = await room.wait_after("media:status", mark)
        assert told["publishing"] is False
        await live.barrier(room)
        assert len(room.events["media:status"]) == mark + 1  # once
        # an ended stream is neither published nor played any more
        pc, _, status, body, _ = await viewer(live)
        pcs.append(pc)
        assert status == 409 and body["error"]["code"] == "stream_not_live"
        pc, status, body, _ = await publisher(live, seller_token)
        pcs.append(pc)
        assert status == 409 and body["error"]["code"] == "stream_not_live"
    finally:
        for pc in pcs:
            await pc.close()


async def test_a_ban_and_the_end_from_another_worker(tmp_path, dsn, aiohttp_client, redis_url):
    """Two workers sharing Redis: the media is on A, which has no socket in the room (it follows the room while
    it holds the publisher); the seller bans and ends the stream from B."""
    a = await start_live(tmp_path / "a", dsn, aiohttp_client, redis_url=redis_url)
    b = await start_live(tmp_path / "b", dsn, aiohttp_client, redis_url=redis_url)
    _, seller_token = await a.user(SELLER, "seller")
    troll_id, troll_token = await a.user("far-troll")
    seller = await b.seller()
    watcher = await b.viewer("far-watcher")
    pub, status, _, _ = await publisher(a, seller_token)
    pcs = [pub]
    try:
        assert status == 201
        await watcher.wait_for("media:status", lambda d: "width" in d)  # from A, through Redis
        troll_track, _ = await playing(a, troll_token, pcs)
        other_track, _ = await playing(a, None, pcs)
        assert a.gateway is not None and a.services.hub.local_count((await a.demo_state()).id) == 0
        assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": troll_id}))["ok"]
        assert await ended(troll_track)
        assert (await asyncio.wait_for(other_track.recv(), 5)).width == 320
        mark = watcher.mark("media:status")
        assert (await b.api("POST", "/livestreams/demo/end", seller_token))[0] == 200
        assert await ended(other_track)
        await until(lambda: not a.services.embedded.sessions, 5, what="A's media sessions ended")
        assert (await watcher.wait_after("media:status", mark))["publishing"] is False
        await b.barrier(watcher)
        assert len(watcher.events["media:status"]) == mark + 1
    finally:
        for pc in pcs:
            await pc.close()
        await a.close_viewers()
        await b.close_viewers()
