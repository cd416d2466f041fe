"""seller.needs_attention: a payment or refund set aside for a human is told to the sellers of its orders, each of
only their own orders, once per cause (the same provider event again adds nothing), through the real Stripe flow
(the stripe library against the fake Stripe API, signed webhooks, the refund job)."""
from __future__ import annotations

import pytest

from tests.commerce.harness import Shop
from tests.notify.notes import all_delivered, kinds, notes, wait_kinds
from tests.payments.refunding import bought, paid_with_stripe, refund_jobs_done, refund_row, stripe_webhook
from tests.shipping.labels_harness import stripe_shop


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake_stripe) -> Shop:
    return await stripe_shop(tmp_path, dsn, aiohttp_client, fake_stripe)


async def test_an_amount_mismatch_tells_each_seller_of_their_own_orders_once(shop, fake_stripe):
    buyer, [(alice, _), (bob, _)], out = await bought(shop, "stripe", sellers=2, price=1000, qty=1)
    pi_id = out["payment"]["provider_ref"]
    body = fake_stripe.event("payment_intent.succeeded", fake_stripe.succeed(pi_id, amount_received=1))
    assert (await stripe_webhook(shop, body))["result"] == "amount_mismatch"
    await all_delivered(shop.services)
    by_seller = {}
    for seller in (alice, bob):
        [note] = await notes(shop.services, seller.id)
        assert note["kind"] == "seller.needs_attention"
        by_seller[seller.name] = note["data"]
    for seller in (alice, bob):
        mine = next(o for o in out["orders"] if o["seller"]["name"] == seller.name)
        assert by_seller[seller.name] == {"payment_id": out["payment"]["id"], "issue": "amount_mismatch",
                                          "order_ids": [mine["id"]], "numbers": [mine["number"]]}
    page = await shop.call("GET", "/me/notifications", alice)
    mine = next(o for o in out["orders"] if o["seller"]["name"] == alice.name)
    assert page["items"][0]["url"] == f"/studio/orders/{mine['id']}"
    # another event of the same wrong amount (a new event id): nothing new
    again = fake_stripe.event("payment_intent.succeeded", fake_stripe.succeed(pi_id, amount_received=1))
    assert (await stripe_webhook(shop, again))["result"] == "amount_mismatch"
    await all_delivered(shop.services)
    assert [len(await notes(shop.services, s.id)) for s in (alice, bob)] == [1, 1]
    assert await kinds(shop.services, buyer.id) == []


async def test_a_refund_the_provider_refuses_tells_the_seller_and_its_settling_the_buyer(shop, fake_stripe):
    buyer, [(seller, _)], out = await bought(shop, "stripe")
    [order] = out["orders"]
    pi_id = await paid_with_stripe(shop, fake_stripe, out)
    manual = fake_stripe.dashboard_refund(pi_id, order["total_minor"])  # refunded by hand at Stripe meanwhile
    await shop.call("POST", f"/me/orders/{order['id']}/cancel", buyer, json={})
    await refund_jobs_done(shop)
    refund = await refund_row(shop, order["id"])
    assert refund["status"] == "failed"
    got = await wait_kinds(shop.services, seller.id, "seller.needs_attention")
    assert [n["kind"] for n in got] == ["seller.new_order", "seller.needs_attention"]
    assert (got[1]["data"]["issue"], got[1]["data"]["order_ids"]) == ("refund_due", [order["id"]])
    # the dashboard refund's webhook settles our refund: the buyer hears their money is back
    assert (await stripe_webhook(shop, fake_stripe.refund_event(manual["id"])))["result"] == "applied"
    got = await wait_kinds(shop.services, buyer.id, "order.refunded")
    assert [n["kind"] for n in got] == ["order.confirmed", "order.canceled", "order.refunded"]
    assert got[2]["data"]["amount_minor"] == order["total_minor"]
    await all_delivered(shop.services)
    assert len(await notes(shop.services, seller.id)) == 2


async def test_money_taken_after_a_cancel_tells_the_seller_and_its_refund_the_buyer(shop, fake_stripe):
    buyer, [(seller, _)], out = await bought(shop, "stripe")
    [order] = out["orders"]
    pi_id = out["payment"]["provider_ref"]
    await shop.call("POST", f"/me/orders/{order['id']}/cancel", buyer, json={})  # unpaid: nothing to refund
    body = fake_stripe.event("payment_intent.succeeded", fake_stripe.succeed(pi_id))
    assert (await stripe_webhook(shop, body))["result"] == "paid_after_cancel"
    [note] = await wait_kinds(shop.services, seller.id, "seller.needs_attention")  # no new order: never paid
    assert (note["data"]["issue"], note["data"]["order_ids"]) == ("paid_after_cancel", [order["id"]])
    await refund_jobs_done(shop)
    [re_id] = fake_stripe.refunds
    assert (await stripe_webhook(shop, fake_stripe.refund_event(re_id)))["result"] == "applied"
    got = await wait_kinds(shop.services, buyer.id, "order.refunded")
    assert [n["kind"] for n in got] == ["order.canceled", "order.refunded"]
