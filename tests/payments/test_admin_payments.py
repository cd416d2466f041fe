"""The operator's desk: payments flagged for a human (amount_mismatch, paid_after_cancel, refund_due) listed over
REST with their orders and refunds, and resolved (a note; a failed refund sent again; a refund made by hand
settled), each resolution in the audit log. Real orders through checkout, Stripe through the official library
against the fake Stripe API, real PostgreSQL."""
from __future__ import annotations

import uuid

from live.commerce import refunds as refunds_mod
from live.commerce.payments.base import PaymentEvent
from tests.payments.refunding import (
    bought,
    paid_with_stripe,
    payment_row,
    refund_jobs_done,
    refund_row,
    stripe_webhook,
    time_passes,
)


async def failed_refund(shop, fake_stripe) -> tuple:
    """A paid Stripe order canceled by its seller while Stripe is down, until the refund's last attempt failed:
    (buyer, seller, checkout, order id)."""
    buyer, [(seller, _vid)], out = await bought(shop, "stripe", qty=1)
    order_id = out["orders"][0]["id"]
    await paid_with_stripe(shop, fake_stripe, out)
    fake_stripe.down = True
    await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "canceled"})
    await refund_jobs_done(shop)
    for _ in range(refunds_mod.MAX_ATTEMPTS - 1):
        await time_passes(shop)
    assert (await refund_row(shop, order_id))["status"] == "failed"
    return buyer, seller, out, order_id


async def flagged(shop, admin, query: str = "") -> list[dict]:
    return (await shop.call("GET", f"/admin/payments/flagged?{query}", admin))["items"]


async def test_a_failed_refund_is_listed_and_sent_again_by_an_admin(shop, fake_stripe):
    admin = await shop.user(role="admin")
    buyer, seller, out, order_id = await failed_refund(shop, fake_stripe)
    [item] = [p for p in await flagged(shop, admin, "issue=refund_due") if p["id"] == out["payment"]["id"]]
    assert item["issue"] == "refund_due" and "client_secret" not in item
    [ref] = item["refunds"]
    assert (ref["status"], ref["order_id"], ref["attempts"]) == ("failed", order_id, refunds_mod.MAX_ATTEMPTS)
    assert item["orders"][0]["id"] == order_id and item["orders"][0]["status"] == "canceled"
    # Stripe is back: the admin sends it again (same idempotency key); it is accepted, the webhook settles it
    fake_stripe.down = False
    before = len(fake_stripe.refund_requests())
    await shop.call("POST", f"/admin/refunds/{ref['id']}/retry", seller, json={"note": "x"}, expect=403)
    await shop.call("POST", f"/admin/refunds/{ref['id']}/retry", admin, json={}, expect=422)
    done = await shop.call("POST", f"/admin/refunds/{ref['id']}/retry", admin, json={"note": "Stripe is back"})
    assert done["refund"]["status"] == "requested" and done["payment"]["issue"] is None
    await refund_jobs_done(shop)  # the retry enqueued its refund.send job
    done["refund"] = await refund_row(shop, order_id)
    assert done["refund"]["status"] == "requested" and done["refund"]["provider_ref"] is not None
    sent = fake_stripe.refund_requests()[before:]
    assert len(sent) == 1 and sent[0]["headers"]["Idempotency-Key"] == f"refund-{ref['id']}"
    assert (await stripe_webhook(shop, fake_stripe.refund_event(done["refund"]["provider_ref"])))["result"] == "applied"
    assert (await refund_row(shop, order_id))["status"] == "succeeded"
    assert out["payment"]["id"] not in [p["id"] for p in await flagged(shop, admin)]
    # only a failed refund is retried
    body = await shop.call("POST", f"/admin/refunds/{ref['id']}/retry", admin, json={"note": "again"}, expect=409)
    assert body["error"]["code"] == "conflict"
    [row] = (await shop.call("GET", f"/admin/audit?action=refund.retry&entity_id={ref['id']}", admin))["items"]
    assert row["actor_id"] == admin.id and row["data"]["note"] == "Stripe is back"
    assert row["data"]["before"]["status"] == "failed" and row["data"]["after"] == {"status": "requested",
                                                                                     "attempts": 0}


