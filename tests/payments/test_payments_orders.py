"""End to end: real orders made through REST checkout, paid through each provider's real flow, and the
provider's signed webhooks moving (or, when they must not, not moving) the orders: valid -> paid, replay ->
unchanged, failure after success -> still paid, wrong amount -> not paid, cancel -> canceled, refund ->
refunded; the sandbox flow with the buyer's socket seeing order:update to paid."""
from __future__ import annotations

import itertools

import pytest

from live.appkeys import SERVICES
from live.http.api import API
from tests.helpers import Viewer, make_settings
from tests.payments.fakes.payments import settled
from tests.payments.fakes.paystack_api import FakePaystack
from tests.payments.fakes.paystack_api import sign as paystack_sign
from tests.payments.fakes.stripe_api import FakeStripe
from tests.payments.fakes.stripe_api import sign as stripe_sign

WHSEC = "whsec_orders_" + "w" * 24
ADDRESS = {"name": "Ada Lovelace", "line1": "1 Analytical St", "city": "London", "postal_code": "N1 9GU",
           "country": "GB"}
_names = itertools.count()


@pytest.fixture
def settings(tmp_path, fake_stripe, fake_paystack):
    return make_settings(tmp_path, stripe_secret_key=fake_stripe.api_key, stripe_webhook_secret=WHSEC,
                         stripe_api_base=fake_stripe.url, paystack_secret_key=fake_paystack.secret_key,
                         paystack_api_base=fake_paystack.url)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def checkout(client, token_for, provider: str, *, price: int = 2599, currency: str = "USD",
                   qty: int = 2) -> dict:
    """A seller's active product with 5 units, a buyer who puts `qty` in the cart and checks out."""
    n = next(_names)
    _, seller = await token_for(f"shop{n}", "seller")
    resp = await client.post(f"{API}/products", headers=bearer(seller), json={
        "title": "Red scarf", "status": "active",
        "variants": [{"sku": f"RS-{n}", "price_minor": price, "currency": currency, "stock": 5}]})
    assert resp.status == 201, await resp.text()
    variant_id = (await resp.json())["variants"][0]["id"]
    buyer_id, buyer = await token_for(f"buyer{n}")
    resp = await client.post(f"{API}/me/cart/items", headers=bearer(buyer), json={"variant_id": variant_id,
                                                                                  "qty": qty})
    assert resp.status in (200, 201), await resp.text()
    resp = await client.post(f"{API}/checkout", headers={**bearer(buyer), "Idempotency-Key": f"co-{n}"}, json={
        "address": ADDRESS, "provider": provider, "email": f"buyer{n}@example.com",
        "return_url": "https://shop.example/return"})
    assert resp.status == 201, await resp.text()
    out = await resp.json()
    assert out["payment"]["started"] is True, out
    [order] = out["orders"]
    return {"order_id": order["id"], "payment": out["payment"], "buyer": buyer, "buyer_id": buyer_id,
            "variant_id": variant_id, "seller": seller, "total": price * qty}


async def order_of(client, bought: dict) -> dict:
    resp = await client.get(f"{API}/me/orders/{bought['order_id']}", headers=bearer(bought["buyer"]))
    assert resp.status == 200
    return await resp.json()


def statuses(order: dict) -> list[str]:
    return [h["to"] for h in order["history"]]


async def stock(services, variant_id: str) -> tuple[int, int, int]:
    from live.auth.principal import SYSTEM

    async with services.db.tx(SYSTEM) as conn:
        row = await conn.fetchrow("SELECT on_hand, reserved, sold FROM product_variants WHERE id = $1::uuid",
                                  variant_id)
    return row["on_hand"], row["reserved"], row["sold"]


# ---- Stripe ----

async def stripe_event(client, fake: FakeStripe, event_type: str, obj: dict, event_id: str | None = None):
    body = fake.event(event_type, obj, event_id)
    resp = await client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": stripe_sign(body, WHSEC)})
    return resp.status, await settled(client.app[SERVICES], await resp.json())


