"""Shipping rates for the buyer's cart (POST /cart/shipping-rates): one quote per seller order with the parcel
(variant > product > seller default), rates cheapest first with their expiry, stored under a quote key (a changed
cart or address is a new quote), reused while fresh, bounded per buyer; free shipping over the seller's
threshold; a cart too heavy to ship; a seller without a ship-from address. Real PostgreSQL, the sandbox carrier."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from live.auth.principal import SYSTEM
from live.commerce.shipping import quotes as quotes_module
from live.commerce.shipping.carriers.base import Parcel
from live.commerce.shipping.carriers.sandbox import billable_grams, price
from tests.shipping.test_seller_shipping import SHIP_FROM

TO = {"name": "Ada Buyer", "line1": "5 Broadway", "city": "New York", "state": "NY", "postal_code": "10001",
      "country": "US"}


async def shipping_seller(shop, **settings):
    seller = await shop.seller()
    await shop.call("PUT", "/seller/shipping", seller, json={"ship_from": SHIP_FROM, **settings})
    async with shop.services.db.tx(SYSTEM) as conn:
        seller_id = await conn.fetchval("SELECT id::text FROM sellers WHERE user_id = $1::uuid", seller.id)
    return seller, seller_id


async def add(shop, buyer, variant_id: str, qty: int = 1) -> None:
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": variant_id, "qty": qty})


async def quote(shop, buyer, address=TO, expect: int | None = 200, **body):
    return await shop.call("POST", "/cart/shipping-rates", buyer, json={"address": address, **body}, expect=expect)


async def stored(shop, user_id: str) -> list[dict]:
    async with shop.services.db.tx(SYSTEM) as conn:
        return [dict(r) for r in await conn.fetch(
            "SELECT id::text AS id, seller_id::text AS seller_id, quote_key, expires_at, amount_minor, "
            "carrier_amount_minor FROM shipping_rates WHERE user_id = $1::uuid", user_id)]


def sandbox_price(service: str, zone: int, parcel: dict) -> int:
    return price(service, zone, billable_grams(Parcel(**parcel)), "USD")


async def test_quote_shape_order_parcel_and_storage(shop):
    seller, seller_id = await shipping_seller(shop, default_weight_g=400)
    plain, noship = await shop.seller(), None
    product = await shop.call("POST", "/products", seller, json={
        "title": "Boots", "status": "active", "weight_g": 1500, "length_cm": 30, "width_cm": 20, "height_cm": 12,
        "variants": [{"sku": "B-41", "price_minor": 9000, "currency": "USD", "stock": 5},
                     {"sku": "B-46", "price_minor": 9000, "currency": "USD", "stock": 5, "weight_g": 2000,
                      "length_cm": 36}]}, expect=201)
    socks = await shop.product(seller, price=500)  # no weight or size: the seller's defaults (400 g, 20x15x10)
    noship = await shop.product(plain, price=700)
    v41, v46 = (v["id"] for v in sorted(product["variants"], key=lambda v: v["sku"]))
    buyer = await shop.user()
    await add(shop, buyer, v41, 2)
    await add(shop, buyer, v46)
    await add(shop, buyer, socks["variants"][0]["id"], 3)
    await add(shop, buyer, noship["variants"][0]["id"])
    out = await quote(shop, buyer)
    assert out["currency"] == "USD"
    by_seller = {s["seller_id"]: s for s in out["sellers"]}
    assert len(by_seller) == 2
    mine = by_seller[seller_id]
    # weights: 2 x 1500 (product) + 2000 (variant) + 3 x 400 (seller default); box: longest, widest, stacked heights
    assert mine["parcel"] == {"weight_g": 2 * 1500 + 2000 + 3 * 400, "length_cm": 36.0, "width_cm": 20.0,
                              "height_cm": 3 * 12 + 3 * 10}
    assert mine["ships"] is True and mine["free_shipping"] is False
    rates = mine["rates"]
    assert [r["service"] for r in rates] == ["ground", "express", "overnight"]  # CA -> NY: one country, zone 2
    assert [r["amount_minor"] for r in rates] == sorted(r["amount_minor"] for r in rates)
    assert rates[0]["amount_minor"] == sandbox_price("ground", 2, mine["parcel"])
    now = datetime.now(timezone.utc)
    for r in rates:
        assert set(r) == {"id", "carrier", "service", "service_name", "amount_minor", "carrier_amount_minor",
                          "currency", "estimated_days", "expires_at"}
        assert r["carrier"] == "sandbox" and r["currency"] == "USD" and r["amount_minor"] == r["carrier_amount_minor"]
        expires = datetime.fromisoformat(r["expires_at"])
        assert now < expires <= now + timedelta(seconds=900 + 5)
    other = by_seller[[s for s in by_seller if s != seller_id][0]]
    assert (other["ships"], other["rates"], other["parcel"], other["unavailable"]) == (False, [], None, None)
    assert mine["unavailable"] is None
    rows = await stored(shop, buyer.id)
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in rates)
    # the same cart and address again: the same stored rates (the carrier is not asked again)
    again = await quote(shop, buyer)
    assert [r["id"] for r in {s["seller_id"]: s for s in again["sellers"]}[seller_id]["rates"]] == [
        r["id"] for r in rates]
    # a saved address works the same; another address is another quote and the old rates go
    saved = await shop.call("POST", "/me/addresses", buyer, json={**TO, "city": "Brooklyn", "postal_code": "11201"},
                            expect=201)
    moved = await shop.call("POST", "/cart/shipping-rates", buyer, json={"address_id": saved["id"]})
    new_ids = {r["id"] for r in {s["seller_id"]: s for s in moved["sellers"]}[seller_id]["rates"]}
    assert new_ids and not new_ids & {r["id"] for r in rates}
    assert {r["id"] for r in await stored(shop, buyer.id)} == new_ids


async def test_free_shipping_over_the_threshold(shop):
    seller, seller_id = await shipping_seller(shop, free_shipping_over_minor=5000)
    vid = (await shop.product(seller, price=2000, stock=10))["variants"][0]["id"]
    buyer = await shop.user()
    await add(shop, buyer, vid, 2)  # 4000: under
    under = (await quote(shop, buyer))["sellers"][0]
    assert under["free_shipping"] is False and all(r["amount_minor"] > 0 for r in under["rates"])
    await shop.call("PATCH", f"/me/cart/items/{vid}", buyer, json={"qty": 3})  # 6000: over
    over = (await quote(shop, buyer))["sellers"][0]
    assert over["free_shipping"] is True
    assert all(r["amount_minor"] == 0 and r["carrier_amount_minor"] > 0 for r in over["rates"])
    rows = await stored(shop, buyer.id)
    assert all(r["carrier_amount_minor"] > 0 for r in rows)


async def test_bounds_too_heavy_cart_and_rates_kept(shop, monkeypatch):
    seller, seller_id = await shipping_seller(shop)
    heavy = await shop.call("POST", "/products", seller, json={
        "title": "Anvil", "status": "active", "weight_g": 40_000,
        "variants": [{"sku": "ANVIL", "price_minor": 100, "currency": "USD", "stock": 5}]}, expect=201)
    buyer = await shop.user()
    await add(shop, buyer, heavy["variants"][0]["id"], 2)
    status, body, _ = await quote(shop, buyer, expect=None)
    assert status == 422 and body["error"]["code"] == "validation_failed", body
    detail = body["error"]["details"][0]
    assert detail["field"] == "cart" and "80000 g" in detail["message"] and detail["seller_id"] == seller_id
    # checkout refuses it the same way, and writes nothing
    status, body, _ = await shop.checkout(buyer, address=TO, provider="sandbox", expect=None)
    assert status == 422 and body["error"]["details"][0]["field"] == "cart"
    async with shop.services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    # rates kept per buyer: a new quote of a seller replaces the seller's old one (another cart or address)
    buyer2 = await shop.user()
    light = (await shop.product(seller, price=100))["variants"][0]["id"]
    await add(shop, buyer2, light)
    for city, code in (("Albany", "12207"), ("Buffalo", "14201"), ("Albany", "12207")):
        got = await quote(shop, buyer2, {**TO, "city": city, "postal_code": code})
        assert {r["id"] for r in await stored(shop, buyer2.id)} == {r["id"] for r in got["sellers"][0]["rates"]}
    # ... and past MAX_RATES_KEPT (here 4) the oldest go, never the quote just made
    monkeypatch.setattr(quotes_module, "MAX_RATES_KEPT", 4)
    other, _ = await shipping_seller(shop)
    await shop.call("DELETE", f"/me/cart/items/{light}", buyer2)
    await add(shop, buyer2, (await shop.product(other, price=100))["variants"][0]["id"])
    newest = {r["id"] for r in (await quote(shop, buyer2))["sellers"][0]["rates"]}
    kept = {r["id"] for r in await stored(shop, buyer2.id)}
    assert len(newest) == 3 and len(kept) == 4 and newest < kept
    # expired rates go when the buyer quotes again
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE shipping_rates SET expires_at = now() - interval '1 second' WHERE user_id = $1",
                           buyer2.id)
    last = await quote(shop, buyer2)
    assert {r["id"] for r in await stored(shop, buyer2.id)} == {r["id"] for r in last["sellers"][0]["rates"]}
    # the sweeper deletes every buyer's expired rates
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE shipping_rates SET expires_at = now() - interval '1 second'")
    assert await shop.services.commerce.shipping.quotes.sweep() > 0
    assert await stored(shop, buyer2.id) == []


async def test_quote_input_errors(shop):
    seller, _ = await shipping_seller(shop)
    buyer = await shop.user()
    status, body, _ = await quote(shop, buyer, expect=None)
    assert status == 409 and body["error"]["code"] == "cart_empty"
    await add(shop, buyer, (await shop.product(seller))["variants"][0]["id"])
    status, body, _ = await quote(shop, buyer, {**TO, "postal_code": "ABC", "state": "QQ"}, expect=None)
    assert status == 422 and {d["field"] for d in body["error"]["details"]} == {"address.postal_code",
                                                                              "address.state"}, body
    status, body, _ = await shop.call("POST", "/cart/shipping-rates", buyer,
                                      json={"address_id": "00000000-0000-4000-8000-000000000000"}, expect=None)
    assert status == 404
    status, body, _ = await shop.call("POST", "/cart/shipping-rates", buyer, json={}, expect=None)
    assert status == 422
    status, body, _ = await shop.call("POST", "/cart/shipping-rates", None, json={"address": TO}, expect=None)
    assert status == 401


async def test_the_demo_seller_quotes_and_ships(shop):
    from live.seed import DEMO_PARCELS, seed

    ids = await seed(shop.services)
    await seed(shop.services)  # idempotent: the seller's own settings and product sizes are kept
    product = await shop.call("GET", f"/products/{ids['product_ids'][0]}")
    assert (product["weight_g"], product["length_cm"]) == (DEMO_PARCELS[product["title"]][0],
                                                           DEMO_PARCELS[product["title"]][1][0])
    buyer = await shop.user()
    await add(shop, buyer, product["variants"][0]["id"], 2)
    got = (await quote(shop, buyer))["sellers"][0]
    assert got["seller_id"] == ids["seller_id"] and got["ships"] is True
    assert got["parcel"]["weight_g"] == 2 * product["weight_g"] and [r["service"] for r in got["rates"]][0] == "ground"
