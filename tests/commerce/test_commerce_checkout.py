"""Checkout: one order per seller with an LS-YYYY-NNNNNN number, reservations turned into sales, coupons,
one payment; the Idempotency-Key (retry -> the same result and one payment, other body -> 422, concurrent
duplicate -> one checkout); re-validation of released reservations; a failing provider (the real stripe
library against a local fake Stripe that refuses) and the retry."""
from __future__ import annotations

import asyncio
import re
import uuid

from live.auth.principal import SYSTEM
from tests.commerce.harness import ADDRESS, Shop, make_client
from tests.payments.fakes.stripe_api import FakeStripe

NUMBER = re.compile(r"^LS-\d{4}-\d{6,}$")


async def _count(shop, sql: str, *args) -> int:
    async with shop.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval(sql, *args)


async def test_checkout_one_order_per_seller(shop):
    alice, bob, buyer = await shop.seller(), await shop.seller(), await shop.user()
    a1 = (await shop.product(alice, title="Alice hat", price=1500, stock=5))["variants"][0]["id"]
    a2 = (await shop.product(alice, title="Alice scarf", price=2500, stock=5))["variants"][0]["id"]
    b1 = (await shop.product(bob, title="Bob mug", price=900, stock=5))["variants"][0]["id"]
    for vid, qty in ((a1, 2), (a2, 1), (b1, 3)):
        await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": qty})
    out = await shop.checkout(buyer, "order-1", provider="sandbox")
    orders = {o["seller"]["name"]: o for o in out["orders"]}
    assert set(orders) == {alice.name, bob.name}
    a, b = orders[alice.name], orders[bob.name]
    assert NUMBER.match(a["number"]) and NUMBER.match(b["number"]) and a["number"] != b["number"]
    assert (a["subtotal_minor"], a["total_minor"], a["currency"], a["status"]) == (5500, 5500, "USD",
                                                                                   "pending_payment")
    assert sorted((i["title"], i["quantity"], i["unit_price_minor"]) for i in a["items"]) == [
        ("Alice hat", 2, 1500), ("Alice scarf", 1, 2500)]
    assert b["total_minor"] == 2700 and a["shipping_address"]["city"] == ADDRESS["city"]
    pay = out["payment"]
    assert (pay["provider"], pay["status"], pay["amount_minor"], pay["currency"]) == (
        "sandbox", "requires_action", 8200, "USD")
    assert pay["authorization_url"].endswith("/pay/sandbox/" + pay["provider_ref"]) and pay["started"] is True
    # reservations became sales, with ledger rows; the cart is closed and a new one starts empty
    assert await shop.counters(a1) == {"on_hand": 5, "reserved": 0, "sold": 2}
    assert await shop.counters(b1) == {"on_hand": 5, "reserved": 0, "sold": 3}
    for vid in (a1, a2, b1):
        await shop.assert_ledger(vid)
    assert (await shop.call("GET", "/me/cart", buyer))["cart"]["items"] == []
    # the buyer's view: list and detail with history and payment
    mine = await shop.call("GET", "/me/orders", buyer)
    assert {o["id"] for o in mine["items"]} == {a["id"], b["id"]}
    detail = await shop.call("GET", f"/me/orders/{a['id']}", buyer)
    assert [(h["from"], h["to"], h["actor_kind"]) for h in detail["history"]] == [(None, "pending_payment", "user")]
    assert detail["payment"]["id"] == pay["id"] and detail["payment"]["authorization_url"] == pay["authorization_url"]
    assert detail["shipments"] == []
    await shop.call("GET", f"/me/orders/{a['id']}", await shop.user(), expect=404)
    # each seller sees only their order, and not the buyer's payment secrets
    seen = await shop.call("GET", "/seller/orders", alice)
    assert [o["id"] for o in seen["items"]] == [a["id"]]
    seller_view = await shop.call("GET", f"/seller/orders/{a['id']}", alice)
    assert seller_view["payment"]["status"] == "requires_action" and "authorization_url" not in seller_view["payment"]
    await shop.call("GET", f"/seller/orders/{a['id']}", bob, expect=404)


