"""Each order event told once to whom it concerns, by the real flows (REST checkout, the sandbox payment page and
provider, the sandbox carrier's timeline and signed tracking webhooks, the refund job and its webhook): the buyer
hears of the payment, each shipping step, a failed payment, a cancel and its refund; the seller of the new order.
A replayed event adds nothing."""
from __future__ import annotations

import uuid

from db import orders as orders_db
from live.auth.principal import SYSTEM
from live.commerce.payments.base import PaymentEvent
from live.commerce.shipping import history
from live.notify import events as notices
from tests.commerce.harness import Shop, make_client
from tests.notify.notes import all_delivered, kinds, notes, wait_kinds
from tests.payments.fakes.payments import settled
from tests.payments.refunding import bought
from tests.shipping.labels_harness import checked_out, order_status, pay, wait_order


async def test_a_paid_order_carried_to_delivered_tells_each_step_once(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, sandbox_carrier_pace_seconds="0.1"))
    buyer, seller, out = await checked_out(shop, auto=True)  # the seller buys labels on payment
    [order] = out["orders"]
    assert await kinds(shop.services, buyer.id) == []  # a checkout waiting for its payment says nothing yet
    assert await pay(shop, out) == "applied"
    await wait_order(shop, order["id"], "delivered", timeout=30)
    await wait_kinds(shop.services, buyer.id, "order.delivered")
    await all_delivered(shop.services)
    buyer_notes = await notes(shop.services, buyer.id)
    # the carrier's scans may be applied together (tracking's group commit): the order always passes shipped
    # (history.order_steps), and out for delivery is told only when the order was there
    async with shop.services.db.tx(SYSTEM) as conn:
        visited = set(await conn.fetchval("SELECT array_agg(to_status) FROM order_status_history "
                                          "WHERE order_id = $1::uuid", order["id"]))
    expected = ["order.confirmed", "order.label_created", "order.shipped", "order.out_for_delivery",
                "order.delivered"]
    assert [n["kind"] for n in buyer_notes] == [k for k in expected if k != "order.out_for_delivery"
                                                 or "out_for_delivery" in visited]
    confirmed, label, shipped = buyer_notes[0]["data"], buyer_notes[1]["data"], buyer_notes[2]["data"]
    assert confirmed == {"order_id": order["id"], "number": order["number"], "total_minor": order["total_minor"],
                         "currency": "USD"}
    assert label["tracking_number"].startswith("SBX") and label["carrier"]
    assert shipped["tracking_number"] == label["tracking_number"]
    [new_order] = await notes(shop.services, seller.id)
    assert new_order["kind"] == "seller.new_order" and new_order["data"]["buyer_name"] == buyer.name
    assert new_order["data"]["number"] == order["number"]
    # the payment's event again (a provider's redelivery): nothing new for anybody
    assert await pay(shop, out) == "ignored"
    assert await notes(shop.services, buyer.id) == buyer_notes and len(await notes(shop.services, seller.id)) == 1
    # the buyer's list over REST: newest first, the pages they are about
    page = await shop.call("GET", "/me/notifications", buyer)
    assert [n["kind"] for n in page["items"]][::-1] == [n["kind"] for n in buyer_notes]
    assert page["unread"] == len(buyer_notes)
    assert {n["url"] for n in page["items"]} == {f"/account/orders/{order['id']}"}
    assert (await shop.call("GET", "/me/notifications", seller))["items"][0]["url"] == f"/studio/orders/{order['id']}"


