"""Paystack over aiohttp against a local fake Paystack API: initialize, verify by reference, and webhooks with
real x-paystack-signature (HMAC-SHA512 of the raw body): valid, forged, replayed, refunds, and a charge.success
that Paystack's verify does not (yet) confirm."""
from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from live.appkeys import SERVICES
from live.commerce.payments.base import PaymentRequest
from live.commerce.payments.paystack import event_key, reference_for
from live.errors import DomainError
from tests.helpers import make_settings
from tests.payments.fakes.payments import answered, count_events, processed, retries_due, stored_event
from tests.payments.fakes.paystack_api import sign

PAYMENT_ID = "0f6a7f2e-1c55-4b8e-8d0f-5b6f1e2d3c4a"
REFERENCE = reference_for(PAYMENT_ID)


@pytest.fixture
def settings(tmp_path, fake_paystack):
    return make_settings(tmp_path, paystack_secret_key=fake_paystack.secret_key, paystack_api_base=fake_paystack.url)


def request(**kw) -> PaymentRequest:
    fields = dict(payment_id=PAYMENT_ID, amount_minor=500000, currency="NGN", idempotency_key="attempt-1",
                  email="ada@example.com", return_url="https://shop.example/orders/return")
    fields.update(kw)
    return PaymentRequest(**fields)


async def post_event(client, body: bytes, key: str, signature: str | None = None):
    resp = await client.post("/webhooks/paystack", data=body, headers={
        "Content-Type": "application/json", "x-paystack-signature": signature if signature is not None
        else sign(body, key)})
    return await answered(client.app[SERVICES], resp)


async def test_initialize_sends_minor_units_email_reference_and_callback(services, fake_paystack):
    start = await services.payments.get("paystack").start(request())
    [sent] = fake_paystack.requests
    assert (sent["method"], sent["path"]) == ("POST", "/transaction/initialize")
    assert sent["headers"]["Authorization"] == f"Bearer {fake_paystack.secret_key}"
    assert sent["params"]["amount"] == 500000  # kobo
    assert sent["params"]["email"] == "ada@example.com"
    assert sent["params"]["currency"] == "NGN"
    assert sent["params"]["reference"] == REFERENCE
    assert sent["params"]["callback_url"] == "https://shop.example/orders/return"
    assert sent["params"]["metadata"] == {"payment_id": PAYMENT_ID}
    assert start.provider_ref == REFERENCE
    assert start.authorization_url.startswith(f"{fake_paystack.url}/checkout/")
    assert start.client_secret is None


async def test_initialize_without_buyer_email_uses_the_placeholder(services, fake_paystack):
    await services.payments.get("paystack").start(request(email=None))
    assert fake_paystack.requests[0]["params"]["email"] == f"buyer+{REFERENCE}@example.com"


async def test_initialize_retried_after_paystack_kept_the_reference_uses_a_suffixed_one(services, fake_paystack):
    """The first attempt reached Paystack but we never saw the answer: Paystack refuses the reference again (and
    cannot tell the first URL), so the retry opens a transaction under a suffixed reference of the same payment."""
    paystack = services.payments.get("paystack")
    await paystack.start(request())
    again = await paystack.start(request())
    assert again.provider_ref.startswith(REFERENCE + "-r") and again.provider_ref != REFERENCE
    assert [r["params"]["reference"] for r in fake_paystack.requests] == [REFERENCE, REFERENCE, again.provider_ref]
    assert again.authorization_url.startswith(f"{fake_paystack.url}/checkout/")
    assert fake_paystack.transactions[again.provider_ref]["metadata"] == {"payment_id": PAYMENT_ID}


async def test_paystack_rejection_becomes_a_provider_error(services, fake_paystack):
    with pytest.raises(DomainError) as err:
        await services.payments.get("paystack").start(request(amount_minor=0))
    assert err.value.code == "payment_provider_error" and "Invalid Amount" in err.value.message


async def test_verify_by_reference(services, fake_paystack):
    paystack = services.payments.get("paystack")
    await paystack.start(request())
    pending = await paystack.verify(REFERENCE)
    assert (pending.kind, pending.provider_ref, pending.payment_id) == ("ignored", REFERENCE, PAYMENT_ID)
    assert fake_paystack.requests[-1]["path"] == f"/transaction/verify/{REFERENCE}"

    fake_paystack.complete(REFERENCE)
    paid = await paystack.verify(REFERENCE)
    assert (paid.kind, paid.amount_minor, paid.currency) == ("succeeded", 500000, "NGN")
    fake_paystack.complete(REFERENCE, status="failed")
    assert (await paystack.verify(REFERENCE)).kind == "failed"
    assert await paystack.verify("live_unknown") is None


async def test_valid_charge_success_is_verified_then_applied(client, services, fake_paystack, commerce):
    await services.payments.get("paystack").start(request())
    fake_paystack.complete(REFERENCE)
    body = fake_paystack.charge_success(REFERENCE)
    resp = await post_event(client, body, fake_paystack.secret_key)
    assert resp.status == 200 and (await resp.json())["result"] == "recorded succeeded"
    [event] = commerce.events
    assert (event.provider, event.kind, event.provider_ref) == ("paystack", "succeeded", REFERENCE)
    assert (event.amount_minor, event.currency, event.payment_id) == (500000, "NGN", PAYMENT_ID)
    tx_id = fake_paystack.transactions[REFERENCE]["id"]
    assert event.event_key == f"charge.success:{tx_id}:success"
    assert fake_paystack.requests[-1]["path"] == f"/transaction/verify/{REFERENCE}"  # confirmed with Paystack
    row = await stored_event(services, "paystack", event.event_key)
    assert row["processed_at"] is not None and row["payload"]["data"]["reference"] == REFERENCE