async def test_same_idempotency_key_returns_the_same_checkout(shop):
    seller, buyer = await shop.seller(), await shop.user()
    vid = (await shop.product(seller, price=1200, stock=4))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 2})
    first = await shop.checkout(buyer, "same-key", provider="sandbox")
    status, again, headers = await shop.checkout(buyer, "same-key", provider="sandbox", expect=None)
    assert status == 201 and again == first and headers.get("Idempotent-Replayed") == "true"
    assert await _count(shop, "SELECT count(*) FROM payments") == 1
    assert await _count(shop, "SELECT count(*) FROM orders") == 1
    # the same key with another body is refused, and changes nothing
    status, body, _ = await shop.checkout(buyer, "same-key", provider="sandbox", coupon_code="X", expect=None)
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    # another buyer's identical key is their own
    other = await shop.user()
    status, body, _ = await shop.checkout(other, "same-key", provider="sandbox", expect=None)
    assert status == 409 and body["error"]["code"] == "cart_empty"
    # without a key: refused
    status, body, _ = await shop.call("POST", "/checkout", buyer, json={"address": ADDRESS}, expect=None)
    assert status == 400 and "Idempotency-Key" in body["error"]["message"]
    assert await shop.counters(vid) == {"on_hand": 4, "reserved": 0, "sold": 2}


async def test_concurrent_duplicates_make_one_checkout(shop):
    seller, buyer = await shop.seller(), await shop.user()
    vid = (await shop.product(seller, price=700, stock=9))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 3})
    results = await asyncio.gather(*[shop.checkout(buyer, "double-click", provider="sandbox", expect=None)
                                     for _ in range(8)])
    created = [body for status, body, _ in results if status == 201]
    busy = [body for status, body, _ in results if status == 409]
    assert created and len(created) + len(busy) == 8
    assert all(b == created[0] for b in created)
    assert {b["error"]["code"] for b in busy} <= {"in_progress"}
    assert await _count(shop, "SELECT count(*) FROM payments") == 1
    assert await _count(shop, "SELECT count(*) FROM orders") == 1
    assert await shop.counters(vid) == {"on_hand": 9, "reserved": 0, "sold": 3}
    final = await shop.checkout(buyer, "double-click", provider="sandbox")
    assert final == created[0]


async def test_checkout_revalidates_released_reservations(shop):
    seller, buyer, rival = await shop.seller(), await shop.user(), await shop.user()
    p1 = (await shop.product(seller, title="Plenty", stock=10))["variants"][0]["id"]
    p2 = (await shop.product(seller, title="Scarce", stock=2))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": p1, "qty": 2})
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": p2, "qty": 2})
    await shop.expire_reservations()
    await shop.services.commerce.cart.release_expired()
    await shop.call("POST", "/me/cart/items", rival, json={"variant_id": p2, "qty": 1})  # takes one meanwhile
    status, body, _ = await shop.checkout(buyer, "k", provider="sandbox", expect=None)
    assert status == 409 and body["error"]["code"] == "out_of_stock"
    assert body["error"]["details"] == [{"variant_id": p2, "sku": body["error"]["details"][0]["sku"],
                                         "title": "Scarce", "requested": 2, "available": 1}]
    # nothing was taken, the key is free again, the cart is intact
    assert await shop.counters(p1) == {"on_hand": 10, "reserved": 0, "sold": 0}
    assert await _count(shop, "SELECT count(*) FROM checkout_requests") == 0
    await shop.call("PATCH", f"/me/cart/items/{p2}", buyer, json={"qty": 1})
    await shop.expire_reservations(p2)
    await shop.services.commerce.cart.release_expired()
    out = await shop.checkout(buyer, "k", provider="sandbox")  # p1 released: re-taken since stock allows
    assert sorted(i["quantity"] for i in out["orders"][0]["items"]) == [1, 2]
    assert await shop.counters(p1) == {"on_hand": 10, "reserved": 0, "sold": 2}
    assert await shop.counters(p2) == {"on_hand": 2, "reserved": 0, "sold": 1}  # the rival's hold expired too
    for vid in (p1, p2):
        await shop.assert_ledger(vid)


