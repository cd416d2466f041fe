"""Sellers' shipping settings over REST (validation of the ship-from address per field, bounds, who may read and
set whose), weight and dimensions on products and variants, and buyers' saved addresses checked when saved.
Real PostgreSQL, the sandbox carrier."""
from __future__ import annotations

from live.auth.principal import SYSTEM

SHIP_FROM = {"name": "Alice Shop", "line1": "1 Market St", "city": "San Francisco", "state": "CA",
             "postal_code": "94105", "country": "US"}


async def test_settings_defaults_validation_and_bounds(shop):
    seller = await shop.seller()
    got = await shop.call("GET", "/seller/shipping", seller)
    assert got["ship_from"] is None and got["ships"] is False
    assert (got["default_weight_g"], got["default_length_cm"], got["return_window_days"],
            got["free_shipping_over_minor"], got["auto_purchase_label"]) == (500, 20.0, 30, None, False)
    # a ship-from address the rules refuse: one {field, message} per field, nothing saved
    bad = {**SHIP_FROM, "postal_code": "ABCDE", "state": "ZZ"}
    status, body, _ = await shop.call("PUT", "/seller/shipping", seller, json={"ship_from": bad}, expect=None)
    assert status == 422 and body["error"]["code"] == "validation_failed", body
    fields = {d["field"] for d in body["error"]["details"]}
    assert {"ship_from.postal_code", "ship_from.state"} <= fields, fields
    assert all(d["message"] for d in body["error"]["details"])
    assert (await shop.call("GET", "/seller/shipping", seller))["ship_from"] is None
    # bounds of migration 0016: refused by name, nothing changes
    for field, value in (("default_weight_g", 0), ("default_weight_g", 70_001), ("default_length_cm", 0),
                         ("default_height_cm", 300.5), ("return_window_days", 366), ("free_shipping_over_minor", -1),
                         ("default_weight_g", None), ("auto_purchase_label", None)):
        status, body, _ = await shop.call("PUT", "/seller/shipping", seller, json={field: value}, expect=None)
        assert status == 422 and body["error"]["details"][0]["field"] == field, (field, value, body)
    # a valid one: saved, and the fields left out keep their value
    out = await shop.call("PUT", "/seller/shipping", seller, json={
        "ship_from": SHIP_FROM, "default_weight_g": 1200, "free_shipping_over_minor": 5000,
        "return_window_days": 0, "auto_purchase_label": True, "default_height_cm": 12.34})
    assert out["ships"] is True and out["ship_from"]["postal_code"] == "94105"
    assert (out["default_weight_g"], out["default_height_cm"], out["free_shipping_over_minor"],
            out["return_window_days"], out["auto_purchase_label"]) == (1200, 12.3, 5000, 0, True)
    again = await shop.call("PUT", "/seller/shipping", seller, json={"default_width_cm": 18})
    assert again["default_weight_g"] == 1200 and again["default_width_cm"] == 18.0 and again["ships"] is True
    cleared = await shop.call("PUT", "/seller/shipping", seller, json={"ship_from": None,
                                                                      "free_shipping_over_minor": None})
    assert cleared["ships"] is False and cleared["free_shipping_over_minor"] is None
    assert cleared["default_weight_g"] == 1200


async def test_who_may_read_and_set_whose_settings(shop):
    alice, bob, buyer = await shop.seller(), await shop.seller(), await shop.user()
    admin = await shop.user(role="admin")
    await shop.call("PUT", "/seller/shipping", alice, json={"ship_from": SHIP_FROM})
    async with shop.services.db.tx(SYSTEM) as conn:
        alice_shop = await conn.fetchval("SELECT id::text FROM sellers WHERE user_id = $1::uuid", alice.id)
    await shop.call("GET", "/seller/shipping", buyer, expect=403)
    status, body, _ = await shop.call("GET", f"/seller/shipping?seller_id={alice_shop}", bob, expect=None)
    assert status == 403 and body["error"]["code"] == "forbidden"
    await shop.call("PUT", f"/seller/shipping?seller_id={alice_shop}", bob, json={"return_window_days": 1},
                    expect=403)
    assert (await shop.call("GET", f"/seller/shipping?seller_id={alice_shop}", alice))["return_window_days"] == 30
    # an admin reads and sets any seller's; an unknown seller is 404; an admin without a shop needs seller_id
    seen = await shop.call("GET", f"/seller/shipping?seller_id={alice_shop}", admin)
    assert seen["seller_id"] == alice_shop and seen["ship_from"]["city"] == "San Francisco"
    out = await shop.call("PUT", f"/seller/shipping?seller_id={alice_shop}", admin, json={"return_window_days": 14})
    assert out["return_window_days"] == 14
    await shop.call("GET", "/seller/shipping?seller_id=00000000-0000-4000-8000-000000000000", admin, expect=404)
    await shop.call("GET", "/seller/shipping?seller_id=nope", admin, expect=400)
    await shop.call("GET", "/seller/shipping", admin, expect=403)


