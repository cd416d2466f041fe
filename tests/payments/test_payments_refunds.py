"""Automatic refunds of canceled paid orders, end to end: real orders through REST checkout, paid through each
provider's real flow (the stripe library against the fake Stripe API, our Paystack client against the fake Paystack
API, the sandbox's own page), canceled by the seller or the buyer, refunded through the provider, and settled by
the provider's signed refund webhook. Also: retries never refund twice (same idempotency key; a duplicate webhook
or a second notice changes nothing), a provider that is down (the refund stays requested, its refund.send job retries
with backoff and succeeds when it is back, gives up after MAX_ATTEMPTS and flags refund_due), a provider that refuses,
Paystack's lost answer (found again by its merchant note), money taken after the cancel (paid_after_cancel), and a
refund made by hand elsewhere (ours is not sent on top of it)."""
from __future__ import annotations

from live.auth.principal import SYSTEM
from live.commerce import refunds as refunds_mod
from tests.payments.fakes.payments import settled
from tests.payments.refunding import (
    alice_cancels_while_stripe_is_down,
    bought,
    paid_with_paystack,
    paid_with_stripe,
    payment_row,
    paystack_webhook,
    refund_jobs,
    refund_jobs_done,
    refund_row,
    refunds_of,
    stripe_webhook,
    time_passes,
)

# ---- Stripe ----

async def test_seller_cancels_a_paid_stripe_order_refunded_once_and_settled_by_the_webhook(shop, fake_stripe):
    buyer, [(seller, vid)], out = await bought(shop, "stripe")
    order_id, total = out["orders"][0]["id"], out["orders"][0]["total_minor"]
    pi_id = await paid_with_stripe(shop, fake_stripe, out)
    watcher = await shop.viewer(buyer)
    try:
        moved = await shop.call("POST", f"/seller/orders/{order_id}/status", seller,
                                json={"status": "canceled", "reason": "out of stock after all"})
        assert moved["status"] == "canceled"
        assert moved["refund"]["status"] == "requested" and moved["refund"]["amount_minor"] == total
        assert moved["payment"]["refund_due_minor"] == total
        assert await shop.counters(vid) == {"on_hand": 5, "reserved": 0, "sold": 0}
        pushed = await watcher.wait_for("order:update", lambda d: d["order"]["status"] == "canceled")
        assert pushed["order"]["refund"]["status"] == "requested"

        await refund_jobs_done(shop)  # its refund.send job, enqueued with the cancel
        [sent] = fake_stripe.refund_requests()
        ours = await refund_row(shop, order_id)
        assert sent["params"]["payment_intent"] == pi_id and sent["params"]["amount"] == str(total)
        assert sent["headers"]["Idempotency-Key"] == ours["idempotency_key"] == f"refund-{ours['id']}"
        assert sent["params"]["metadata"]["refund_id"] == ours["id"]
        [re_id] = fake_stripe.refunds
        assert (ours["status"], ours["provider_ref"], ours["attempts"]) == ("requested", re_id, 1)

        # a retried cancel refunds nothing more; nor does a second run of its job (the provider has accepted it)
        await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "canceled"}, expect=409)
        await shop.call("POST", f"/me/orders/{order_id}/cancel", buyer, json={}, expect=409)
        assert await refund_jobs(shop) == []
        await refunds_of(shop).send([ours["id"]])  # a job again, e.g. a worker that died after the call
        await refund_jobs_done(shop)
        assert len(fake_stripe.refund_requests()) == 1

        # Stripe's signed charge.refunded settles it: the whole payment came back
        body = fake_stripe.refund_event(re_id)
        assert await stripe_webhook(shop, body) == {"received": True, "result": "applied"}
        ours = await refund_row(shop, order_id)
        assert ours["status"] == "succeeded"
        pay = await payment_row(shop, out["payment"]["id"])
        assert (pay["status"], pay["refund_due_minor"], pay["issue"]) == ("refunded", 0, None)
        pushed = await watcher.wait_for("order:update", lambda d: (d["order"]["refund"] or {}).get("status")
                                        == "succeeded")
        assert pushed["order"]["id"] == order_id
        detail = await shop.call("GET", f"/me/orders/{order_id}", buyer)
        assert detail["status"] == "canceled" and detail["refund"]["status"] == "succeeded"
        assert detail["refund"]["refunded_at"] is not None
        assert detail["payment"]["refunded_minor"] == total and detail["payment"]["status"] == "refunded"

        # the same webhook again, and a second notice of the same refund: nothing changes, nothing is refunded
        assert await stripe_webhook(shop, body) == {"received": True, "duplicate": True}
        assert (await stripe_webhook(shop, fake_stripe.refund_event(re_id)))["result"] == "ignored"
        assert len(fake_stripe.refund_requests()) == 1 and len(fake_stripe.refunds) == 1
        assert [h["to"] for h in (await shop.call("GET", f"/me/orders/{order_id}", buyer))["history"]] == [
            "pending_payment", "paid", "canceled"]
        await shop.assert_ledger(vid)
    finally:
        await watcher.close()