async def test_amount_is_taken_from_verify_not_from_the_webhook(client, services, fake_paystack, commerce):
    await services.payments.get("paystack").start(request())
    fake_paystack.complete(REFERENCE, amount=100)  # the customer really paid 1 naira
    body = fake_paystack.charge_success(REFERENCE, amount=500000)
    assert (await post_event(client, body, fake_paystack.secret_key)).status == 200
    assert commerce.events[0].amount_minor == 100  # the order side sees the real amount and can refuse it


async def test_charge_success_not_confirmed_by_verify_is_kept_for_the_retry(client, services, fake_paystack, commerce):
    await services.payments.get("paystack").start(request())
    body = fake_paystack.charge_success(REFERENCE, status="success")  # verify still says abandoned
    resp = await post_event(client, body, fake_paystack.secret_key)
    assert resp.status == 200 and "does not confirm" in resp.body["processing_error"]  # its job retries it
    assert commerce.events == []
    key = event_key(orjson.loads(body))
    row = await stored_event(services, "paystack", key)
    assert row["processed_at"] is None and "does not confirm" in row["error"]

    fake_paystack.complete(REFERENCE)
    resp = await post_event(client, body, fake_paystack.secret_key)  # Paystack's retry: its job is queued already
    assert resp.body == {"received": True, "duplicate": True}
    await retries_due(services)
    assert (await processed(services, "paystack", key))["error"] is None
    assert len(commerce.events) == 1


@pytest.mark.parametrize("forgery", ["wrong_key", "tampered", "missing", "sha256"])
async def test_forged_webhook_is_rejected_and_nothing_is_stored(client, services, fake_paystack, commerce, forgery):
    await services.payments.get("paystack").start(request())
    fake_paystack.complete(REFERENCE)
    body = fake_paystack.charge_success(REFERENCE)
    signature = {
        "wrong_key": sign(body, "sk_test_attacker"),
        "tampered": sign(body, fake_paystack.secret_key),
        "missing": "",
        "sha256": hmac.new(fake_paystack.secret_key.encode(), body, hashlib.sha256).hexdigest(),
    }[forgery]
    if forgery == "tampered":
        body = body.replace(b'"amount":500000', b'"amount":500001')
    resp = await post_event(client, body, fake_paystack.secret_key, signature=signature)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_signature"
    assert commerce.events == [] and await count_events(services) == 0


async def test_replayed_webhook_is_a_duplicate(client, services, fake_paystack, commerce):
    await services.payments.get("paystack").start(request())
    fake_paystack.complete(REFERENCE)
    body = fake_paystack.charge_success(REFERENCE)
    verifies_before = sum(1 for r in fake_paystack.requests if r["path"].startswith("/transaction/verify"))
    assert (await post_event(client, body, fake_paystack.secret_key)).status == 200
    resp = await post_event(client, body, fake_paystack.secret_key)
    assert resp.status == 200 and await resp.json() == {"received": True, "duplicate": True}
    assert len(commerce.events) == 1
    verifies = sum(1 for r in fake_paystack.requests if r["path"].startswith("/transaction/verify"))
    assert verifies == verifies_before + 1  # a duplicate does not even ask Paystack
    assert await count_events(services) == 1


async def test_refund_processed_is_a_refund_of_the_transaction(client, services, fake_paystack, commerce):
    await services.payments.get("paystack").start(request())
    fake_paystack.complete(REFERENCE)
    assert (await post_event(client, fake_paystack.charge_success(REFERENCE), fake_paystack.secret_key)).status == 200
    refund = fake_paystack.refund_processed(REFERENCE)
    assert (await post_event(client, refund, fake_paystack.secret_key)).status == 200
    success, refunded = commerce.events
    assert (refunded.kind, refunded.provider_ref, refunded.amount_minor, refunded.currency) == (
        "refunded", REFERENCE, 500000, "NGN")
    assert refunded.event_key != success.event_key
    assert refunded.event_key.startswith("refund.processed:rf_") and refunded.event_key.endswith(":processed")
    assert await count_events(services) == 2


async def test_other_events_are_stored_and_ignored(client, services, fake_paystack, commerce):
    body = orjson.dumps({"event": "transfer.success", "data": {"id": 77, "status": "success", "reference": "t1",
                                                                "amount": 1000, "currency": "NGN"}})
    resp = await post_event(client, body, fake_paystack.secret_key)
    assert resp.status == 200 and await resp.json() == {"received": True, "ignored": True}
    assert commerce.events == []
    assert (await stored_event(services, "paystack", "transfer.success:77:success"))["processed_at"] is not None


def test_event_key_makes_replays_equal_and_different_events_distinct():
    charge = {"event": "charge.success", "data": {"id": 1, "reference": "r", "status": "success"}}
    assert event_key(charge) == event_key(orjson.loads(orjson.dumps(charge)))
    assert event_key(charge) != event_key({"event": "charge.success", "data": {"id": 2, "reference": "r",
                                                                                 "status": "success"}})
    pending = {"event": "refund.pending", "data": {"refund_reference": "rf", "transaction_reference": "r",
                                                   "status": "pending"}}
    processed = {"event": "refund.processed", "data": {"refund_reference": "rf", "transaction_reference": "r",
                                                       "status": "processed"}}
    assert len({event_key(charge), event_key(pending), event_key(processed)}) == 3