async def test_coupons(shop):
    admin, alice, bob, buyer = (await shop.user(role="admin"), await shop.seller(), await shop.seller(),
                                await shop.user())
    a = (await shop.product(alice, price=3000, stock=10))["variants"][0]["id"]
    b = (await shop.product(bob, price=1000, stock=10))["variants"][0]["id"]
    await shop.call("POST", "/coupons", alice, json={"code": "ALICE5", "kind": "amount", "value": 500,
                                                     "currency": "USD"}, expect=201)
    await shop.call("POST", "/coupons", admin, json={"code": "ALL10", "kind": "amount", "value": 1000,
                                                     "currency": "USD", "platform": True}, expect=201)
    await shop.call("POST", "/coupons", bob, json={"code": "OLD", "kind": "percent", "value": 50,
                                                   "ends_at": "2020-01-01T00:00:00Z"}, expect=201)
    await shop.call("POST", "/coupons", bob, json={"code": "BIG", "kind": "percent", "value": 50,
                                                   "min_subtotal_minor": 100000}, expect=201)
    await shop.call("POST", "/coupons", alice, json={"code": "ALL10", "kind": "percent", "value": 5}, expect=201)
    await shop.call("POST", "/coupons", alice, json={"code": "alice5", "kind": "percent", "value": 5}, expect=409)
    await shop.call("POST", "/coupons", bob, json={"code": "P", "kind": "percent", "value": 101}, expect=422)
    await shop.call("POST", "/coupons", bob, json={"code": "A", "kind": "amount", "value": 5}, expect=422)
    await shop.call("POST", "/coupons", bob, json={"code": "X", "kind": "percent", "value": 5, "platform": True},
                    expect=403)
    for vid in (a, b):
        await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 1})
    for code, expected in (("NOPE", "invalid_coupon"), ("OLD", "invalid_coupon"), ("BIG", "invalid_coupon")):
        status, body, _ = await shop.checkout(buyer, coupon_code=code, provider="sandbox", expect=None)
        assert status == 422 and body["error"]["code"] == expected, (code, body)
    # ALL10: the platform's 1000 split 3:1 across the two orders beats Alice's 5 % of her order
    out = await shop.checkout(buyer, coupon_code="all10", provider="sandbox")
    by_seller = {o["seller"]["name"]: o for o in out["orders"]}
    assert (by_seller[alice.name]["discount_minor"], by_seller[bob.name]["discount_minor"]) == (750, 250)
    assert (by_seller[alice.name]["total_minor"], by_seller[bob.name]["total_minor"]) == (2250, 750)
    assert out["payment"]["amount_minor"] == 3000 and out["coupon_code"] == "ALL10"
    assert by_seller[alice.name]["coupon_code"] == "ALL10"
    # a seller's amount coupon applies to that seller's order only
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": a, "qty": 1})
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": b, "qty": 1})
    out = await shop.checkout(buyer, coupon_code="ALICE5", provider="sandbox")
    by_seller = {o["seller"]["name"]: o for o in out["orders"]}
    assert (by_seller[alice.name]["discount_minor"], by_seller[bob.name]["discount_minor"]) == (500, 0)
    assert by_seller[bob.name]["coupon_code"] is None
    # sellers manage their own coupons only
    alice_coupons = (await shop.call("GET", "/me/coupons", alice))["items"]
    alice5 = next(c for c in alice_coupons if c["code"] == "ALICE5")
    assert alice5["used_count"] == 1
    await shop.call("PATCH", f"/coupons/{alice5['id']}", bob, json={"active": False}, expect=403)
    await shop.call("PATCH", f"/coupons/{alice5['id']}", alice, json={"usage_limit": 0}, expect=422)
    assert (await shop.call("PATCH", f"/coupons/{alice5['id']}", alice, json={"active": False}))["active"] is False
    assert [c["code"] for c in (await shop.call("GET", "/me/coupons?platform=true", admin))["items"]] == ["ALL10"]