async def test_one_payment_for_two_sellers_is_refunded_in_parts(shop, fake_stripe):
    buyer, [(alice, a_vid), (bob, b_vid)], out = await bought(shop, "stripe", sellers=2, price=1000, qty=1)
    mine, theirs = out["orders"]
    pi_id = await paid_with_stripe(shop, fake_stripe, out)
    alice, bob = ((alice, bob) if mine["seller"]["name"] == alice.name else (bob, alice))

    await shop.call("POST", f"/seller/orders/{mine['id']}/status", alice, json={"status": "canceled"})
    await refund_jobs_done(shop)
    [first] = fake_stripe.refunds.values()
    assert (first["amount"], first["payment_intent"]) == (mine["total_minor"], pi_id)
    # a current API version lists no refunds in the charge: the event is matched by its amount
    body = fake_stripe.refund_event(first["id"], list_refunds=False)
    assert (await stripe_webhook(shop, body))["result"] == "applied"
    assert (await refund_row(shop, mine["id"]))["status"] == "succeeded"
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["refund_due_minor"], pay["issue"]) == ("succeeded", 0, None)
    assert (await shop.call("GET", f"/seller/orders/{theirs['id']}", bob))["status"] == "paid"
    # a second notice of that refund (another event id, naming the refund): nothing more is paid off or flagged
    assert (await stripe_webhook(shop, fake_stripe.refund_event(first["id"])))["result"] == "ignored"
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["refund_due_minor"], pay["issue"]) == ("succeeded", 0, None)

    # the buyer cancels the other one (paid, not yet prepared): the rest of the payment comes back
    canceled = await shop.call("POST", f"/me/orders/{theirs['id']}/cancel", buyer, json={})
    assert canceled["refund"]["status"] == "requested"
    await refund_jobs_done(shop)
    second = [r for r in fake_stripe.refunds.values() if r["id"] != first["id"]]
    assert [r["amount"] for r in second] == [theirs["total_minor"]]
    keys = [r["headers"]["Idempotency-Key"] for r in fake_stripe.refund_requests()]
    assert len(set(keys)) == 2
    assert (await stripe_webhook(shop, fake_stripe.refund_event(second[0]["id"])))["result"] == "applied"
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["refund_due_minor"]) == ("refunded", 0)
    for order in (mine, theirs):
        assert (await refund_row(shop, order["id"]))["status"] == "succeeded"
        assert (await shop.call("GET", f"/me/orders/{order['id']}", buyer))["status"] == "canceled"
    for vid in (a_vid, b_vid):
        await shop.assert_ledger(vid)


async def test_stripe_down_the_job_retries_with_the_same_key_when_it_is_back(shop, fake_stripe):
    buyer, [(seller, vid)], out = await bought(shop, "stripe")
    order_id, total = out["orders"][0]["id"], out["orders"][0]["total_minor"]
    await paid_with_stripe(shop, fake_stripe, out)
    fake_stripe.down = True
    canceled = await shop.call("POST", f"/me/orders/{order_id}/cancel", buyer, json={"reason": "too late"})
    assert canceled["status"] == "canceled" and canceled["refund"]["status"] == "requested"
    await refund_jobs_done(shop)
    ours = await refund_row(shop, order_id)
    assert (ours["status"], ours["attempts"], ours["provider_ref"]) == ("requested", 1, None)
    assert "payment_provider_error" in ours["error"]
    assert len(fake_stripe.refund_requests()) == 1 and fake_stripe.refunds == {}

    # not due yet (backoff: ~2 min): its job waits, and a second send adds no job (one per refund)
    assert await refund_jobs(shop) == [{"status": "queued", "attempts": 1}]
    await refunds_of(shop).send([ours["id"]])
    await refund_jobs_done(shop)
    assert len(fake_stripe.refund_requests()) == 1 and len(await refund_jobs(shop)) == 1

    fake_stripe.down = False
    await time_passes(shop)
    assert await refund_jobs(shop) == []
    requests = fake_stripe.refund_requests()
    assert len(requests) == 2 and len(fake_stripe.refunds) == 1
    assert requests[0]["headers"]["Idempotency-Key"] == requests[1]["headers"]["Idempotency-Key"] == \
        ours["idempotency_key"]
    [re_id] = fake_stripe.refunds
    ours = await refund_row(shop, order_id)
    assert (ours["status"], ours["attempts"], ours["provider_ref"]) == ("requested", 2, re_id)

    assert (await stripe_webhook(shop, fake_stripe.refund_event(re_id)))["result"] == "applied"
    assert (await refund_row(shop, order_id))["status"] == "succeeded"
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["refund_due_minor"]) == ("refunded", 0)
    assert fake_stripe.refunded(out["payment"]["provider_ref"]) == total


