"""Checkout with shipping: each seller order is charged its chosen rate (or the cheapest fresh one), the order's
total and the payment's amount include it (sandbox and Stripe against the fake Stripe), free shipping after the
coupon, a retry with the same Idempotency-Key answers the same; an expired rate or one of another cart or address
is 409 rate_expired with fresh rates and writes nothing; an inline address is checked per field; rates from Shippo
(the fake Shippo server). Real PostgreSQL."""
from __future__ import annotations

import uuid

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop, make_client
from tests.payments.fakes.stripe_api import FakeStripe
from tests.shipping.fake_shippo import API_KEY, FakeShippo
from tests.shipping.test_rates import TO, add, quote, shipping_seller


async def fetch(shop, sql: str, *args):
    async with shop.services.db.tx(SYSTEM) as conn:
        return await conn.fetch(sql, *args)


async def checkout(shop, buyer, key: str | None = None, expect: int | None = 201, **body):
    body.setdefault("address", TO)
    return await shop.call("POST", "/checkout", buyer, json={"provider": "sandbox", **body},
                           headers={"Idempotency-Key": key or uuid.uuid4().hex}, expect=expect)


async def test_checkout_charges_the_chosen_rates_and_the_payment_includes_them(shop):
    alice, alice_id = await shipping_seller(shop)
    bob, bob_id = await shipping_seller(shop)
    carol = await shop.seller()  # no ship-from: ships by herself, no shipping charge
    a = (await shop.product(alice, price=3000, stock=5))["variants"][0]["id"]
    b = (await shop.product(bob, price=1000, stock=5))["variants"][0]["id"]
    c = (await shop.product(carol, price=500, stock=5))["variants"][0]["id"]
    await shop.call("POST", "/coupons", alice, json={"code": "ALICE10", "kind": "percent", "value": 10},
                    expect=201)
    buyer = await shop.user()
    for vid in (a, b, c):
        await add(shop, buyer, vid, 2)
    quoted = {s["seller_id"]: s for s in (await quote(shop, buyer))["sellers"]}
    express = next(r for r in quoted[alice_id]["rates"] if r["service"] == "express")
    cheapest_bob = quoted[bob_id]["rates"][0]
    out = await checkout(shop, buyer, "ship-1", shipping={alice_id: express["id"]}, coupon_code="ALICE10")
    orders = {o["seller"]["id"]: o for o in out["orders"]}
    oa, ob, oc = orders[alice_id], orders[bob_id], [o for s, o in orders.items() if s not in (alice_id, bob_id)][0]
    assert (oa["subtotal_minor"], oa["discount_minor"], oa["shipping_minor"]) == (6000, 600, express["amount_minor"])
    assert oa["total_minor"] == 6000 - 600 + express["amount_minor"]
    assert (ob["shipping_minor"], ob["total_minor"]) == (cheapest_bob["amount_minor"], 2000 + cheapest_bob[
        "amount_minor"])  # left out: the cheapest fresh rate
    assert (oc["shipping_minor"], oc["total_minor"]) == (0, 1000)
    pay = out["payment"]
    assert pay["amount_minor"] == oa["total_minor"] + ob["total_minor"] + oc["total_minor"]
    rows = {r["seller_id"]: r for r in await fetch(
        shop, "SELECT seller_id::text AS seller_id, shipping_minor, total_minor, shipping_rate FROM orders")}
    rate = rows[alice_id]["shipping_rate"]
    assert rate["rate_id"] == express["id"] and rate["service"] == "express" and rate["provider"] == "sandbox"
    assert rate["amount_minor"] == rate["carrier_amount_minor"] == express["amount_minor"]
    assert rate["provider_rate_id"].startswith("sbx_rate:express:") and rate["parcel"]["weight_g"] == 1000
    assert rows[bob_id]["shipping_rate"]["rate_id"] == cheapest_bob["id"]
    assert [r["shipping_rate"] for s, r in rows.items() if s not in (alice_id, bob_id)] == [None]
    payments = await fetch(shop, "SELECT amount_minor FROM payments")
    assert [p["amount_minor"] for p in payments] == [pay["amount_minor"]]
    # the same key again: the same answer, nothing new
    status, again, headers = await shop.call("POST", "/checkout", buyer, json={
        "provider": "sandbox", "address": TO, "shipping": {alice_id: express["id"]}, "coupon_code": "ALICE10"},
        headers={"Idempotency-Key": "ship-1"}, expect=None)
    assert status == 201 and headers.get("Idempotent-Replayed") == "true" and again == out
    assert len(await fetch(shop, "SELECT id FROM orders")) == 3


