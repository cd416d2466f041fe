"""Review fix of the quote key: a rate quoted before the seller changed their ship-from address or parcel defaults is
stale (a new quote asks the carrier again, and the checkout refuses the old rate with 409 rate_expired). Real
PostgreSQL, the sandbox carrier."""
from __future__ import annotations

from tests.shipping.test_checkout_shipping import checkout
from tests.shipping.test_rates import add, quote, shipping_seller
from tests.shipping.test_seller_shipping import SHIP_FROM


async def rate_ids(shop, buyer) -> set[str]:
    [seller] = (await quote(shop, buyer))["sellers"]
    return {r["id"] for r in seller["rates"]}


async def test_a_seller_settings_change_makes_quoted_rates_stale(shop):
    seller, seller_id = await shipping_seller(shop)
    buyer = await shop.user()
    await add(shop, buyer, (await shop.product(seller, price=1000, stock=9))["variants"][0]["id"])
    first = await rate_ids(shop, buyer)
    assert first and await rate_ids(shop, buyer) == first  # nothing changed: the stored rates, reused
    # heavier parcel defaults (the product has no weight of its own)
    await shop.call("PUT", "/seller/shipping", seller, json={"ship_from": SHIP_FROM, "default_weight_g": 4000})
    second = await rate_ids(shop, buyer)
    assert second and not second & first
    status, body, _ = await checkout(shop, buyer, shipping={seller_id: sorted(first)[0]}, expect=None)
    assert status == 409 and body["error"]["code"] == "rate_expired", body
    # another ship-from address
    moved = {**SHIP_FROM, "line1": "9 Other Street"}
    await shop.call("PUT", "/seller/shipping", seller, json={"ship_from": moved, "default_weight_g": 4000})
    third = await rate_ids(shop, buyer)
    assert third and not third & second
    status, body, _ = await checkout(shop, buyer, shipping={seller_id: sorted(second)[0]}, expect=None)
    assert status == 409 and body["error"]["code"] == "rate_expired", body
    await checkout(shop, buyer, shipping={seller_id: sorted(third)[0]})