async def test_after_the_last_attempt_the_refund_fails_and_is_flagged_for_a_human(shop, fake_stripe):
    buyer, [(seller, vid)], out = await bought(shop, "stripe")
    order_id = out["orders"][0]["id"]
    await paid_with_stripe(shop, fake_stripe, out)
    fake_stripe.down = True
    await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "canceled"})
    await refund_jobs_done(shop)
    for attempt in range(2, refunds_mod.MAX_ATTEMPTS + 1):
        await time_passes(shop)
        assert len(fake_stripe.refund_requests()) == attempt
    assert await refund_jobs(shop) == []  # the refund failed for good: its job ended (no dead job to requeue)
    ours = await refund_row(shop, order_id)
    assert (ours["status"], ours["attempts"]) == ("failed", refunds_mod.MAX_ATTEMPTS)
    assert len(fake_stripe.refund_requests()) == refunds_mod.MAX_ATTEMPTS
    pay = await payment_row(shop, out["payment"]["id"])
    assert pay["issue"] == "refund_due" and pay["refund_due_minor"] == out["orders"][0]["total_minor"]
    assert pay["issue_details"]["refund_id"] == ours["id"]
    assert pay["issue_details"]["attempts"] == refunds_mod.MAX_ATTEMPTS
    assert "payment_provider_error" in pay["issue_details"]["error"]
    assert (await shop.call("GET", f"/me/orders/{order_id}", buyer))["refund"]["status"] == "failed"
    # left for a human: nothing tries again
    fake_stripe.down = False
    await time_passes(shop)
    assert len(fake_stripe.refund_requests()) == refunds_mod.MAX_ATTEMPTS


async def test_a_refused_refund_fails_at_once_and_a_refund_made_elsewhere_settles_it(shop, fake_stripe):
    buyer, [(seller, vid)], out = await bought(shop, "stripe")
    order_id, total = out["orders"][0]["id"], out["orders"][0]["total_minor"]
    pi_id = await paid_with_stripe(shop, fake_stripe, out)
    manual = fake_stripe.dashboard_refund(pi_id, total)  # refunded by hand; its webhook is still on its way
    await shop.call("POST", f"/me/orders/{order_id}/cancel", buyer, json={})
    await refund_jobs_done(shop)
    ours = await refund_row(shop, order_id)
    assert (ours["status"], ours["attempts"]) == ("failed", 1)  # Stripe: more than is left to refund
    assert "refund_refused" in ours["error"]
    pay = await payment_row(shop, out["payment"]["id"])
    assert pay["issue"] == "refund_due" and "refund_refused" in pay["issue_details"]["error"]
    # the dashboard refund's webhook arrives: the payment is refunded, and so is the order's refund
    assert (await stripe_webhook(shop, fake_stripe.refund_event(manual["id"])))["result"] == "applied"
    assert (await refund_row(shop, order_id))["status"] == "succeeded"
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["issue"], pay["refund_due_minor"]) == ("refunded", None, 0)
    assert len(fake_stripe.refunds) == 1


async def test_a_refund_made_by_hand_while_ours_waits_is_not_sent_again(shop, fake_stripe):
    out, mine, pi_id = await alice_cancels_while_stripe_is_down(shop, fake_stripe)
    assert (await refund_row(shop, mine["id"]))["provider_ref"] is None
    # while Stripe is down for the API, someone refunds the order by hand; its webhook pays the debt off
    manual = fake_stripe.dashboard_refund(pi_id, mine["total_minor"])
    body = fake_stripe.refund_event(manual["id"], list_refunds=False)
    assert (await stripe_webhook(shop, body))["result"] == "applied"
    assert (await refund_row(shop, mine["id"]))["status"] == "succeeded"
    fake_stripe.down = False
    await time_passes(shop)
    assert len(fake_stripe.refunds) == 1 and len(fake_stripe.refund_requests()) == 1