async def test_weight_and_dimensions_on_products_and_variants(shop):
    seller = await shop.seller()
    product = await shop.call("POST", "/products", seller, json={
        "title": "Boots", "status": "active", "weight_g": 1500, "length_cm": 35, "width_cm": 25, "height_cm": 14,
        "variants": [{"sku": "BOOT-41", "price_minor": 9000, "currency": "USD", "stock": 3},
                     {"sku": "BOOT-46", "price_minor": 9000, "currency": "USD", "stock": 3, "weight_g": 1900,
                      "height_cm": 16.25}]}, expect=201)
    assert (product["weight_g"], product["length_cm"], product["height_cm"]) == (1500, 35.0, 14.0)
    by_sku = {v["sku"]: v for v in product["variants"]}
    assert by_sku["BOOT-41"]["weight_g"] is None and by_sku["BOOT-46"]["weight_g"] == 1900
    assert by_sku["BOOT-46"]["height_cm"] == 16.3  # numeric(6, 1): one decimal, half away from zero
    # public read shows them; updates set and clear them; bounds refused by name
    public = await shop.call("GET", f"/products/{product['id']}")
    assert public["weight_g"] == 1500 and {v["sku"]: v["weight_g"] for v in public["variants"]} == {
        "BOOT-41": None, "BOOT-46": 1900}
    vid = by_sku["BOOT-41"]["id"]
    out = await shop.call("PATCH", f"/variants/{vid}", seller, json={"weight_g": 1400, "length_cm": 34})
    assert {v["sku"]: (v["weight_g"], v["length_cm"]) for v in out["variants"]}["BOOT-41"] == (1400, 34.0)
    out = await shop.call("PATCH", f"/variants/{vid}", seller, json={"weight_g": None})
    assert {v["sku"]: v["weight_g"] for v in out["variants"]}["BOOT-41"] is None
    out = await shop.call("PATCH", f"/products/{product['id']}", seller, json={"weight_g": 1600, "width_cm": None})
    assert (out["weight_g"], out["width_cm"]) == (1600, None)
    for body in ({"weight_g": 0}, {"weight_g": 70_001}, {"height_cm": 0}, {"length_cm": 301}):
        status, err, _ = await shop.call("PATCH", f"/products/{product['id']}", seller, json=body, expect=None)
        assert status == 422 and err["error"]["details"][0]["field"] == next(iter(body)), (body, err)
    status, err, _ = await shop.call("POST", f"/products/{product['id']}/variants", seller, json={
        "sku": "BOOT-47", "price_minor": 1, "currency": "USD", "weight_g": -5}, expect=None)
    assert status == 422 and err["error"]["details"][0]["field"] == "weight_g"


async def test_saved_addresses_are_validated_per_field(shop):
    buyer = await shop.user()
    status, body, _ = await shop.call("POST", "/me/addresses", buyer, json={
        "name": "Ada", "line1": "1 Main St", "city": "Springfield", "state": "XX", "postal_code": "1234",
        "country": "US"}, expect=None)
    assert status == 422 and body["error"]["code"] == "validation_failed"
    assert {d["field"] for d in body["error"]["details"]} == {"postal_code", "state"}, body
    status, body, _ = await shop.call("POST", "/me/addresses", buyer, json={
        "name": "Ada", "line1": "1 Main St", "city": "Nowhere", "country": "XQ"}, expect=None)
    assert status == 422 and [d["field"] for d in body["error"]["details"]] == ["country"], body
    assert (await shop.call("GET", "/me/addresses", buyer))["items"] == []
    saved = await shop.call("POST", "/me/addresses", buyer, json={
        "name": "Ada", "line1": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701",
        "country": "US"}, expect=201)
    assert saved["postal_code"] == "62701"
