"""A checkout with nothing to pay (a 100 % coupon and free shipping) makes the order paid inside the checkout; a
seller who buys labels on payment gets its label job there too (as a paid payment event would enqueue it): the
order goes label_created with a bought sandbox label."""
from __future__ import annotations

from tests.shipping.labels_harness import SHIP_FROM, US_BUYER, order_status, wait_order, wait_shipment


async def test_a_free_checkout_buys_the_label_of_an_auto_purchase_seller(shop):
    seller = await shop.seller()
    await shop.call("PUT", "/seller/shipping", seller, json={
        "ship_from": SHIP_FROM, "auto_purchase_label": True, "free_shipping_over_minor": 0})
    await shop.call("POST", "/coupons", seller, json={"code": "ALLFREE", "kind": "percent", "value": 100},
                    expect=201)
    buyer = await shop.user()
    vid = (await shop.product(seller, stock=5, price=2500))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 1})
    out = await shop.checkout(buyer, provider="sandbox", address=US_BUYER, coupon_code="ALLFREE")
    order = out["orders"][0]
    assert out["payment"]["amount_minor"] == 0 and out["payment"]["status"] == "succeeded"
    assert order["status"] == "paid" and order["total_minor"] == 0 and order["shipping_minor"] == 0

    ship = await wait_shipment(shop, order["id"], "label_created")
    assert ship["tracking_number"].startswith("SBX") and ship["kind"] == "outbound"
    await wait_order(shop, order["id"], "label_created")
    assert await order_status(shop, order["id"]) == "label_created"