async def test_stripe_checkout_paid_replayed_then_late_failure(client, services, token_for, fake_stripe):
    bought = await checkout(client, token_for, "stripe")
    payment = bought["payment"]
    intent = fake_stripe.intents[payment["provider_ref"]]
    assert payment["client_secret"] == intent["client_secret"]
    assert intent["amount"] == bought["total"] and intent["currency"] == "usd"
    assert intent["metadata"]["payment_id"] == payment["id"]
    assert (await order_of(client, bought))["status"] == "pending_payment"

    failed_early = dict(fake_stripe.fail(intent["id"]))  # a first card declined, delivered late
    paid = dict(fake_stripe.succeed(intent["id"]))
    status, body = await stripe_event(client, fake_stripe, "payment_intent.succeeded", paid, "evt_paid")
    assert (status, body) == (200, {"received": True, "result": "applied"})
    order = await order_of(client, bought)
    assert order["status"] == "paid" and statuses(order)[-1] == "paid"
    history = statuses(order)

    status, body = await stripe_event(client, fake_stripe, "payment_intent.succeeded", paid, "evt_paid")
    assert (status, body) == (200, {"received": True, "duplicate": True})
    status, body = await stripe_event(client, fake_stripe, "payment_intent.payment_failed", failed_early)
    assert status == 200 and body["result"] == "ignored"
    order = await order_of(client, bought)
    assert order["status"] == "paid" and statuses(order) == history  # never backwards, no new history


async def test_stripe_wrong_amount_does_not_pay(client, services, token_for, fake_stripe):
    bought = await checkout(client, token_for, "stripe")
    intent = fake_stripe.succeed(bought["payment"]["provider_ref"], amount_received=100)
    status, body = await stripe_event(client, fake_stripe, "payment_intent.succeeded", intent)
    assert status == 200 and body["result"] == "amount_mismatch"
    order = await order_of(client, bought)
    assert order["status"] == "pending_payment"
    assert order["payment"]["issue"] == "amount_mismatch"


async def test_stripe_cancel_releases_stock_and_refund_after_paid(client, services, token_for, fake_stripe):
    canceled = await checkout(client, token_for, "stripe")
    assert await stock(services, canceled["variant_id"]) == (5, 0, 2)
    intent = fake_stripe.cancel(canceled["payment"]["provider_ref"])
    status, body = await stripe_event(client, fake_stripe, "payment_intent.canceled", intent)
    assert (status, body["result"]) == (200, "applied")
    assert (await order_of(client, canceled))["status"] == "canceled"
    assert await stock(services, canceled["variant_id"]) == (5, 0, 0)

    refunded = await checkout(client, token_for, "stripe")
    pi_id = refunded["payment"]["provider_ref"]
    charge = fake_stripe.charge(pi_id)
    # the refund arrives before the success (out of order): nothing to refund yet, the order stays as it is
    status, body = await stripe_event(client, fake_stripe, "charge.refunded", charge, "evt_refund")
    assert (status, body["result"]) == (200, "ignored")
    assert (await order_of(client, refunded))["status"] == "pending_payment"
    await stripe_event(client, fake_stripe, "payment_intent.succeeded", fake_stripe.succeed(pi_id))
    assert (await order_of(client, refunded))["status"] == "paid"
    status, body = await stripe_event(client, fake_stripe, "charge.refunded", charge, "evt_refund_2")
    assert (status, body["result"]) == (200, "applied")
    assert (await order_of(client, refunded))["status"] == "refunded"


async def test_stripe_partial_refund_leaves_the_order_paid(client, services, token_for, fake_stripe):
    bought = await checkout(client, token_for, "stripe")
    pi_id = bought["payment"]["provider_ref"]
    await stripe_event(client, fake_stripe, "payment_intent.succeeded", fake_stripe.succeed(pi_id))
    charge = fake_stripe.charge(pi_id, amount_refunded=1000)
    body = fake_stripe.event("charge.refunded", charge, previous={"amount_refunded": 0, "refunded": False})
    resp = await client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": stripe_sign(body, WHSEC)})
    # nothing owed: recorded for a human
    assert (await settled(services, await resp.json()))["result"] == "partial_refund"
    order = await order_of(client, bought)
    assert order["status"] == "paid" and order["payment"]["issue"] == "refund_due"