async def test_a_refund_made_by_hand_is_marked_refunded(shop, fake_stripe):
    admin = await shop.user(role="admin")
    buyer, seller, out, order_id = await failed_refund(shop, fake_stripe)
    ref = await refund_row(shop, order_id)
    # a note on the payment clears its flag, but its failed refund stays listed until it is dealt with
    await shop.call("POST", f"/admin/payments/{out['payment']['id']}/resolve", admin, json={"note": "on it"})
    [item] = [p for p in await flagged(shop, admin, "issue=refund_due") if p["id"] == out["payment"]["id"]]
    assert item["issue"] is None and item["refunds"][0]["status"] == "failed"
    assert out["payment"]["id"] not in [p["id"] for p in await flagged(shop, admin, "issue=amount_mismatch")]
    watcher = await shop.viewer(buyer)
    try:
        done = await shop.call("POST", f"/admin/refunds/{ref['id']}/mark-refunded", admin,
                               json={"note": "bank transfer 2026-12-06, ticket 4411"})
        assert done["refund"]["status"] == "succeeded"
        pushed = await watcher.wait_for("order:update", lambda d: d["order"]["id"] == order_id)
        assert pushed["order"]["refund"]["status"] == "succeeded"
    finally:
        await watcher.close()
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["issue"], pay["refund_due_minor"]) == ("refunded", None, 0)
    assert out["payment"]["id"] not in [p["id"] for p in await flagged(shop, admin)]
    assert (await shop.call("GET", f"/me/orders/{order_id}", buyer))["refund"]["status"] == "succeeded"
    await shop.call("POST", f"/admin/refunds/{ref['id']}/mark-refunded", admin, json={"note": "twice"}, expect=409)
    await shop.call("POST", f"/admin/refunds/{uuid.uuid4()}/mark-refunded", admin, json={"note": "?"}, expect=404)
    await shop.call("POST", "/admin/refunds/nope/mark-refunded", admin, json={"note": "?"}, expect=404)
    [row] = (await shop.call("GET", f"/admin/audit?action=refund.mark_refunded&entity_id={ref['id']}", admin))[
        "items"]
    assert row["data"]["note"] == "bank transfer 2026-12-06, ticket 4411"
    assert row["data"]["before"]["payment_refund_due_minor"] == ref["amount_minor"]
    assert row["data"]["after"] == {"status": "succeeded", "payment_refund_due_minor": 0}
    assert len(fake_stripe.refund_requests()) == refunds_mod.MAX_ATTEMPTS  # nothing sent by the desk


async def test_an_amount_mismatch_is_resolved_with_a_note(shop, fake_stripe):
    admin = await shop.user(role="admin")
    buyer, [(seller, _vid)], out = await bought(shop, "stripe", qty=1)
    pay = out["payment"]
    result = await shop.services.commerce.apply_payment_event(PaymentEvent(
        provider="stripe", event_key=uuid.uuid4().hex, event_type="test", kind="succeeded",
        provider_ref=pay["provider_ref"], amount_minor=1, currency=pay["currency"]))
    assert result == "amount_mismatch"
    [item] = [p for p in await flagged(shop, admin, "issue=amount_mismatch") if p["id"] == pay["id"]]
    assert item["issue_details"]["received"]["amount_minor"] == 1
    assert pay["id"] not in [p["id"] for p in await flagged(shop, admin, "issue=refund_due")]
    await shop.call("GET", "/admin/payments/flagged", seller, expect=403)
    await shop.call("GET", "/admin/payments/flagged?issue=lost", admin, expect=400)
    await shop.call("POST", f"/admin/payments/{pay['id']}/resolve", admin, json={"note": ""}, expect=422)
    done = await shop.call("POST", f"/admin/payments/{pay['id']}/resolve", admin,
                           json={"note": "buyer's bank rounded; refunded the 1 cent in Stripe"})
    assert done["issue"] is None and done["status"] == "requires_action"
    assert (await payment_row(shop, pay["id"]))["issue"] is None
    await shop.call("POST", f"/admin/payments/{pay['id']}/resolve", admin, json={"note": "again"}, expect=409)
    await shop.call("POST", f"/admin/payments/{uuid.uuid4()}/resolve", admin, json={"note": "?"}, expect=404)
    [row] = (await shop.call("GET", f"/admin/audit?action=payment.resolve&entity_id={pay['id']}", admin))["items"]
    assert row["data"]["before"]["issue"] == "amount_mismatch" and row["data"]["after"] == {"issue": None}
    assert row["data"]["before"]["issue_details"]["received"]["amount_minor"] == 1


async def test_flagged_pages_with_a_cursor(shop, fake_stripe):
    admin = await shop.user(role="admin")
    ids = []
    for _ in range(3):
        _buyer, _made, out = await bought(shop, "stripe", qty=1)
        pay = out["payment"]
        await shop.services.commerce.apply_payment_event(PaymentEvent(
            provider="stripe", event_key=uuid.uuid4().hex, event_type="test", kind="succeeded",
            provider_ref=pay["provider_ref"], amount_minor=2, currency=pay["currency"]))
        ids.append(pay["id"])
    seen, cursor = [], None
    while True:
        page = await shop.call("GET", "/admin/payments/flagged?limit=2" + (f"&cursor={cursor}" if cursor else ""),
                               admin)
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i for i in seen if i in ids] == ids[::-1] and len(seen) == len(set(seen))
    await shop.call("GET", "/admin/payments/flagged?cursor=WzEsMl0", admin, expect=400)
