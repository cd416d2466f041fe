"""The cart over REST and from the live room (cart:* socket events): reservations, idempotency keys,
out_of_stock, expiry by the sweeper, and stock:update reaching the room. Real PostgreSQL, real sockets."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop, make_client
from tests.helpers import until
from tests.rooms.harness import err


async def test_rest_cart_add_change_remove(shop):
    seller, buyer = await shop.seller(), await shop.user()
    p = await shop.product(seller, title="Mug", price=1500, stock=5)
    vid = p["variants"][0]["id"]
    empty = (await shop.call("GET", "/me/cart", buyer))["cart"]
    assert empty["items"] == [] and empty["subtotal_minor"] == 0
    cart = (await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 2}))["cart"]
    line = cart["items"][0]
    assert (line["variant_id"], line["quantity"], line["unit_price_minor"], line["reserved"]) == (vid, 2, 1500, True)
    assert cart["subtotal_minor"] == 3000 and cart["currency"] == "USD" and line["available"] == 3
    until = datetime.fromisoformat(line["reserved_until"])
    assert timedelta(seconds=590) < until - datetime.now(timezone.utc) <= timedelta(seconds=600)
    cart = (await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}))["cart"]
    assert cart["items"][0]["quantity"] == 3 and await shop.counters(vid) == {"on_hand": 5, "reserved": 3, "sold": 0}
    cart = (await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 1}))["cart"]
    assert cart["items"][0]["quantity"] == 1 and (await shop.counters(vid))["reserved"] == 1
    err_body = await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 6}, expect=409)
    assert err_body["error"] == {"code": "limit_exceeded", "message": "at most 5 of this item per buyer"}
    rival = await shop.user()
    await shop.call("POST", "/me/cart/items", rival, json={"variant_id": vid, "qty": 2})
    err_body = await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 4}, expect=409)
    assert err_body["error"] == {"code": "out_of_stock", "message": "only 2 left"}
    await shop.call("DELETE", f"/me/cart/items/{vid}", rival)
    assert (await shop.counters(vid))["reserved"] == 1  # the refused change changed nothing
    cart = (await shop.call("DELETE", f"/me/cart/items/{vid}", buyer))["cart"]
    assert cart["items"] == [] and (await shop.counters(vid))["reserved"] == 0
    await shop.call("DELETE", f"/me/cart/items/{vid}", buyer)  # removing twice is fine
    await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 2}, expect=404)  # not in the cart
    await shop.assert_ledger(vid)
    # the cart persists across devices: another token of the same user sees it
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 1})
    again = await shop.user(buyer.name)
    assert again.id == buyer.id and again.token != "" and (
        await shop.call("GET", "/me/cart", again))["cart"]["items"][0]["quantity"] == 1


async def test_cart_refusals(shop):
    seller, buyer = await shop.seller(), await shop.user()
    usd = await shop.product(seller, stock=3)
    ngn = await shop.product(seller, price=90000, currency="NGN", stock=3)
    draft = await shop.product(seller, status="draft")
    vid = usd["variants"][0]["id"]
    await shop.call("GET", "/me/cart", expect=401)
    await shop.call("POST", "/me/cart/items", json={"variant_id": vid}, expect=401)
    body = await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 4}, expect=409)
    assert body["error"]["code"] == "out_of_stock"
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": str(uuid.uuid4())}, expect=404)
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": draft["variants"][0]["id"]}, expect=404)
    for bad in ({"variant_id": vid, "qty": 0}, {"variant_id": vid, "qty": 100}, {"variant_id": "x"}, {"qty": 1}):
        await shop.call("POST", "/me/cart/items", buyer, json=bad, expect=422)
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid})
    body = await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": ngn["variants"][0]["id"]},
                           expect=409)
    assert body["error"]["code"] == "conflict" and "USD" in body["error"]["message"]
    cart = (await shop.call("GET", "/me/cart", buyer))["cart"]
    assert [i["variant_id"] for i in cart["items"]] == [vid]
    assert await shop.counters(ngn["variants"][0]["id"]) == {"on_hand": 3, "reserved": 0, "sold": 0}


async def test_idempotency_key_does_not_reserve_twice(shop):
    seller, buyer = await shop.seller(), await shop.user()
    vid = (await shop.product(seller, stock=10))["variants"][0]["id"]
    first = await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 2,
                                                                    "idempotency_key": "tap-1"})
    retry = await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 2,
                                                                    "idempotency_key": "tap-1"})
    assert "duplicate" not in first and retry["duplicate"] is True
    assert retry["cart"]["items"][0]["quantity"] == 2
    # the header works too, and a new key is a new add
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid}, headers={"Idempotency-Key": "tap-2"})
    dup = await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid},
                          headers={"Idempotency-Key": "tap-2"})
    assert dup["duplicate"] is True and dup["cart"]["items"][0]["quantity"] == 3
    # the same key from another buyer is theirs, not a duplicate
    other = await shop.user()
    mine = await shop.call("POST", "/me/cart/items", other, json={"variant_id": vid, "idempotency_key": "tap-1"})
    assert "duplicate" not in mine
    # concurrent retries of one request: exactly one reservation
    results = await asyncio.gather(*[shop.call("POST", "/me/cart/items", buyer, json={
        "variant_id": vid, "qty": 1, "idempotency_key": "burst"}) for _ in range(12)])
    assert sum(1 for r in results if not r.get("duplicate")) == 1
    assert (await shop.counters(vid))["reserved"] == 3 + 1 + 1
    await shop.assert_ledger(vid)


async def test_expired_reservations_return_to_stock_and_room_sees_it(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, cart_reservation_seconds=10))
    seller, buyer = await shop.seller(), await shop.user()
    p = await shop.product(seller, stock=4)
    vid = p["variants"][0]["id"]
    stream = await shop.live_stream(seller, product_ids=[p["id"]])
    seller_socket = await shop.viewer(seller)
    watcher = await shop.viewer()
    try:
        assert (await seller_socket.call("join", {"stream_id": stream["id"]}))["ok"]
        assert (await seller_socket.call("product:highlight", {"product_id": p["id"]}))["ok"]
        assert (await watcher.call("join", {"stream_id": stream["slug"]}))["spotlight"]["variants"][0]["available"] == 4
        cart = (await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 3}))["cart"]
        until = datetime.fromisoformat(cart["items"][0]["reserved_until"])
        assert timedelta(seconds=8) < until - datetime.now(timezone.utc) <= timedelta(seconds=10)
        assert (await watcher.wait_for("stock:update", lambda d: d["available"] == 1))["variant_id"] == vid
        # not expired yet: the sweep leaves it
        assert await shop.services.commerce.cart.release_expired() == 0
        assert (await shop.counters(vid))["reserved"] == 3
        await shop.expire_reservations(vid)
        assert await shop.services.commerce.cart.release_expired() == 1
        assert await shop.counters(vid) == {"on_hand": 4, "reserved": 0, "sold": 0}
        got = await watcher.wait_for("stock:update", lambda d: d["available"] == 4)
        assert got["product_id"] == p["id"] and got["stream_id"] == stream["id"]
        ledger = await shop.call("GET", f"/variants/{vid}/inventory", seller)
        assert ledger["items"][0]["kind"] == "release" and ledger["items"][0]["reason"] == "reservation expired"
        # the line stays in the cart, no longer reserved; the hold is not renewed (test_commerce_limits.py)
        # until the cool-down is over: then raising it reserves the whole quantity again
        line = (await shop.call("GET", "/me/cart", buyer))["cart"]["items"][0]
        assert line["quantity"] == 3 and line["reserved"] is False and line["reserved_until"] is None
        body = await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 4}, expect=409)
        assert body["error"]["code"] == "hold_expired"
        await shop.expire_reservations(vid, ago=3601)
        await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 4})
        assert (await shop.counters(vid))["reserved"] == 4
        await shop.assert_ledger(vid)
        # and a variant whose stock is held by an expired line is not refused for long: after the sweep,
        # a buyer who was told out_of_stock gets it
        late = await shop.user()
        body = await shop.call("POST", "/me/cart/items", late, json={"variant_id": vid}, expect=409)
        assert body["error"]["code"] == "out_of_stock"
        await shop.expire_reservations(vid)
        await shop.services.commerce.cart.release_expired()
        await shop.call("POST", "/me/cart/items", late, json={"variant_id": vid})
    finally:
        await seller_socket.close()
        await watcher.close()


async def test_sweeper_runs_by_itself(tmp_path, dsn, aiohttp_client, monkeypatch):
    from live.commerce import shop as commerce_shop

    monkeypatch.setattr(commerce_shop, "reservation_sweep_interval", lambda s: 0.05)
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client))
    seller, buyer = await shop.seller(), await shop.user()
    vid = (await shop.product(seller, stock=2))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 2})
    await shop.expire_reservations(vid)

    async def released() -> bool:
        return (await shop.counters(vid))["reserved"] == 0

    await until(released, 10, step=0.05)
    assert await shop.counters(vid) == {"on_hand": 2, "reserved": 0, "sold": 0}


async def test_socket_cart_events(shop):
    seller, buyer = await shop.seller(), await shop.user()
    p = await shop.product(seller, title="Live tee", price=2000, stock=3)
    vid = p["variants"][0]["id"]
    stream = await shop.live_stream(seller, product_ids=[p["id"]])
    seller_socket, viewer, anon = await shop.viewer(seller), await shop.viewer(buyer), await shop.viewer()
    try:
        assert (await seller_socket.call("join", {"stream_id": stream["id"]}))["ok"]
        assert (await seller_socket.call("product:highlight", {"product_id": p["id"]}))["ok"]
        assert (await viewer.call("join", {"stream_id": stream["slug"]}))["ok"]
        assert (await anon.call("join", {"stream_id": stream["slug"]}))["ok"]
        ack = await viewer.call("cart:add", {"variant_id": vid, "qty": 2, "idempotency_key": "k1"})
        assert ack["ok"] and ack["cart"]["items"][0]["quantity"] == 2
        assert ack["cart"]["items"][0]["livestream_id"] == stream["id"]  # attributed to the stream it is in
        seen = await anon.wait_for("stock:update", lambda d: d["variant_id"] == vid)
        assert seen["available"] == 1 and seen["product_id"] == p["id"]
        assert (await viewer.call("cart:add", {"variant_id": vid, "qty": 2, "idempotency_key": "k1"}))["duplicate"]
        refused = await viewer.call("cart:add", {"variant_id": vid, "qty": 2})
        assert err(refused) == "out_of_stock"
        assert err(await anon.call("cart:add", {"variant_id": vid})) == "unauthorized"
        assert err(await viewer.call("cart:add", {"variant_id": "nope"})) == "invalid"
        assert err(await viewer.call("cart:add", {"variant_id": vid, "qty": "2"})) == "invalid"
        assert err(await viewer.call("cart:add", {"variant_id": str(uuid.uuid4())})) == "not_found"
        upd = await viewer.call("cart:update", {"variant_id": vid, "qty": 3})
        assert upd["ok"] and upd["cart"]["items"][0]["quantity"] == 3
        assert (await anon.wait_for("stock:update", lambda d: d["available"] == 0))["variant_id"] == vid
        rem = await viewer.call("cart:remove", {"variant_id": vid})
        assert rem["ok"] and rem["cart"]["items"] == []
        assert (await anon.wait_for("stock:update", lambda d: d["available"] == 3))["variant_id"] == vid
        rest = (await shop.call("GET", "/me/cart", buyer))["cart"]
        assert rest["items"] == []
        await shop.assert_ledger(vid)
        # the add-to-cart events carry the stream for analytics
        async with shop.services.db.tx(SYSTEM) as conn:
            streams = await conn.fetch("SELECT DISTINCT livestream_id::text FROM inventory_events "
                                       "WHERE variant_id = $1::uuid AND kind = 'reservation'", vid)
        assert [r[0] for r in streams] == [stream["id"]]
    finally:
        for s in (seller_socket, viewer, anon):
            await s.close()
