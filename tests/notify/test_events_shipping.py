"""Shipping events told to whom they concern, by the real flows: a label purchase the carrier (the fake Shippo)
refuses tells the seller why, the next label tells the buyer; a parcel shipped and delivered by the seller's own
moves (manual tracking) tells the buyer; a return approved and received with a refund tells the buyer of each."""
from __future__ import annotations

import pytest

from tests.commerce.harness import Shop
from tests.notify.notes import all_delivered, kinds, notes, wait_kinds
from tests.shipping.fake_shippo import API_KEY, FakeShippo
from tests.shipping.labels_harness import paid_order, shippo_shop, stripe_shop, wait_order, wait_shipment
from tests.shipping.test_returns import ask, line, sold


@pytest.fixture
async def fake():
    server = await FakeShippo(API_KEY).start()
    yield server
    await server.close()


async def test_a_refused_label_tells_the_seller_and_the_next_label_the_buyer(tmp_path, dsn, aiohttp_client, fake):
    shop = await shippo_shop(tmp_path, dsn, aiohttp_client, fake)
    buyer, seller, order_id = await paid_order(shop)
    fake.refuse = True
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    await wait_shipment(shop, order_id, "purchase_failed")
    got = await wait_kinds(shop.services, seller.id, "seller.label_failed")
    assert [n["kind"] for n in got] == ["seller.new_order", "seller.label_failed"]
    assert got[1]["data"]["order_id"] == order_id and "not deliverable" in got[1]["data"]["error"]
    assert await kinds(shop.services, buyer.id) == ["order.confirmed"]
    fake.refuse = False
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    row = await wait_shipment(shop, order_id, "label_created")
    got = await wait_kinds(shop.services, buyer.id, "order.label_created")
    assert got[-1]["data"]["tracking_number"] == row["tracking_number"]
    assert got[-1]["data"]["tracking_url"] == row["tracking_url"]
    # the label voided puts the order back to paid (not a new payment: told nothing); the next label is told again
    await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=202)
    await wait_shipment(shop, order_id, "voided")
    await wait_order(shop, order_id, "paid")
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    await wait_order(shop, order_id, "label_created")  # its notice is written with the move
    await all_delivered(shop.services)
    assert await kinds(shop.services, buyer.id) == ["order.confirmed", "order.label_created",
                                                    "order.label_created"]
    assert await kinds(shop.services, seller.id) == ["seller.new_order", "seller.label_failed"]


@pytest.fixture
async def stripe(tmp_path, dsn, aiohttp_client, fake_stripe) -> Shop:
    return await stripe_shop(tmp_path, dsn, aiohttp_client, fake_stripe, sandbox_carrier_pace_seconds=0.05)


async def test_manual_shipping_and_a_return_tell_the_buyer_each_step(stripe, fake_stripe):
    shop = stripe
    seller, buyer, order, (a, b) = await sold(shop, fake_stripe)
    await shop.call("PUT", "/seller/shipping", seller, json={"ship_from": {
        "name": "Shop Dock", "line1": "2 Broad St", "city": "Lagos", "postal_code": "100001", "country": "NG"}})
    got = await wait_kinds(shop.services, buyer.id, "order.delivered")
    assert [n["kind"] for n in got] == ["order.confirmed", "order.shipped", "order.delivered"]
    assert got[1]["data"]["tracking_number"] == f"HAND-{order['id'][:8]}".upper()
    ret = await ask(shop, buyer, order["id"], [(line(order, a), 1)])
    await shop.call("POST", f"/seller/returns/{ret['id']}/approve", seller, json={"note": "send it back"})
    got = await wait_kinds(shop.services, buyer.id, "return.approved")
    assert got[-1]["data"] == {"order_id": order["id"], "number": order["number"], "return_id": ret["id"]}
    out = await shop.call("POST", f"/seller/returns/{ret['id']}/receive", seller, json={"refund_minor": 700})
    assert out["status"] == "refunded"
    got = await wait_kinds(shop.services, buyer.id, "return.refunded")
    assert got[-1]["data"] == {"order_id": order["id"], "number": order["number"], "return_id": ret["id"],
                               "amount_minor": 700, "currency": "USD"}
    await all_delivered(shop.services)
    assert await kinds(shop.services, buyer.id) == ["order.confirmed", "order.shipped", "order.delivered",
                                                    "return.approved", "return.refunded"]
    assert [n["kind"] for n in await notes(shop.services, seller.id)] == ["seller.new_order"]