async def test_free_shipping_counts_the_subtotal_after_the_discount(shop):
    seller, seller_id = await shipping_seller(shop, free_shipping_over_minor=5000)
    await shop.call("POST", "/coupons", seller, json={"code": "HALF", "kind": "percent", "value": 50}, expect=201)
    vid = (await shop.product(seller, price=3000, stock=9))["variants"][0]["id"]
    buyer, other = await shop.user(), await shop.user()
    await add(shop, buyer, vid, 2)  # 6000 >= 5000: free
    out = await checkout(shop, buyer)
    order = out["orders"][0]
    assert (order["shipping_minor"], order["total_minor"], out["payment"]["amount_minor"]) == (0, 6000, 6000)
    stored = (await fetch(shop, "SELECT shipping_rate FROM orders WHERE id = $1::uuid", order["id"]))[0]
    assert stored["shipping_rate"]["free_shipping"] is True and stored["shipping_rate"]["carrier_amount_minor"] > 0
    await add(shop, other, vid, 2)  # 6000 - 50 % = 3000 < 5000: charged
    quoted = (await quote(shop, other))["sellers"][0]
    assert quoted["free_shipping"] is True  # the quote knows no coupon yet
    out = await checkout(shop, other, coupon_code="HALF", shipping={seller_id: quoted["rates"][0]["id"]})
    order = out["orders"][0]
    carrier_amount = quoted["rates"][0]["carrier_amount_minor"]
    assert (order["shipping_minor"], order["total_minor"]) == (carrier_amount, 3000 + carrier_amount)
    assert out["payment"]["amount_minor"] == 3000 + carrier_amount


async def test_expired_or_stale_rate_is_409_with_fresh_rates_and_writes_nothing(shop):
    seller, seller_id = await shipping_seller(shop)
    v1 = (await shop.product(seller, price=1000, stock=9))["variants"][0]["id"]
    v2 = (await shop.product(seller, price=2000, stock=9))["variants"][0]["id"]
    buyer = await shop.user()
    await add(shop, buyer, v1)
    first = (await quote(shop, buyer))["sellers"][0]["rates"][0]
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE shipping_rates SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
                           first["id"])
    status, body, _ = await checkout(shop, buyer, "exp-1", shipping={seller_id: first["id"]}, expect=None)
    assert status == 409 and body["error"]["code"] == "rate_expired", body
    details = body["error"]["details"]
    assert details["seller_id"] == seller_id and [r["service"] for r in details["rates"]] == [
        "ground", "express", "overnight"]
    fresh = details["rates"][0]
    assert fresh["id"] != first["id"] and fresh["amount_minor"] == first["amount_minor"]
    assert await fetch(shop, "SELECT id FROM orders") == [] and await fetch(shop, "SELECT id FROM payments") == []
    assert await shop.counters(v1) == {"on_hand": 9, "reserved": 1, "sold": 0}
    # the same key with the fresh rate is a new request body, and the rate fits: the checkout goes through
    status, body, _ = await checkout(shop, buyer, "exp-1", shipping={seller_id: fresh["id"]}, expect=None)
    assert status == 201 and body["orders"][0]["shipping_minor"] == fresh["amount_minor"]
    # a rate quoted before the cart changed no longer fits: 409 again, re-quoted for the cart as it is now
    await add(shop, buyer, v2, 3)
    old = (await quote(shop, buyer))["sellers"][0]["rates"][0]
    await add(shop, buyer, v1)
    status, body, _ = await checkout(shop, buyer, shipping={seller_id: old["id"]}, expect=None)
    assert status == 409 and body["error"]["code"] == "rate_expired"
    requoted = body["error"]["details"]["rates"]
    assert requoted and old["id"] not in {r["id"] for r in requoted}
    # ... and so does one quoted for another address, and a rate id that was never quoted
    other_address = {**TO, "city": "Albany", "postal_code": "12207"}
    status, body, _ = await checkout(shop, buyer, address=other_address, shipping={seller_id: requoted[0]["id"]},
                                     expect=None)
    assert status == 409 and body["error"]["code"] == "rate_expired"
    status, body, _ = await checkout(shop, buyer, shipping={seller_id: str(uuid.uuid4())}, expect=None)
    assert status == 409 and body["error"]["details"]["seller_id"] == seller_id
    # a seller the cart has nothing from is refused by name
    stranger = str(uuid.uuid4())
    status, body, _ = await checkout(shop, buyer, shipping={stranger: requoted[0]["id"]}, expect=None)
    assert status == 422 and body["error"]["details"][0]["field"] == f"shipping.{stranger}"
    assert len(await fetch(shop, "SELECT id FROM orders")) == 1
    # leaving the choice out: the cheapest fresh rate for the cart as it is, quoted on the fly
    out = await checkout(shop, buyer)
    assert out["orders"][0]["shipping_minor"] == requoted[0]["amount_minor"] > 0