async def test_free_checkout_is_paid_at_once(shop):
    seller, buyer = await shop.seller(), await shop.user()
    vid = (await shop.product(seller, price=800, stock=3))["variants"][0]["id"]
    await shop.call("POST", "/coupons", seller, json={"code": "FREE", "kind": "percent", "value": 100}, expect=201)
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid})
    out = await shop.checkout(buyer, coupon_code="FREE", provider="sandbox")
    assert out["orders"][0]["status"] == "paid" and out["orders"][0]["total_minor"] == 0
    assert out["payment"]["status"] == "succeeded" and out["payment"]["provider_ref"] is None


async def test_checkout_input_errors(shop):
    seller, buyer = await shop.seller(), await shop.user()
    vid = (await shop.product(seller, stock=3))["variants"][0]["id"]
    status, body, _ = await shop.checkout(buyer, provider="sandbox", expect=None)
    assert status == 409 and body["error"]["code"] == "cart_empty"
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid})
    for bad in ({}, {"address": {**ADDRESS, "country": "Nigeria"}},
                {"address": ADDRESS, "address_id": str(uuid.uuid4())},
                {"address": ADDRESS, "provider": "paypal"}, {"address": ADDRESS, "coupon_code": "no spaces"}):
        status, body, _ = await shop.call("POST", "/checkout", buyer, json=bad,
                                          headers={"Idempotency-Key": uuid.uuid4().hex}, expect=None)
        assert status == 422 and body["error"]["code"] == "validation_failed", bad
    status, body, _ = await shop.checkout(buyer, provider="stripe", expect=None)  # no Stripe keys here
    assert status == 422 and body["error"]["code"] == "provider_unavailable"
    status, body, _ = await shop.call("POST", "/checkout", buyer, json={"address_id": str(uuid.uuid4())},
                                      headers={"Idempotency-Key": "addr"}, expect=None)
    assert status == 404
    await shop.call("POST", "/checkout", json={"address": ADDRESS}, headers={"Idempotency-Key": "a"}, expect=401)
    # nothing of it touched the cart or the stock
    assert await shop.counters(vid) == {"on_hand": 3, "reserved": 1, "sold": 0}
    assert await _count(shop, "SELECT count(*) FROM orders") == 0


async def test_provider_failure_keeps_orders_pending_and_the_retry_starts_the_payment(tmp_path, dsn, aiohttp_client):
    fake = await FakeStripe(api_key="sk_test_the_real_one").start()
    try:
        shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, stripe_secret_key="sk_test_not_accepted",
                                      stripe_webhook_secret="whsec_test", stripe_api_base=fake.url))
        seller, buyer = await shop.seller(), await shop.user()
        vid = (await shop.product(seller, price=4100, stock=2))["variants"][0]["id"]
        await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid})
        first = await shop.checkout(buyer, "pay-1")  # the default provider: stripe
        assert first["payment"]["provider"] == "stripe" and first["payment"]["started"] is False
        assert "stripe" in first["payment"]["error"] and first["payment"]["client_secret"] is None
        assert first["orders"][0]["status"] == "pending_payment"
        assert await shop.counters(vid) == {"on_hand": 2, "reserved": 0, "sold": 1}
        fake.api_key = "sk_test_not_accepted"  # the provider is reachable again
        status, again, headers = await shop.checkout(buyer, "pay-1", expect=None)
        assert status == 201 and headers.get("Idempotent-Replayed") == "true"
        assert again["orders"] == first["orders"] and again["payment"]["started"] is True
        assert again["payment"]["client_secret"] and again["payment"]["provider_ref"].startswith("pi_")
        creates = [r for r in fake.requests if r["path"] == "/v1/payment_intents" and r["method"] == "POST"]
        assert creates[-1]["params"]["metadata"]["payment_id"] == first["payment"]["id"]
        assert {r["headers"]["Idempotency-Key"] for r in creates} == {"payment-" + first["payment"]["id"]}
        assert creates[-1]["params"]["amount"] == "4100" and creates[-1]["params"]["currency"] == "usd"
        # from now on the stored response is replayed without calling Stripe again
        n = len(fake.requests)
        assert await shop.checkout(buyer, "pay-1") == again and len(fake.requests) == n
        assert await _count(shop, "SELECT count(*) FROM payments") == 1
    finally:
        await fake.close()


