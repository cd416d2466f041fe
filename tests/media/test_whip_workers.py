"""The embedded media server across workers: two app instances sharing one real Redis (as `serve --workers 2`),
real aiortc peers over loopback. Publish on A, play through B (B forwards the offer to A, the answer carries A's
candidates, the viewer decodes frames), DELETE through B ends the session on A; a second publisher on B is
refused; the internal listener refuses a request without the workers' key."""
from __future__ import annotations

import asyncio

import aiohttp

from tests.helpers import until
from tests.media.test_whip import frames, publisher, viewer
from tests.rooms.harness import API, SELLER, start_live


async def test_publish_on_one_worker_play_and_stop_through_another(tmp_path, dsn, aiohttp_client, redis_url):
    a = await start_live(tmp_path / "a", dsn, aiohttp_client, redis_url=redis_url)
    b = await start_live(tmp_path / "b", dsn, aiohttp_client, redis_url=redis_url)
    _, seller_token = await a.user(SELLER, "seller")
    fan_id, fan_token = await a.user("far-fan")
    media_a, media_b = a.services.embedded, b.services.embedded
    pub, status, _, pub_where = await publisher(a, seller_token)
    pcs = [pub]
    try:
        assert status == 201
        state = await a.demo_state()
        await until(lambda: media_a.publishing(state.id), 10, what="A publishing")
        # a second publisher, through B: refused (one per stream across workers)
        other, status, body, _ = await publisher(b, seller_token)
        pcs.append(other)
        assert status == 409 and body["error"]["code"] == "conflict", body
        # play through B: the session lives on A, the frames decode
        pc, tracks, status, _, where = await viewer(b, fan_token)
        pcs.append(pc)
        assert status == 201 and where.startswith(f"{API}/livestreams/{state.id}/whep/{media_a.tag}.")
        assert all(f.width == 320 for f in await frames(tracks, 5))
        session_id = where.rsplit("/", 1)[1]
        assert session_id in media_a.sessions and media_a.sessions[session_id].user_id == fan_id
        assert not media_b.sessions
        # DELETE through B ends it on A; again: 404 (forwarded, answered by A)
        assert (await b.client.delete(where)).status == 204
        assert session_id not in media_a.sessions
        resp = await b.client.delete(where)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
        # a made-up session of an unknown worker: 404, nothing forwarded
        assert (await b.client.delete(f"{API}/livestreams/{state.id}/whep/0123abcd.{'x' * 22}")).status == 404
        # the WHIP session, ended through B
        auth = {"Authorization": f"Bearer {seller_token}"}
        assert (await b.client.delete(pub_where, headers=auth)).status == 204
        await until(lambda: not media_a.sessions, 5, what="A's sessions ended")
        pc, _, status, body, _ = await viewer(b)  # nobody publishes any more
        pcs.append(pc)
        assert status == 409 and body["error"]["code"] == "conflict"
        # the stream may be published again, on B this time
        again, status, _, _ = await publisher(b, seller_token)
        pcs.append(again)
        assert status == 201 and media_b.publishing(state.id)
    finally:
        for pc in pcs:
            await pc.close()


async def test_the_internal_listener_wants_the_key(tmp_path, dsn, aiohttp_client, redis_url):
    a = await start_live(tmp_path / "a", dsn, aiohttp_client, redis_url=redis_url)
    directory = a.services.embedded.directory
    assert directory is not None and directory.url.startswith("http://127.0.0.1:")
    state = await a.demo_state()
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Live-Media-Key": "0" * 64}):
            async with http.post(f"{directory.url}/media/{state.id}/whep", data="v=0\r\n", headers=headers) as r:
                assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
        async with http.get(f"{directory.url}/api/v1/livestreams") as r:
            assert r.status in (404, 405)  # only the forwarded requests are served there


async def test_one_worker_without_redis_has_no_directory(live):
    assert live.services.embedded.directory is None
    await asyncio.sleep(0)