async def test_never_more_than_the_payment_owes(shop, fake_stripe):
    out, mine, pi_id = await alice_cancels_while_stripe_is_down(shop, fake_stripe)
    # someone refunds part of it by hand (another amount than ours): the debt shrinks to 400
    manual = fake_stripe.dashboard_refund(pi_id, 600)
    assert (await stripe_webhook(shop, fake_stripe.refund_event(manual["id"])))["result"] == "applied"
    assert (await payment_row(shop, out["payment"]["id"]))["refund_due_minor"] == mine["total_minor"] - 600
    fake_stripe.down = False
    await time_passes(shop)
    ours = await refund_row(shop, mine["id"])
    assert ours["status"] == "failed" and "owes 400" in ours["error"]  # not sent: a human decides
    assert len(fake_stripe.refund_requests()) == 1 and len(fake_stripe.refunds) == 1
    assert (await payment_row(shop, out["payment"]["id"]))["issue"] == "refund_due"


async def test_money_taken_after_the_cancel_is_refunded_in_the_background(shop, fake_stripe):
    buyer, [(seller, vid)], out = await bought(shop, "stripe")
    order_id, pi_id = out["orders"][0]["id"], out["payment"]["provider_ref"]
    await shop.call("POST", f"/me/orders/{order_id}/cancel", buyer, json={})  # unpaid: nothing to refund
    assert await refund_row(shop, order_id) is None and fake_stripe.refund_requests() == []
    # the buyer's card was charged anyway
    body = fake_stripe.event("payment_intent.succeeded", fake_stripe.succeed(pi_id))
    assert (await stripe_webhook(shop, body))["result"] == "paid_after_cancel"
    await refund_jobs_done(shop)
    [sent] = fake_stripe.refund_requests()
    assert (sent["params"]["payment_intent"], sent["params"]["amount"]) == (pi_id, str(out["payment"]["amount_minor"]))
    [re_id] = fake_stripe.refunds
    assert (await refund_row(shop, order_id))["provider_ref"] == re_id
    assert (await stripe_webhook(shop, fake_stripe.refund_event(re_id)))["result"] == "applied"
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["issue"], pay["refund_due_minor"]) == ("refunded", None, 0)
    detail = await shop.call("GET", f"/me/orders/{order_id}", buyer)
    assert (detail["status"], detail["refund"]["status"]) == ("canceled", "succeeded")


# ---- Paystack ----

async def test_paystack_cancel_refund_webhook_and_a_provider_outage(shop, fake_paystack):
    buyer, [(seller, vid)], out = await bought(shop, "paystack", price=250000, qty=1, currency="NGN")
    order_id = out["orders"][0]["id"]
    reference = await paid_with_paystack(shop, fake_paystack, out)
    fake_paystack.down = True
    canceled = await shop.call("POST", f"/me/orders/{order_id}/cancel", buyer, json={})
    assert canceled["refund"]["status"] == "requested"
    await refund_jobs_done(shop)
    ours = await refund_row(shop, order_id)
    assert (ours["status"], ours["attempts"], ours["provider_ref"]) == ("requested", 1, None)
    assert fake_paystack.refunds == []

    fake_paystack.down = False
    await time_passes(shop)
    [refund] = fake_paystack.refunds
    sent = fake_paystack.refund_requests()[-1]["params"]
    assert (sent["transaction"], sent["amount"], sent["currency"]) == (reference, 250000, "NGN")
    assert sent["merchant_note"] == f"live refund {ours['id']}"
    assert (await refund_row(shop, order_id))["provider_ref"] == str(refund["id"])

    body = fake_paystack.refund_processed(reference, amount=250000)
    assert await paystack_webhook(shop, fake_paystack, body) == {"received": True, "result": "applied"}
    assert await paystack_webhook(shop, fake_paystack, body) == {"received": True, "duplicate": True}
    assert (await refund_row(shop, order_id))["status"] == "succeeded"
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["refund_due_minor"]) == ("refunded", 0)
    assert len(fake_paystack.refunds) == 1
    await shop.assert_ledger(vid)


