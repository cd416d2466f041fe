"""`media:refresh` over real Socket.IO sockets: a member gets a fresh 15-minute viewer token (the seller a
6-hour publisher token) for the same room and identity; a socket not in the room is refused; a banned user's
refresh is refused with `banned`."""
from __future__ import annotations

import time

import jwt
from livekit import api as lk

from live.media.livekit import PUBLISHER_TTL, TOKEN_TTL
from tests.rooms.harness import err, start_live


def verified(media: dict):
    return lk.TokenVerifier("devkey", "secret").verify(media["token"])


async def test_refresh_gives_a_new_token_and_a_banned_user_none(tmp_path, dsn, aiohttp_client):
    live = await start_live(tmp_path, dsn, aiohttp_client, livekit_url="ws://livekit.test:7880")
    try:
        await _refresh(live)
    finally:
        await live.close_viewers()


async def _refresh(live):
    seller = await live.seller()
    viewer = await live.viewer("refresher")
    first = viewer.joined["media"]
    assert first["expires_in"] == TOKEN_TTL.total_seconds() and seller.joined["media"]["expires_in"] == \
        PUBLISHER_TTL.total_seconds()
    ack = await viewer.call("media:refresh", {"stream_id": "demo"})
    assert ack["ok"], ack
    media = ack["media"]
    assert media["room"] == first["room"] and media["can_publish"] is False
    claims = verified(media)
    assert claims.identity == viewer.user_id and claims.video.room == first["room"]
    assert claims.video.can_publish is False
    exp = jwt.decode(media["token"], "secret", algorithms=["HS256"], issuer="devkey")["exp"]
    assert abs(exp - time.time() - TOKEN_TTL.total_seconds()) < 5
    # without stream_id: the one stream the socket is in
    assert (await viewer.call("media:refresh", {}))["ok"]
    seller_media = (await seller.call("media:refresh", {"stream_id": "demo"}))["media"]
    assert seller_media["can_publish"] is True and verified(seller_media).video.can_publish is True
    # anonymous members get one too; a socket that has not joined does not
    anon = await live.viewer()
    assert (await anon.call("media:refresh", {"stream_id": "demo"}))["ok"]
    outsider = await live.viewer("outsider", join=None)
    assert err(await outsider.call("media:refresh", {"stream_id": "demo"})) == "invalid"
    # banned: refused (also on a socket that was in the room when the ban came)
    assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": viewer.user_id}))["ok"]
    await viewer.wait_for("user:banned")
    assert err(await viewer.call("media:refresh", {"stream_id": "demo"})) == "banned"
    assert err(await viewer.call("media:refresh", {"stream_id": "no-such-stream"})) == "not_found"
