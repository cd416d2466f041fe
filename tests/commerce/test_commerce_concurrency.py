"""Never oversell: hundreds of concurrent add-to-carts on 1, 7 and 100 units (over real HTTP, over real
Socket.IO, and straight at the SQL from several connection pools as several workers would), and a coupon's
usage limit under concurrent checkouts. Counters, cart lines and the ledger are checked afterwards."""
from __future__ import annotations

import asyncio

import pytest

from db import Database
from db import inventory as inventory_db
from live.auth.principal import SYSTEM
from tests.commerce.harness import assert_sold_exactly, crowd
from tests.rooms.harness import err

LIMITS = inventory_db.CartLimits(seconds=600, max_line=99, default_cap=5, cooldown=3600)


@pytest.mark.parametrize("units", [1, 7, 100])
async def test_concurrent_rest_adds_never_oversell(shop, units):
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=units))["variants"][0]["id"]
    buyers = await crowd(shop, 300)

    async def add(b):
        status, body, _ = await shop.call("POST", "/me/cart/items", b, json={"variant_id": vid}, expect=None)
        return status, body

    results = await asyncio.gather(*[add(b) for b in buyers])
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 409]
    assert len(ok) == units and len(refused) == 300 - units
    assert {r[1]["error"]["code"] for r in refused} == {"out_of_stock"}
    await assert_sold_exactly(shop, vid, units, units)


async def test_concurrent_socket_adds_never_oversell(shop):
    units = 7
    seller = await shop.seller()
    p = await shop.product(seller, stock=units)
    vid = p["variants"][0]["id"]
    stream = await shop.live_stream(seller, product_ids=[p["id"]])
    buyers = await crowd(shop, 120)
    viewers = await asyncio.gather(*[shop.viewer(b) for b in buyers])
    try:
        await asyncio.gather(*[v.call("join", {"stream_id": stream["id"]}) for v in viewers])
        acks = await asyncio.gather(*[v.call("cart:add", {"variant_id": vid, "qty": 1}) for v in viewers])
        assert sum(1 for a in acks if a["ok"]) == units
        assert {err(a) for a in acks if not a["ok"]} == {"out_of_stock"}
        await assert_sold_exactly(shop, vid, units, units)
    finally:
        await asyncio.gather(*[v.close() for v in viewers])


async def test_sql_never_oversells_across_worker_pools(shop):
    """Three pools (as three worker processes would have), no in-memory hint: the database alone decides."""
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=7))["variants"][0]["id"]
    buyers = await crowd(shop, 400)
    pools = [await Database.connect(shop.services.db.dsn, min_size=1, max_size=10) for _ in range(3)]
    try:
        async def add(i, b):
            r = await inventory_db.cart_change(pools[i % 3], b.id, vid, "add", 1, None, None, LIMITS)
            return r["status"]

        statuses = await asyncio.gather(*[add(i, b) for i, b in enumerate(buyers)])
        assert statuses.count("ok") == 7 and statuses.count("out_of_stock") == 393
        # some give back while others try to take: whatever the interleaving, the units are exact
        givers = [b for b, s in zip(buyers, statuses) if s == "ok"][:3]
        takers = [b for b, s in zip(buyers, statuses) if s != "ok"][:50]
        results = await asyncio.gather(
            *[inventory_db.cart_change(pools[0], b.id, vid, "set", 0, None, None, LIMITS) for b in givers],
            *[inventory_db.cart_change(pools[i % 3], b.id, vid, "add", 1, None, None, LIMITS)
              for i, b in enumerate(takers)])
        assert [r["status"] for r in results[:3]] == ["ok"] * 3
        took = sum(1 for r in results[3:] if r["status"] == "ok")
        assert took <= 3
        await assert_sold_exactly(shop, vid, 7, 4 + took, reservations=7 + took)
        # and once released, the units are there for the next buyers
        late = await asyncio.gather(*[inventory_db.cart_change(pools[i % 3], b.id, vid, "add", 1, None, None,
                                                               LIMITS) for i, b in enumerate(takers[25:])])
        assert sum(1 for r in late if r["status"] == "ok") == 3 - took
        await assert_sold_exactly(shop, vid, 7, 7, reservations=10)
    finally:
        for pool in pools:
            await pool.close()


async def test_coupon_usage_limit_under_concurrent_checkouts(shop):
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=100, price=1000))["variants"][0]["id"]
    coupon = await shop.call("POST", "/coupons", seller, json={"code": "FLASH5", "kind": "percent", "value": 20,
                                                               "usage_limit": 5}, expect=201)
    buyers = await crowd(shop, 40)
    for b in buyers:
        await shop.call("POST", "/me/cart/items", b, json={"variant_id": vid})

    async def go(b):
        status, body, _ = await shop.checkout(b, coupon_code="flash5", provider="sandbox", expect=None)
        return status, body

    results = await asyncio.gather(*[go(b) for b in buyers])
    won = [body for status, body in results if status == 201]
    lost = [body for status, body in results if status != 201]
    assert len(won) == 5 and all(b["orders"][0]["discount_minor"] == 200 for b in won)
    assert {b["error"]["code"] for b in lost} == {"coupon_exhausted"}
    mine = (await shop.call("GET", "/me/coupons", seller))["items"]
    assert [(c["id"], c["used_count"]) for c in mine] == [(coupon["id"], 5)]
    # the losers lost nothing: their carts are intact and reserved, no order was made for them
    assert await shop.counters(vid) == {"on_hand": 100, "reserved": 35, "sold": 5}
    async with shop.services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 5
        assert await conn.fetchval("SELECT count(*) FROM checkout_requests") == 5
    await shop.assert_ledger(vid)
