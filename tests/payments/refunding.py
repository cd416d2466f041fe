"""Helpers of the refund tests (test_payments_refunds.py, test_admin_payments.py): orders bought and paid through
each provider's real flow, signed webhooks (answered once their job processed them), the refund and payment rows,
the refund jobs (waited for; their retries made due at once)."""
from __future__ import annotations

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop
from tests.helpers import until
from tests.payments.fakes.payments import settled
from tests.payments.fakes.paystack_api import FakePaystack
from tests.payments.fakes.paystack_api import sign as paystack_sign
from tests.payments.fakes.stripe_api import FakeStripe
from tests.payments.fakes.stripe_api import sign as stripe_sign

WHSEC = "whsec_refunds_" + "r" * 24


async def bought(shop: Shop, provider: str, *, sellers: int = 1, price: int = 1500, qty: int = 2,
                 currency: str = "USD"):
    """Sellers with one product each (5 units), a buyer who checks out `qty` of each with `provider`."""
    buyer = await shop.user()
    made = []
    for _ in range(sellers):
        seller = await shop.seller()
        vid = (await shop.product(seller, stock=5, price=price, currency=currency))["variants"][0]["id"]
        await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": qty})
        made.append((seller, vid))
    out = await shop.checkout(buyer, provider=provider, email="buyer@example.com")
    assert out["payment"]["started"] is True, out
    return buyer, made, out


async def stripe_webhook(shop: Shop, body: bytes) -> dict:
    resp = await shop.client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": stripe_sign(body, WHSEC)})
    assert resp.status == 200, await resp.text()
    return await settled(shop.services, await resp.json())


async def paystack_webhook(shop: Shop, fake: FakePaystack, body: bytes) -> dict:
    resp = await shop.client.post("/webhooks/paystack", data=body,
                                  headers={"x-paystack-signature": paystack_sign(body, fake.secret_key)})
    assert resp.status == 200, await resp.text()
    return await settled(shop.services, await resp.json())


async def paid_with_stripe(shop: Shop, fake: FakeStripe, out: dict) -> str:
    pi_id = out["payment"]["provider_ref"]
    body = fake.event("payment_intent.succeeded", fake.succeed(pi_id))
    assert (await stripe_webhook(shop, body))["result"] == "applied"
    return pi_id


async def paid_with_paystack(shop: Shop, fake: FakePaystack, out: dict) -> str:
    reference = out["payment"]["provider_ref"]
    fake.complete(reference)
    assert (await paystack_webhook(shop, fake, fake.charge_success(reference)))["result"] == "applied"
    return reference


async def refund_row(shop: Shop, order_id: str) -> dict:
    async with shop.services.db.tx(SYSTEM) as conn:
        row = await conn.fetchrow("SELECT id::text AS id, status, amount_minor, currency, idempotency_key, provider,"
                                  " provider_ref, attempts, error, next_attempt_at FROM payment_refunds"
                                  " WHERE order_id = $1::uuid", order_id)
    return dict(row) if row else None


async def payment_row(shop: Shop, payment_id: str) -> dict:
    async with shop.services.db.tx(SYSTEM) as conn:
        return dict(await conn.fetchrow("SELECT status, issue, issue_details, refund_due_minor FROM payments "
                                        "WHERE id = $1::uuid", payment_id))


async def refund_jobs_done(shop: Shop) -> None:
    """Wait until no refund.send job is running or due: each refund's call was made (a retry waits for later)."""
    async def idle() -> bool:
        async with shop.services.db.tx(SYSTEM) as conn:
            return not await conn.fetchval(
                """SELECT count(*) FROM pgqueuer WHERE entrypoint = 'refund.send'
                   AND (status = 'picked' OR (status = 'queued' AND execute_after <= now()))""")
    await until(idle, what="the refund jobs")


async def refund_jobs(shop: Shop) -> list[dict]:
    """The refund.send jobs still in the queue (waiting for a retry, or held dead)."""
    async with shop.services.db.tx(SYSTEM) as conn:
        return [dict(r) for r in await conn.fetch(
            "SELECT status::text AS status, attempts FROM pgqueuer WHERE entrypoint = 'refund.send' ORDER BY id")]


async def time_passes(shop: Shop) -> None:
    """Every refund job waiting for its retry is due now (instead of waiting out the backoff), and has run."""
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE pgqueuer SET execute_after = now() - interval '1 second' "
                           "WHERE entrypoint = 'refund.send' AND status = 'queued'")
    await refund_jobs_done(shop)


async def alice_cancels_while_stripe_is_down(shop: Shop, fake: FakeStripe) -> tuple[dict, dict, str]:
    """One Stripe payment for two sellers' orders; Stripe goes down for the API and the seller Alice cancels hers
    (its refund waits): (the checkout, Alice's order, the PaymentIntent id)."""
    buyer, [(alice, _), (bob, _)], out = await bought(shop, "stripe", sellers=2, price=1000, qty=1)
    mine = next(o for o in out["orders"] if o["seller"]["name"] == alice.name)
    pi_id = await paid_with_stripe(shop, fake, out)
    fake.down = True
    await shop.call("POST", f"/seller/orders/{mine['id']}/status", alice, json={"status": "canceled"})
    await refund_jobs_done(shop)
    return out, mine, pi_id


def refunds_of(shop: Shop):
    return shop.services.commerce.orders.refunds