async def test_paystack_lost_answer_is_found_by_its_note_instead_of_refunding_twice(shop, fake_paystack):
    buyer, [(alice, _), (bob, _)], out = await bought(shop, "paystack", sellers=2, price=100000, qty=1,
                                                      currency="NGN")
    mine = next(o for o in out["orders"] if o["seller"]["name"] == alice.name)
    reference = await paid_with_paystack(shop, fake_paystack, out)
    fake_paystack.lose_refund_answers = 1  # Paystack makes the refund, the answer never reaches us
    await shop.call("POST", f"/seller/orders/{mine['id']}/status", alice, json={"status": "canceled"})
    await refund_jobs_done(shop)
    ours = await refund_row(shop, mine["id"])
    assert (ours["status"], ours["provider_ref"]) == ("requested", None)
    assert len(fake_paystack.refunds) == 1

    await time_passes(shop)
    [refund] = fake_paystack.refunds  # still one: the retry listed the transaction's refunds and found ours
    assert len(fake_paystack.refund_requests()) == 1
    listed = [r for r in fake_paystack.requests if r["method"] == "GET" and r["path"] == "/refund"]
    assert listed and listed[-1]["params"] == {"reference": reference}
    assert (await refund_row(shop, mine["id"]))["provider_ref"] == str(refund["id"])

    body = fake_paystack.refund_processed(reference, amount=mine["total_minor"])
    assert (await paystack_webhook(shop, fake_paystack, body))["result"] == "applied"
    assert (await refund_row(shop, mine["id"]))["status"] == "succeeded"
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["refund_due_minor"]) == ("succeeded", 0)


# ---- the sandbox ----

async def test_sandbox_cancel_refund_webhook_refunded_end_to_end(shop):
    buyer, [(seller, vid)], out = await bought(shop, "sandbox")
    order_id, total = out["orders"][0]["id"], out["orders"][0]["total_minor"]
    reference = out["payment"]["provider_ref"]
    resp = await shop.client.post(f"/pay/sandbox/{reference}", json={"outcome": "succeeded"})
    assert (await settled(shop.services, (await resp.json())["webhook"]["body"]))["result"] == "applied"
    watcher = await shop.viewer(buyer)
    try:
        canceled = await shop.call("POST", f"/me/orders/{order_id}/cancel", buyer, json={})
        assert canceled["status"] == "canceled" and canceled["refund"]["amount_minor"] == total
        # its refund.send job calls the sandbox, whose refund webhook's job settles it
        await watcher.wait_for("order:update", lambda d: (d["order"]["refund"] or {}).get("status") == "succeeded")
        detail = await shop.call("GET", f"/me/orders/{order_id}", buyer)
        assert detail["refund"]["status"] == "succeeded"
        assert detail["payment"]["status"] == "refunded" and detail["payment"]["refunded_minor"] == total
    finally:
        await watcher.close()
    ours = await refund_row(shop, order_id)
    assert ours["provider_ref"] == "rf_sbx_" + ours["id"].replace("-", "")
    # the refund webhook was signed, verified, stored once and applied once, like the payment's
    async with shop.services.db.tx(SYSTEM) as conn:
        events = await conn.fetch("SELECT event_key, event_type, payload, processed_at, error FROM webhook_events "
                                  "WHERE provider = 'sandbox' ORDER BY id")
    assert [e["event_type"] for e in events] == ["payment.succeeded", "refund.succeeded"]
    refund_event = events[1]
    assert refund_event["processed_at"] is not None and refund_event["error"] is None
    assert refund_event["payload"]["data"]["refund_id"] == ours["id"]
    assert refund_event["payload"]["data"]["amount_minor"] == total

    # sending it again is the same event (a duplicate); a forged refund webhook is refused
    sandbox = shop.services.payments.get("sandbox")
    from live.commerce.payments.base import RefundRequest
    again = RefundRequest(refund_id=ours["id"], payment_id=out["payment"]["id"], payment_ref=reference,
                          amount_minor=total, currency="USD", idempotency_key=ours["idempotency_key"])
    body = sandbox.refund_body(again)
    resp = await shop.client.post("/webhooks/sandbox", data=body, headers={"x-sandbox-signature": sandbox.sign(body)})
    assert await resp.json() == {"received": True, "duplicate": True}
    resp = await shop.client.post("/webhooks/sandbox", data=body, headers={"x-sandbox-signature": "t=1,v1=00"})
    assert resp.status == 400
    assert (await payment_row(shop, out["payment"]["id"]))["refund_due_minor"] == 0
    await shop.assert_ledger(vid)
