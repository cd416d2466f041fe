"""Issue 11, items 13 and 14: one buyer cannot hold a flash sale (a per-buyer cap per variant, enforced inside the
batched statement; a hold is not renewed past its first end), and an add is attributed to a stream only when
that stream is live and shows the product. Real PostgreSQL, real sockets."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from db import Database
from db import inventory as inventory_db
from db.inventory import CartChange
from live.auth.principal import SYSTEM
from tests.commerce.harness import crowd
from tests.rooms.harness import err

LIMITS = inventory_db.CartLimits(seconds=600, max_line=99, default_cap=5, cooldown=3600)


async def _line(shop, buyer, vid) -> dict | None:
    cart = (await shop.call("GET", "/me/cart", buyer))["cart"]
    return next((i for i in cart["items"] if i["variant_id"] == vid), None)


async def test_parallel_adds_of_one_buyer_never_exceed_the_cap(shop):
    seller, buyer, other = await shop.seller(), await shop.user(), await shop.user()
    vid = (await shop.product(seller, stock=100))["variants"][0]["id"]
    # 40 adds at once over REST (one worker: they meet in the batches), each with its own key
    results = await asyncio.gather(*[shop.call("POST", "/me/cart/items", buyer, json={
        "variant_id": vid, "idempotency_key": f"k{i}"}, expect=None) for i in range(40)])
    assert sum(1 for status, _, _ in results if status == 200) == 5
    refused = [body for status, body, _ in results if status != 200]
    assert {(s, b["error"]["code"]) for (s, b, _) in results if s != 200} == {(409, "limit_exceeded")}
    assert refused[0]["error"]["message"] == "at most 5 of this item per buyer"
    assert (await _line(shop, buyer, vid))["quantity"] == 5
    # three pools, as three worker processes, no batching between them: the database alone keeps the cap
    pools = [await Database.connect(shop.services.db.dsn, min_size=1, max_size=8) for _ in range(3)]
    try:
        statuses = await asyncio.gather(*[inventory_db.cart_change(
            pools[i % 3], other.id, vid, "add", 1 + i % 2, None, None, LIMITS) for i in range(30)])
    finally:
        await asyncio.gather(*[p.close() for p in pools])
    assert {r["status"] for r in statuses} <= {"ok", "too_many"}
    assert (await _line(shop, other, vid))["quantity"] <= 5
    held = await shop.assert_ledger(vid)
    assert held["reserved"] == 5 + (await _line(shop, other, vid))["quantity"]
    # a quantity change is capped too; going down is always allowed
    body = await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 6}, expect=409)
    assert body["error"]["code"] == "limit_exceeded"
    assert (await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 2}))["cart"]["items"][0][
        "quantity"] == 2


async def test_the_seller_sets_the_cap_of_a_variant(shop):
    seller, buyer = await shop.seller(), await shop.user()
    p = await shop.product(seller, variants=[{"sku": f"CAP-{uuid.uuid4().hex[:8]}", "price_minor": 500,
                                              "currency": "USD", "stock": 50, "max_per_buyer": 2}])
    vid = p["variants"][0]["id"]
    assert p["variants"][0]["max_per_buyer"] == 2
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 2})
    body = await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}, expect=409)
    assert body["error"] == {"code": "limit_exceeded", "message": "at most 2 of this item per buyer"}
    await shop.call("PATCH", f"/variants/{vid}", buyer, json={"max_per_buyer": 9}, expect=403)
    for bad in (0, 100, 2.5):
        await shop.call("PATCH", f"/variants/{vid}", seller, json={"max_per_buyer": bad}, expect=422)
    changed = await shop.call("PATCH", f"/variants/{vid}", seller, json={"max_per_buyer": 20})
    assert changed["variants"][0]["max_per_buyer"] == 20
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 18})
    assert (await _line(shop, buyer, vid))["quantity"] == 20
    # back to the platform default (5): the line above it may only go down
    await shop.call("PATCH", f"/variants/{vid}", seller, json={"max_per_buyer": None})
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}, expect=409)
    await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 7})
    assert (await _line(shop, buyer, vid))["quantity"] == 7
    await shop.assert_ledger(vid)


async def test_units_waiting_for_payment_count_against_the_cap(shop):
    """A checkout does not free the cap: its units wait for payment in an order, held as much as in a cart."""
    seller, buyer = await shop.seller(), await shop.user()
    vid = (await shop.product(seller, stock=50))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 4})
    out = await shop.checkout(buyer, provider="sandbox")
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid})  # 4 + 1
    body = await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}, expect=409)
    assert body["error"]["code"] == "limit_exceeded"
    # the order is canceled (or paid): its units no longer count
    await shop.call("POST", f"/me/orders/{out['orders'][0]['id']}/cancel", buyer, json={})
    cart = (await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 4}))["cart"]
    assert cart["items"][0]["quantity"] == 5
    await shop.assert_ledger(vid)


async def test_one_buyers_burst_in_a_batch_does_not_sell_out_the_others(shop):
    """One statement, as a flash-sale batch: a buyer's adds past the cap are refused before they count against
    the units left, so the buyers after them in the same batch still get theirs."""
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=10))["variants"][0]["id"]
    hoarder, *others = await crowd(shop, 6)
    changes = [CartChange(hoarder.id, "add", 1, None, f"h{i}") for i in range(20)]
    changes += [CartChange(b.id, "add", 1, None, "k") for b in others]
    async with shop.services.db.pool.acquire() as conn:
        results = await inventory_db.cart_changes(conn, vid, changes, LIMITS)
    statuses = [r["status"] for r in results]
    assert statuses[:5] == ["ok"] * 5 and set(statuses[5:20]) == {"too_many"}
    assert statuses[20:] == ["ok"] * 5
    assert await shop.counters(vid) == {"on_hand": 10, "reserved": 10, "sold": 0}
    await shop.assert_ledger(vid)


async def test_a_hold_is_not_renewed_past_its_first_end(shop):
    seller, buyer = await shop.seller(), await shop.user()
    vid = (await shop.product(seller, stock=10))["variants"][0]["id"]
    first = (await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 2}))["cart"]
    until = first["items"][0]["reserved_until"]
    # more units, a new quantity, even removing the line and adding it again: the hold still ends at `until`
    await asyncio.sleep(0.01)
    more = (await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}))["cart"]
    assert more["items"][0]["reserved_until"] == until and more["items"][0]["quantity"] == 3
    await shop.call("DELETE", f"/me/cart/items/{vid}", buyer)
    again = (await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}))["cart"]
    assert again["items"][0]["reserved_until"] == until
    # the hold ends and the sweeper gives the units back: the cart cannot take them again
    await shop.expire_reservations(vid)
    await shop.services.commerce.cart.release_expired()
    assert (await shop.counters(vid))["reserved"] == 0
    body = await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}, expect=409)
    assert body["error"]["code"] == "hold_expired" and "check out" in body["error"]["message"]
    await shop.call("DELETE", f"/me/cart/items/{vid}", buyer)
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}, expect=409)  # nor by re-adding
    viewer = await shop.viewer(buyer)
    try:
        assert err(await viewer.call("cart:add", {"variant_id": vid})) == "hold_expired"
    finally:
        await viewer.close()
    assert (await shop.counters(vid))["reserved"] == 0 and await _line(shop, buyer, vid) is None
    # long after (the cool-down), a fresh hold; the sweeper forgets such old holds
    await shop.expire_reservations(vid, ago=3601)
    assert await _holds(shop, vid) == 1
    await shop.services.commerce.cart.release_expired()
    assert await _holds(shop, vid) == 0
    fresh = (await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}))["cart"]["items"][0]
    assert fresh["reserved"] and datetime.fromisoformat(fresh["reserved_until"]) > datetime.fromisoformat(until)
    await shop.assert_ledger(vid)


async def _holds(shop, vid: str) -> int:
    async with shop.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT count(*) FROM cart_holds WHERE variant_id = $1::uuid", vid)


async def test_after_the_hold_the_line_can_still_be_checked_out(shop):
    seller, buyer = await shop.seller(), await shop.user()
    vid = (await shop.product(seller, stock=10))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 3})
    await shop.expire_reservations(vid)
    await shop.services.commerce.cart.release_expired()
    line = await _line(shop, buyer, vid)
    assert line["quantity"] == 3 and line["reserved"] is False
    # the line may go down without taking units; not up
    await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 4}, expect=409)
    down = (await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 2}))["cart"]["items"][0]
    assert down["quantity"] == 2 and down["reserved"] is False and (await shop.counters(vid))["reserved"] == 0
    out = await shop.checkout(buyer, provider="sandbox")  # checkout takes free units
    assert out["orders"][0]["items"][0]["quantity"] == 2
    assert await shop.counters(vid) == {"on_hand": 10, "reserved": 0, "sold": 2}
    # a new cart after the checkout: a fresh hold at once
    fresh = (await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}))["cart"]["items"][0]
    assert fresh["reserved"] is True
    await shop.assert_ledger(vid)


async def _attributed(shop, vid: str) -> list:
    async with shop.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT livestream_id::text FROM inventory_events WHERE variant_id = $1::uuid "
                                "AND kind = 'reservation' ORDER BY id", vid)
    return [r[0] for r in rows]


async def test_an_add_is_attributed_only_to_a_live_stream_showing_the_product(shop):
    seller, rival, buyer = await shop.seller(), await shop.seller(), await shop.user()
    p = await shop.product(seller, stock=50, variants=[
        {"sku": f"A-{uuid.uuid4().hex[:8]}", "price_minor": 100, "currency": "USD", "stock": 50,
         "max_per_buyer": 20}])
    vid = p["variants"][0]["id"]
    listing = await shop.live_stream(seller, product_ids=[p["id"]])
    spotlighting = await shop.live_stream(seller)
    rivals = await shop.live_stream(rival, product_ids=[(await shop.product(rival))["id"]])
    scheduled = await shop.call("POST", "/livestreams", seller, json={
        "title": "Later", "slug": f"s-{uuid.uuid4().hex[:8]}", "product_ids": [p["id"]]}, expect=201)
    sock = await shop.viewer(seller)
    try:
        assert (await sock.call("join", {"stream_id": spotlighting["id"]}))["ok"]
        assert (await sock.call("product:highlight", {"product_id": p["id"]}))["ok"]
    finally:
        await sock.close()
    for stream in (listing["id"], spotlighting["slug"], rivals["id"], rivals["slug"], scheduled["id"],
                   str(uuid.uuid4()), "no-such-stream"):
        await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "stream_id": stream})
    assert await _attributed(shop, vid) == [listing["id"], spotlighting["id"]] + [None] * 5
    # from the room: the rival's stream named in cart:add, or the socket sitting in the rival's room
    viewer = await shop.viewer(buyer)
    try:
        ack = await viewer.call("cart:add", {"variant_id": vid, "stream_id": rivals["id"]})
        assert ack["ok"] and ack["cart"]["items"][0]["livestream_id"] == spotlighting["id"]  # kept the last valid one
        assert (await viewer.call("join", {"stream_id": rivals["id"]}))["ok"]
        assert (await viewer.call("cart:add", {"variant_id": vid}))["ok"]
    finally:
        await viewer.close()
    assert (await _attributed(shop, vid))[-2:] == [None, None]
    stats = await shop.call("GET", f"/livestreams/{rivals['id']}/analytics", rival)
    assert stats["add_to_carts"] == 0 and stats["units_added"] == 0
    ours = await shop.call("GET", f"/livestreams/{listing['id']}/analytics", seller)
    assert ours["add_to_carts"] == 1
    # a stream that ended no longer attributes either
    await shop.call("POST", f"/livestreams/{listing['id']}/end", seller)
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "stream_id": listing["id"]})
    assert (await _attributed(shop, vid))[-1] is None
