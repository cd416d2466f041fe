"""Follows over REST against the real app and PostgreSQL: follow and unfollow (idempotent), the public profile's
counts and `following`, one's own shop refused, the per-user cap (FOLLOW_MAX), "my follows" in keyset pages, the
named rate limit, and row-level security (nobody reads another user's follows)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from live.auth.principal import Principal
from tests.commerce.harness import Shop, make_client


async def test_follow_unfollow_and_profile(shop: Shop):
    seller = await shop.seller("maker")
    fans = [await shop.user() for _ in range(3)]
    profile = await shop.call("GET", "/sellers/maker")  # anonymous
    assert profile["followers"] == 0 and profile["following"] is None
    assert profile["display_name"] == "maker" and profile["slug"] == "maker" and profile["live"] is None
    for i, fan in enumerate(fans):
        state = await shop.call("POST", "/sellers/maker/follow", fan)
        assert state == {"seller_id": profile["id"], "following": True, "followers": i + 1}
    again = await shop.call("POST", f"/sellers/{profile['id']}/follow", fans[0])  # by id; again: no change
    assert again["followers"] == 3 and again["following"] is True
    assert (await shop.call("GET", "/sellers/maker", fans[0]))["following"] is True
    assert (await shop.call("GET", "/sellers/maker", seller))["following"] is False
    assert (await shop.call("GET", "/sellers/maker"))["followers"] == 3

    gone = await shop.call("DELETE", "/sellers/maker/follow", fans[1])
    assert gone == {"seller_id": profile["id"], "following": False, "followers": 2}
    assert (await shop.call("DELETE", "/sellers/maker/follow", fans[1]))["followers"] == 2  # again: no change
    assert (await shop.call("GET", "/sellers/maker", fans[1]))["following"] is False

    # one's own shop; unknown sellers; no token
    status, body, _ = await shop.call("POST", "/sellers/maker/follow", seller, expect=None)
    assert status == 409 and body["error"]["code"] == "conflict"
    for path in ("/sellers/nobody/follow", "/sellers/00000000-0000-4000-8000-000000000000/follow"):
        status, body, _ = await shop.call("POST", path, fans[0], expect=None)
        assert status == 404 and body["error"]["code"] == "not_found"
    assert (await shop.call("GET", "/sellers/nobody", expect=None))[0] == 404
    status, body, _ = await shop.call("POST", "/sellers/maker/follow", expect=None)
    assert status == 401 and body["error"]["code"] == "unauthorized"

    # row-level security: a fan reads only their own follows, even without a WHERE clause
    async with shop.services.db.tx(Principal(fans[0].id, "customer")) as conn:
        assert await conn.fetchval("SELECT count(*) FROM follows") == 1
        assert await conn.execute("DELETE FROM follows WHERE follower_id = $1::uuid", fans[2].id) == "DELETE 0"


async def test_profile_lists_live_and_upcoming_streams(shop: Shop):
    seller = await shop.seller("studio")
    soon = datetime.now(timezone.utc) + timedelta(days=1)
    for slug, when in (("later", soon + timedelta(days=1)), ("sooner", soon), ("someday", None)):
        await shop.call("POST", "/livestreams", seller, json={
            "title": slug, "slug": slug, **({"scheduled_at": when.isoformat()} if when else {})}, expect=201)
    live = await shop.live_stream(seller, slug="on-air")
    done = await shop.live_stream(seller, slug="done")
    await shop.call("POST", f"/livestreams/{done['id']}/end", seller)
    profile = await shop.call("GET", "/sellers/studio")
    assert profile["live"]["id"] == live["id"] and profile["live"]["status"] == "live"
    assert profile["live"]["seller"]["slug"] == "studio" and profile["live"]["cover_url"] is None
    assert [s["slug"] for s in profile["upcoming"]] == ["sooner", "later", "someday"]


async def test_my_follows_pages_newest_first(shop: Shop):
    fan = await shop.user()
    sellers = [await shop.seller(f"shop-{i}") for i in range(5)]
    for s in sellers:
        await shop.call("POST", f"/sellers/{s.name}/follow", fan)
    await shop.live_stream(sellers[0], slug="shop-0-live")
    seen, cursor = [], None
    while True:
        page = await shop.call("GET", "/me/follows?limit=2" + (f"&cursor={cursor}" if cursor else ""), fan)
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i["seller"]["slug"] for i in seen] == [f"shop-{i}" for i in reversed(range(5))]
    assert [i["live"] for i in seen] == [False] * 4 + [True]
    assert (await shop.call("GET", "/me/follows", await shop.user()))["items"] == []
    for bad in ("cursor=nope", "limit=0", "limit=101"):
        status, body, _ = await shop.call("GET", f"/me/follows?{bad}", fan, expect=None)
        assert status == 400 and body["error"]["code"] == "invalid", bad
    assert (await shop.call("GET", "/me/follows", expect=None))[0] == 401


async def test_follow_cap(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, follow_max=2))
    fan = await shop.user()
    for name in ("a-shop", "b-shop", "c-shop"):
        await shop.seller(name)
    await shop.call("POST", "/sellers/a-shop/follow", fan)
    await shop.call("POST", "/sellers/b-shop/follow", fan)
    status, body, _ = await shop.call("POST", "/sellers/c-shop/follow", fan, expect=None)
    assert status == 409 and body["error"]["code"] == "follow_limit" and body["error"]["details"] == {"max": 2}
    assert (await shop.call("POST", "/sellers/a-shop/follow", fan))["following"] is True  # one already followed
    await shop.call("DELETE", "/sellers/a-shop/follow", fan)
    assert (await shop.call("POST", "/sellers/c-shop/follow", fan))["followers"] == 1
    assert (await shop.call("GET", "/sellers/a-shop"))["followers"] == 0


async def test_follow_is_rate_limited(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, rate_limits="follow=3/60"))
    fan = await shop.user()
    await shop.seller("busy")
    for method in ("POST", "DELETE", "POST"):
        await shop.call(method, "/sellers/busy/follow", fan)
    status, body, headers = await shop.call("DELETE", "/sellers/busy/follow", fan, expect=None)
    assert status == 429 and body["error"]["code"] == "rate_limited" and int(headers["Retry-After"]) >= 1
    assert (await shop.call("GET", "/sellers/busy"))["followers"] == 1  # the refused unfollow touched nothing


async def test_follow_cap_holds_under_concurrent_follows(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, follow_max=2))
    fan = await shop.user()
    names = [f"rush-{i}" for i in range(6)]
    for name in names:
        await shop.seller(name)
    results = await asyncio.gather(*(shop.call("POST", f"/sellers/{n}/follow", fan, expect=None) for n in names))
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 200, 409, 409, 409, 409], statuses
    assert len((await shop.call("GET", "/me/follows", fan))["items"]) == 2
