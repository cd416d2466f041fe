"""Live thumbnails with a real aiortc publisher over loopback: a JPEG 320 px wide appears within a few seconds of
publishing, is served at /livestreams/{id}/thumbnail (image/jpeg, short cache) and named in the stream list and
detail (`live_thumbnail_url`), is renewed, and is gone (404 JSON, no URL) once publishing ends. H.264 too."""
from __future__ import annotations

import pytest

from tests.helpers import until
from tests.media.test_recording import publish
from tests.media.test_thumbnail_jpeg import decode_jpeg
from tests.rooms.harness import SELLER, start_live


@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
async def test_a_live_thumbnail_appears_is_served_and_goes(tmp_path, dsn, aiohttp_client, codec):
    live = await start_live(tmp_path, dsn, aiohttp_client, thumbnail_interval=1)
    _, token = await live.user(SELLER, "seller")
    state = await live.demo_state()
    thumbs = live.services.thumbnails
    assert (await live.api("GET", "/livestreams/demo/thumbnail"))[0] == 404
    assert (await live.api("GET", "/livestreams/demo"))[1]["live_thumbnail_url"] is None
    pc, location = await publish(live, token, codec=codec, audio=False)
    try:
        await until(lambda: thumbs.url(state.id), timeout=5, what="a thumbnail")
        _, detail = await live.api("GET", "/livestreams/demo")
        url = detail["live_thumbnail_url"]
        assert url.startswith(f"/api/v1/livestreams/{state.id}/thumbnail?v=")
        listed = (await live.api("GET", "/livestreams?status=live"))[1]["items"]
        assert [s["live_thumbnail_url"] for s in listed if s["id"] == state.id] == [url]
        resp = await live.client.get(url)
        assert resp.status == 200 and resp.content_type == "image/jpeg"
        assert resp.headers["Cache-Control"] == "public, max-age=2"
        frame = decode_jpeg(await resp.read())
        assert (frame.width, frame.height) == (320, 240)
        # renewed every THUMBNAIL_INTERVAL seconds
        await until(lambda: thumbs.url(state.id) not in (None, url), timeout=5, what="a newer thumbnail")
        assert (await live.client.delete(location, headers={"Authorization": f"Bearer {token}"})).status == 204
    finally:
        await pc.close()
    await until(lambda: thumbs.url(state.id) is None, what="the thumbnail removed")
    status, body = await live.api("GET", f"/livestreams/{state.id}/thumbnail")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert (await live.api("GET", "/livestreams/no-such-stream/thumbnail"))[0] == 404
    assert not list(thumbs.root.iterdir())  # no temporary file left behind
