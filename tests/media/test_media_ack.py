"""The join ack's `media` names the backend that serves the stream: without LIVEKIT_URL the embedded server (WHEP
for everyone, WHIP for the stream's seller or an admin, no token), with it LiveKit (a token); `media:refresh`
answers the same shape; with LiveKit the WHIP/WHEP routes answer 409 `livekit_backend`. Real Socket.IO clients."""
from __future__ import annotations

import pytest
from livekit import api as lk

from live.config import ConfigError, load_settings
from tests.rooms.harness import API, err, start_live

LK_URL = "ws://livekit.test:7880"


async def test_embedded_by_default(live):
    state = await live.demo_state()
    whep, whip = f"{API}/livestreams/{state.id}/whep", f"{API}/livestreams/{state.id}/whip"
    viewer = await live.viewer("ack-viewer")
    anon = await live.viewer()
    seller = await live.seller()
    admin = await live.viewer("ack-admin", "admin")
    for v in (viewer, anon):
        assert v.joined["media"] == {"kind": "whep", "url": whep, "can_publish": False}
    for v in (seller, admin):
        assert v.joined["media"] == {"kind": "whep", "url": whep, "can_publish": True, "publish_url": whip}
    # the URLs are the routes': WHEP parses the offer (this one has no media: 422), WHIP wants the seller
    resp = await live.client.post(whep, data="v=0\r\n", headers={"Content-Type": "application/sdp"})
    assert resp.status == 422, resp.status
    resp = await live.client.post(whip, data="v=0\r\n", headers={"Content-Type": "application/sdp"})
    assert resp.status == 401
    # media:refresh: the same shape (nothing to renew), still refused to a banned user
    assert (await viewer.call("media:refresh", {"stream_id": "demo"}))["media"] == viewer.joined["media"]
    assert (await seller.call("media:refresh", {}))["media"] == seller.joined["media"]
    assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": viewer.user_id}))["ok"]
    await viewer.wait_for("user:banned")
    assert err(await viewer.call("media:refresh", {"stream_id": "demo"})) == "banned"


async def test_livekit_when_configured(tmp_path, dsn, aiohttp_client):
    live = await start_live(tmp_path, dsn, aiohttp_client, livekit_url=LK_URL)
    try:
        viewer = await live.viewer("lk-viewer")
        seller = await live.seller()
        media = viewer.joined["media"]
        assert media["kind"] == "livekit" and media["url"] == LK_URL and media["can_publish"] is False
        assert "publish_url" not in media and media["expires_in"] == 900
        claims = lk.TokenVerifier("devkey", "secret").verify(media["token"])
        assert claims.identity == viewer.user_id and claims.video.can_publish is False
        assert seller.joined["media"]["kind"] == "livekit" and seller.joined["media"]["can_publish"] is True
        refreshed = (await viewer.call("media:refresh", {"stream_id": "demo"}))["media"]
        assert refreshed["kind"] == "livekit" and refreshed["token"]
        # the embedded server's routes say where the video is instead
        _, seller_token = await live.user("demo-seller", "seller")
        auth = {"Authorization": f"Bearer {seller_token}"}
        for method, path in (("POST", "whip"), ("POST", "whep"), ("DELETE", "whip/x"), ("DELETE", "whep/x")):
            resp = await live.client.request(method, f"{API}/livestreams/demo/{path}", data="v=0\r\n",
                                             headers={"Content-Type": "application/sdp", **auth})
            body = await resp.json()
            assert resp.status == 409 and body["error"]["code"] == "livekit_backend", (method, path, body)
    finally:
        await live.close_viewers()


def test_livekit_url_settings(tmp_path):
    base = {"LIVE_DATA_DIR": str(tmp_path)}
    assert load_settings(base).livekit_url == ""
    assert load_settings({**base, "LIVEKIT_URL": ""}).livekit_url == ""
    assert load_settings({**base, "LIVEKIT_URL": "  "}).livekit_url == ""
    assert load_settings({**base, "LIVEKIT_URL": LK_URL}).livekit_url == LK_URL
    with pytest.raises(ConfigError):
        load_settings({**base, "LIVEKIT_URL": "ftp://x"})
    prod = {**base, "LIVE_ENV": "production", "JWT_SECRET": "s" * 40}
    assert load_settings(prod).livekit_url == ""  # the embedded server needs no LiveKit keys
    with pytest.raises(ConfigError, match="LIVEKIT_API_KEY"):
        load_settings({**prod, "LIVEKIT_URL": LK_URL})
    assert load_settings({**prod, "LIVEKIT_URL": LK_URL, "LIVEKIT_API_KEY": "k",
                          "LIVEKIT_API_SECRET": "x" * 40}).livekit_url == LK_URL