async def test_inline_address_errors_per_field_and_nothing_written(shop):
    seller, _ = await shipping_seller(shop)
    vid = (await shop.product(seller, price=1000, stock=3))["variants"][0]["id"]
    buyer = await shop.user()
    await add(shop, buyer, vid)
    status, body, _ = await checkout(shop, buyer, address={**TO, "postal_code": "1000", "state": "NOPE"},
                                     expect=None)
    assert status == 422 and body["error"]["code"] == "validation_failed"
    assert {d["field"] for d in body["error"]["details"]} == {"address.postal_code", "address.state"}, body
    assert await fetch(shop, "SELECT id FROM orders") == []
    assert await fetch(shop, "SELECT id FROM shipping_rates") == []


async def test_stripe_is_asked_for_the_amount_with_shipping(tmp_path, dsn, aiohttp_client):
    fake = await FakeStripe(api_key="sk_test_ship").start()
    try:
        shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, stripe_secret_key="sk_test_ship",
                                      stripe_webhook_secret="whsec_test", stripe_api_base=fake.url))
        seller, _ = await shipping_seller(shop)
        vid = (await shop.product(seller, price=4100, stock=2))["variants"][0]["id"]
        buyer = await shop.user()
        await add(shop, buyer, vid)
        out = await checkout(shop, buyer, provider="stripe")
        shipping = out["orders"][0]["shipping_minor"]
        assert shipping > 0 and out["payment"]["amount_minor"] == 4100 + shipping
        creates = [r for r in fake.requests if r["path"] == "/v1/payment_intents" and r["method"] == "POST"]
        assert [r["params"]["amount"] for r in creates] == [str(4100 + shipping)]
    finally:
        await fake.close()