# ---- Paystack ----

async def paystack_event(client, fake: FakePaystack, body: bytes):
    resp = await client.post("/webhooks/paystack", data=body,
                             headers={"x-paystack-signature": paystack_sign(body, fake.secret_key)})
    return resp.status, await settled(client.app[SERVICES], await resp.json())


async def test_paystack_checkout_paid_and_replayed(client, services, token_for, fake_paystack):
    bought = await checkout(client, token_for, "paystack", price=250000, currency="NGN", qty=1)
    payment = bought["payment"]
    reference = payment["provider_ref"]
    tx = fake_paystack.transactions[reference]
    assert payment["authorization_url"].startswith(fake_paystack.url)
    assert (tx["amount"], tx["currency"], tx["callback_url"]) == (250000, "NGN", "https://shop.example/return")

    fake_paystack.complete(reference)
    body = fake_paystack.charge_success(reference)
    assert await paystack_event(client, fake_paystack, body) == (200, {"received": True, "result": "applied"})
    order = await order_of(client, bought)
    assert order["status"] == "paid"
    assert await paystack_event(client, fake_paystack, body) == (200, {"received": True, "duplicate": True})
    assert statuses(await order_of(client, bought)) == statuses(order)

    status, out = await paystack_event(client, fake_paystack, fake_paystack.refund_processed(reference))
    assert (status, out["result"]) == (200, "applied")
    assert (await order_of(client, bought))["status"] == "refunded"


async def test_paystack_wrong_amount_does_not_pay(client, services, token_for, fake_paystack):
    bought = await checkout(client, token_for, "paystack", price=250000, currency="NGN", qty=1)
    reference = bought["payment"]["provider_ref"]
    fake_paystack.complete(reference, amount=100)
    # the webhook claims the full amount; verify says what was really paid
    status, body = await paystack_event(client, fake_paystack, fake_paystack.charge_success(reference, amount=250000))
    assert status == 200 and body["result"] == "amount_mismatch"
    order = await order_of(client, bought)
    assert order["status"] == "pending_payment" and order["payment"]["issue"] == "amount_mismatch"


# ---- sandbox ----

async def test_sandbox_checkout_confirm_page_pay_and_order_update_on_the_buyers_socket(client, services, token_for):
    bought = await checkout(client, token_for, "sandbox", price=1999, qty=1)
    url = bought["payment"]["authorization_url"]
    path = url[url.index("/pay/sandbox/"):]
    page = await client.get(path)
    assert page.status == 200 and "19.99 USD" in await page.text()

    viewer = await Viewer(str(client.make_url("")), bought["buyer"]).connect()
    try:
        resp = await client.post(path.split("?")[0], json={"outcome": "succeeded"})
        assert resp.status == 200, await resp.text()
        assert await settled(services, (await resp.json())["webhook"]["body"]) == {"received": True,
                                                                                  "result": "applied"}
        update = await viewer.wait_for("order:update", lambda d: d["order"]["status"] == "paid")
        assert update["order"]["id"] == bought["order_id"]
    finally:
        await viewer.close()
    assert (await order_of(client, bought))["status"] == "paid"

    again = await client.post(path.split("?")[0], json={"outcome": "failed"})
    assert again.status == 409  # the payment is closed: the sandbox offers no decline after paying
    assert (await order_of(client, bought))["status"] == "paid"


async def test_sandbox_decline_cancels_and_releases_stock(client, services, token_for):
    bought = await checkout(client, token_for, "sandbox", qty=3)
    assert await stock(services, bought["variant_id"]) == (5, 0, 3)
    reference = bought["payment"]["provider_ref"]
    resp = await client.post(f"/pay/sandbox/{reference}", json={"outcome": "failed"})
    assert (await settled(services, (await resp.json())["webhook"]["body"]))["result"] == "applied"
    assert (await order_of(client, bought))["status"] == "canceled"
    assert await stock(services, bought["variant_id"]) == (5, 0, 0)
    page = await (await client.get(f"/pay/sandbox/{reference}")).text()
    assert "This payment was declined." in page and "<form" not in page