async def test_an_order_whose_first_scans_came_together_passes_shipped_and_is_told_so_once(tmp_path, dsn,
                                                                                            aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client))
    buyer, seller, out = await checked_out(shop)
    [order] = out["orders"]
    assert await pay(shop, out) == "applied"
    assert history.order_steps("label_created", "in_transit") == ["shipped", "in_transit"]
    assert history.order_steps("label_created", "delivered") == ["shipped", "delivered"]
    assert history.order_steps("shipped", "in_transit") == ["in_transit"]
    assert history.order_steps("in_transit", "delivered") == ["delivered"]
    for to in ("label_created", "in_transit", "out_for_delivery", "delivered"):
        async with shop.services.db.tx(SYSTEM) as conn:  # as tracking's apply moves an order
            current = await conn.fetchval("SELECT status FROM orders WHERE id = $1::uuid", order["id"])
            for step in history.order_steps(current, to):
                await orders_db.set_status(conn, [order["id"]], step)
                await orders_db.add_history(conn, [order["id"]], current, step, None, "carrier", "scan")
                await notices.order_moved(conn, [order["id"]], step)
                await notices.order_moved(conn, [order["id"]], step)  # the same move told again: nothing new
                current = step
    assert await kinds(shop.services, buyer.id) == ["order.confirmed", "order.label_created", "order.shipped",
                                                     "order.out_for_delivery", "order.delivered"]
    shipped = [n for n in await notes(shop.services, buyer.id) if n["kind"] == "order.shipped"]
    assert [n["key"] for n in shipped] == [f"order.shipped:{order['id']}:1"]


async def test_a_failed_payment_is_told_as_such_not_as_a_cancel(shop):
    buyer, [(seller, _)], out = await bought(shop, "sandbox")
    [order] = out["orders"]
    resp = await shop.client.post(f"/pay/sandbox/{out['payment']['provider_ref']}", json={"outcome": "failed"})
    assert (await settled(shop.services, (await resp.json())["webhook"]["body"]))["result"] == "applied"
    assert await order_status(shop, order["id"]) == "canceled"
    [failed] = await notes(shop.services, buyer.id)
    assert failed["kind"] == "order.payment_failed" and failed["data"]["number"] == order["number"]
    assert "sandbox" in failed["data"]["reason"]
    assert await notes(shop.services, seller.id) == []  # the seller never had a paid order


async def test_a_canceled_paid_order_is_told_canceled_then_refunded_when_the_refund_settles(shop):
    buyer, [(seller, _)], out = await bought(shop, "sandbox")
    [order] = out["orders"]
    resp = await shop.client.post(f"/pay/sandbox/{out['payment']['provider_ref']}", json={"outcome": "succeeded"})
    assert (await settled(shop.services, (await resp.json())["webhook"]["body"]))["result"] == "applied"
    await shop.call("POST", f"/me/orders/{order['id']}/cancel", buyer, json={"reason": "changed my mind"})
    # the refund.send job asks the sandbox, whose refund webhook's job settles it
    got = await wait_kinds(shop.services, buyer.id, "order.refunded")
    assert [n["kind"] for n in got] == ["order.confirmed", "order.canceled", "order.refunded"]
    assert got[1]["data"]["reason"] == "changed my mind"
    assert got[2]["data"] == {"order_id": order["id"], "number": order["number"],
                              "amount_minor": order["total_minor"], "currency": "USD"}
    assert await kinds(shop.services, seller.id) == ["seller.new_order"]
    await all_delivered(shop.services)
    # another notice of the same refund from the provider (a new event key): applied as "ignored", nothing new
    again = PaymentEvent(provider="sandbox", event_key=uuid.uuid4().hex, event_type="refund.succeeded",
                         kind="refunded", provider_ref=out["payment"]["provider_ref"],
                         amount_minor=order["total_minor"], currency="USD", payment_id=out["payment"]["id"])
    assert await shop.services.commerce.apply_payment_event(again) == "ignored"
    await all_delivered(shop.services)
    assert len(await notes(shop.services, buyer.id)) == 3


async def test_a_checkout_with_nothing_to_pay_is_confirmed_at_once(shop):
    seller = await shop.seller()
    await shop.call("POST", "/coupons", seller, json={"code": "ALLFREE", "kind": "percent", "value": 100},
                    expect=201)
    buyer = await shop.user()
    vid = (await shop.product(seller, stock=5, price=2500))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 1})
    out = await shop.checkout(buyer, provider="sandbox", coupon_code="ALLFREE")
    [order] = out["orders"]
    assert order["status"] == "paid"
    [confirmed] = await notes(shop.services, buyer.id)  # written in the checkout's transaction
    assert (confirmed["kind"], confirmed["data"]["total_minor"]) == ("order.confirmed", 0)
    assert await kinds(shop.services, seller.id) == ["seller.new_order"]