async def test_rates_and_checkout_through_shippo(tmp_path, dsn, aiohttp_client):
    fake = await FakeShippo().start()
    try:
        shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, shippo_api_key=API_KEY,
                                      shippo_api_base=fake.url, shippo_webhook_token="t" * 24))
        seller, seller_id = await shipping_seller(shop)
        vid = (await shop.product(seller, price=2500, stock=4))["variants"][0]["id"]
        buyer = await shop.user()
        await add(shop, buyer, vid, 2)  # 2 x 500 g (the defaults): 1000 g, volumetric 2 x 20x15x10 / 5000 kg
        got = (await quote(shop, buyer))["sellers"][0]
        assert got["parcel"] == {"weight_g": 1000, "length_cm": 20.0, "width_cm": 15.0, "height_cm": 20.0}
        assert [r["service"] for r in got["rates"]] == ["usps_ground_advantage", "usps_priority", "ups_next_day_air"]
        assert [r["amount_minor"] for r in got["rates"]] == sorted(r["amount_minor"] for r in got["rates"])
        sent = [r for r in fake.requests if r["path"] == "/shipments/"][-1]["params"]
        assert sent["address_from"]["zip"] == "94105" and sent["address_to"]["zip"] == "10001"
        assert sent["parcels"][0]["weight"] == "1000" and sent["parcels"][0]["mass_unit"] == "g"
        validations = [r for r in fake.requests if r["path"] == "/addresses/"]
        assert validations and all(r["params"].get("validate") for r in validations)
        priority = got["rates"][1]
        out = await checkout(shop, buyer, shipping={seller_id: priority["id"]})
        assert out["orders"][0]["shipping_minor"] == priority["amount_minor"]
        rate = (await fetch(shop, "SELECT shipping_rate FROM orders"))[0]["shipping_rate"]
        assert rate["provider"] == "shippo" and rate["provider_rate_id"] in fake.rates
        # Shippo refuses an address: 422 naming the field, nothing written
        status, body, _ = await shop.call("POST", "/me/addresses", buyer, json={**TO, "line1": "1 Nowhere Lane"},
                                          expect=None)
        assert status == 422 and body["error"]["code"] == "validation_failed", body
        assert body["error"]["details"][0]["field"]
        # no rate in the cart's currency (Shippo quotes this route in USD only): none offered, checkout refused
        euro = (await shop.product(seller, price=2500, stock=4, currency="EUR"))["variants"][0]["id"]
        other = await shop.user()
        await add(shop, other, euro)
        got = (await quote(shop, other))["sellers"][0]
        assert (got["ships"], got["rates"]) == (True, []) and "EUR" in got["unavailable"]
        status, body, _ = await checkout(shop, other, expect=None)
        assert status == 409 and body["error"]["code"] == "conflict", body
        assert body["error"]["details"] == {"seller_id": seller_id}
        assert len(await fetch(shop, "SELECT id FROM orders")) == 1
    finally:
        await fake.close()


async def test_the_order_shows_its_chosen_rate_to_the_buyer_and_the_seller(shop):
    seller, seller_id = await shipping_seller(shop)
    hand = await shop.seller()  # no ship-from: no rate
    vid = (await shop.product(seller, price=3000, stock=5))["variants"][0]["id"]
    hid = (await shop.product(hand, price=500, stock=5))["variants"][0]["id"]
    buyer = await shop.user()
    await add(shop, buyer, vid, 1)
    await add(shop, buyer, hid, 1)
    [quoted] = [s for s in (await quote(shop, buyer))["sellers"] if s["seller_id"] == seller_id]
    express = next(r for r in quoted["rates"] if r["service"] == "express")
    want = {"carrier": express["carrier"], "service": "express", "service_name": express["service_name"],
            "estimated_days": express["estimated_days"], "amount_minor": express["amount_minor"],
            "currency": express["currency"], "free_shipping": False}
    sock = await shop.viewer(buyer)
    try:
        out = await checkout(shop, buyer, shipping={seller_id: express["id"]})
        [order] = [o for o in out["orders"] if o["seller"]["id"] == seller_id]
        [other] = [o for o in out["orders"] if o["seller"]["id"] != seller_id]
        assert order["shipping_rate"] == want and other["shipping_rate"] is None
        assert want["amount_minor"] > 0 and want["estimated_days"] is not None
        pushed = await sock.wait_for("order:update", lambda d: d["order"]["id"] == order["id"])
        assert pushed["order"]["shipping_rate"] == want
    finally:
        await sock.close()
    assert (await shop.call("GET", f"/me/orders/{order['id']}", buyer))["shipping_rate"] == want
    assert (await shop.call("GET", f"/seller/orders/{order['id']}", seller))["shipping_rate"] == want
    mine = {o["id"]: o["shipping_rate"] for o in (await shop.call("GET", "/me/orders", buyer))["items"]}
    assert mine == {order["id"]: want, other["id"]: None}
    [listed] = (await shop.call("GET", "/seller/orders", seller))["items"]
    assert listed["shipping_rate"] == want  # the carrier's own ids and the parcel stay internal