async def test_saved_addresses(shop):
    seller, buyer, other = await shop.seller(), await shop.seller(), await shop.user()
    vid = (await shop.product(seller, stock=3))["variants"][0]["id"]
    home = await shop.call("POST", "/me/addresses", buyer, json={**ADDRESS, "default": True}, expect=201)
    work = await shop.call("POST", "/me/addresses", buyer, json={**ADDRESS, "line1": "9 Office Rd", "default": True},
                           expect=201)
    listed = (await shop.call("GET", "/me/addresses", buyer))["items"]
    assert [(a["id"], a["is_default"]) for a in listed] == [(work["id"], True), (home["id"], False)]
    assert (await shop.call("GET", "/me/addresses", other))["items"] == []
    await shop.call("POST", "/me/addresses", buyer, json={**ADDRESS, "country": "ng"}, expect=422)
    await shop.call("POST", "/me/cart/items", other, json={"variant_id": vid})
    status, body, _ = await shop.call("POST", "/checkout", other, json={"address_id": work["id"]},
                                      headers={"Idempotency-Key": "x"}, expect=None)
    assert status == 404  # not theirs
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid})
    out = await shop.call("POST", "/checkout", buyer, json={"address_id": work["id"], "provider": "sandbox"},
                          headers={"Idempotency-Key": "y"}, expect=201)
    assert out["orders"][0]["shipping_address"]["line1"] == "9 Office Rd"
    await shop.call("DELETE", f"/me/addresses/{work['id']}", other, expect=404)
    await shop.call("DELETE", f"/me/addresses/{work['id']}", buyer, expect=204)
    assert [a["id"] for a in (await shop.call("GET", "/me/addresses", buyer))["items"]] == [home["id"]]


async def test_archived_product_in_cart_blocks_checkout_until_removed(shop):
    seller, buyer = await shop.seller(), await shop.user()
    keep = await shop.product(seller, title="Keeps selling", stock=3)
    gone = await shop.product(seller, title="Discontinued", stock=3)
    for p in (keep, gone):
        await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": p["variants"][0]["id"]})
    await shop.call("DELETE", f"/products/{gone['id']}", seller)
    cart = (await shop.call("GET", "/me/cart", buyer))["cart"]
    lines = {i["variant_id"]: i for i in cart["items"]}
    assert lines[gone["variants"][0]["id"]]["purchasable"] is False  # still shown, so it can be removed
    assert lines[keep["variants"][0]["id"]]["purchasable"] is True
    status, body, _ = await shop.checkout(buyer, "arch", provider="sandbox", expect=None)
    assert status == 409 and body["error"]["code"] == "product_unavailable"
    assert body["error"]["details"] == [{"variant_id": gone["variants"][0]["id"], "sku": gone["variants"][0]["sku"],
                                         "title": "Discontinued"}]
    await shop.call("DELETE", f"/me/cart/items/{gone['variants'][0]['id']}", buyer)
    out = await shop.checkout(buyer, "arch", provider="sandbox")
    assert [i["title"] for i in out["orders"][0]["items"]] == ["Keeps selling"]
    assert await shop.counters(gone["variants"][0]["id"]) == {"on_hand": 3, "reserved": 0, "sold": 0}


async def test_idempotency_keys_are_forgotten_after_a_day(shop):
    seller, buyer = await shop.seller(), await shop.user()
    vid = (await shop.product(seller, stock=3))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid})
    await shop.checkout(buyer, "old-key", provider="sandbox")
    orders = shop.services.commerce.order_payments
    assert await orders.purge_checkout_keys() == 0
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE checkout_requests SET created_at = now() - interval '25 hours'")
    assert await orders.purge_checkout_keys() == 1
    status, body, _ = await shop.checkout(buyer, "old-key", provider="sandbox", expect=None)
    assert status == 409 and body["error"]["code"] == "cart_empty"  # nothing is bought twice
    assert await _count(shop, "SELECT count(*) FROM orders") == 1
