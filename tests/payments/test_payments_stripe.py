"""Stripe through the real `stripe` library against a local fake Stripe API, and Stripe webhooks with real
signatures (signed here from Stripe's scheme, verified in the app by the library): valid, forged, replayed,
concurrent replays, every mapped type, and failures of the order side."""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from live.appkeys import SERVICES
from live.auth.principal import SYSTEM
from live.commerce.payments.base import PaymentRequest
from live.errors import DomainError
from tests.helpers import make_settings
from tests.payments.fakes.payments import (
    RecordingCommerce,
    answered,
    count_events,
    domain_error,
    processed,
    retries_due,
    stored_event,
)
from tests.payments.fakes.stripe_api import sign

WHSEC = "whsec_test_" + "s" * 24
PAYMENT_ID = "7b0c8f0e-3d7a-4c1e-9a59-2f4f3c1d9e10"


@pytest.fixture
def settings(tmp_path, fake_stripe):
    return make_settings(tmp_path, stripe_secret_key=fake_stripe.api_key, stripe_webhook_secret=WHSEC,
                         stripe_api_base=fake_stripe.url)


def request(key: str = "pay-attempt-1", amount: int = 2599, **kw) -> PaymentRequest:
    return PaymentRequest(payment_id=PAYMENT_ID, amount_minor=amount, currency="USD", idempotency_key=key, **kw)


async def post_event(client, body: bytes, secret: str = WHSEC, *, header: str | None = None, timestamp=None):
    headers = {"Content-Type": "application/json",
               "Stripe-Signature": header if header is not None else sign(body, secret, timestamp)}
    resp = await client.post("/webhooks/stripe", data=body, headers=headers)
    return await answered(client.app[SERVICES], resp)


async def started_intent(services, fake_stripe, amount: int = 2599) -> dict:
    start = await services.payments.get("stripe").start(request(amount=amount))
    return fake_stripe.intents[start.provider_ref]


# ---- start / verify through the library ----

async def test_start_creates_a_payment_intent_with_the_idempotency_key(services, fake_stripe):
    stripe = services.payments.get("stripe")
    start = await stripe.start(request(email="ada@example.com", description="Order LS-2026-000001",
                                       metadata={"orders": "LS-2026-000001," * 40}))

    assert len(fake_stripe.requests) == 1
    sent = fake_stripe.requests[0]
    assert (sent["method"], sent["path"]) == ("POST", "/v1/payment_intents")
    assert sent["headers"]["Idempotency-Key"] == "pay-attempt-1"
    assert sent["headers"]["Authorization"] == f"Bearer {fake_stripe.api_key}"
    assert sent["params"]["amount"] == "2599"
    assert sent["params"]["currency"] == "usd"
    assert sent["params"]["metadata"] == {"payment_id": PAYMENT_ID, "orders": ("LS-2026-000001," * 40)[:500]}
    assert sent["params"]["automatic_payment_methods"] == {"enabled": "true"}
    assert sent["params"]["receipt_email"] == "ada@example.com"
    intent = fake_stripe.intents[start.provider_ref]
    assert start.client_secret == intent["client_secret"] and start.client_secret.startswith(start.provider_ref)
    assert start.authorization_url is None
    assert start.status == "requires_payment_method"


async def test_repeated_start_with_the_same_key_returns_the_same_intent(services, fake_stripe):
    stripe = services.payments.get("stripe")
    first = await stripe.start(request())
    again = await stripe.start(request())
    assert again.provider_ref == first.provider_ref
    assert again.client_secret == first.client_secret
    assert len(fake_stripe.intents) == 1
    assert [r["headers"]["Idempotency-Key"] for r in fake_stripe.requests] == ["pay-attempt-1"] * 2

    other = await stripe.start(request(key="pay-attempt-2"))
    assert other.provider_ref != first.provider_ref
    assert len(fake_stripe.intents) == 2


async def test_same_key_with_other_parameters_is_an_idempotency_conflict(services, fake_stripe):
    stripe = services.payments.get("stripe")
    await stripe.start(request())
    with pytest.raises(DomainError) as err:
        await stripe.start(request(amount=1))
    assert err.value.code == "idempotency_conflict" and err.value.status == 409
    assert len(fake_stripe.intents) == 1


async def test_stripe_api_error_becomes_a_provider_error(services, fake_stripe):
    fake_stripe.api_key = "sk_test_rotated"  # our key is no longer valid
    with pytest.raises(DomainError) as err:
        await services.payments.get("stripe").start(request())
    assert err.value.code == "payment_provider_error" and err.value.status == 502
    assert fake_stripe.intents == {}


async def test_verify_retrieves_the_payment_intent(services, fake_stripe):
    stripe = services.payments.get("stripe")
    intent = await started_intent(services, fake_stripe)

    pending = await stripe.verify(intent["id"])
    assert (pending.kind, pending.provider_ref, pending.payment_id) == ("ignored", intent["id"], PAYMENT_ID)

    fake_stripe.succeed(intent["id"])
    paid = await stripe.verify(intent["id"])
    assert (paid.kind, paid.amount_minor, paid.currency) == ("succeeded", 2599, "USD")
    assert fake_stripe.requests[-1]["method"] == "GET"
    assert fake_stripe.requests[-1]["path"] == f"/v1/payment_intents/{intent['id']}"

    fake_stripe.fail(intent["id"])
    assert (await stripe.verify(intent["id"])).kind == "failed"
    fake_stripe.cancel(intent["id"])
    assert (await stripe.verify(intent["id"])).kind == "canceled"
    assert await stripe.verify("pi_does_not_exist") is None


# ---- webhooks ----

async def test_valid_succeeded_event_reaches_the_order_side_once_and_is_stored(client, services, fake_stripe,
                                                                             commerce):
    intent = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])
    body = fake_stripe.event("payment_intent.succeeded", intent, event_id="evt_valid_1")

    resp = await post_event(client, body)
    assert resp.status == 200
    assert await resp.json() == {"received": True, "result": "recorded succeeded"}
    [event] = commerce.events
    assert (event.provider, event.event_key, event.event_type) == ("stripe", "evt_valid_1", "payment_intent.succeeded")
    assert (event.kind, event.provider_ref, event.amount_minor, event.currency) == ("succeeded", intent["id"], 2599,
                                                                                    "USD")
    assert event.payment_id == PAYMENT_ID
    row = await stored_event(services, "stripe", "evt_valid_1")
    assert row["event_type"] == "payment_intent.succeeded"
    assert row["processed_at"] is not None and row["error"] is None
    assert row["payload"]["data"]["object"]["id"] == intent["id"]


@pytest.mark.parametrize("forgery", ["wrong_secret", "tampered_body", "no_header", "garbage_header", "stale"])
async def test_forged_event_is_rejected_and_nothing_is_stored(client, services, fake_stripe, commerce, forgery):
    intent = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])
    body = fake_stripe.event("payment_intent.succeeded", intent)
    header = {
        "wrong_secret": sign(body, "whsec_attacker"),
        "tampered_body": sign(body, WHSEC),
        "no_header": "",
        "garbage_header": "v1=deadbeef",
        "stale": sign(body, WHSEC, int(time.time()) - 3600),  # outside Stripe's 300 s tolerance
    }[forgery]
    if forgery == "tampered_body":
        body = body.replace(b'"amount":2599', b'"amount":1')
        assert b'"amount":1,' in body
    resp = await post_event(client, body, header=header)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_signature"
    assert commerce.events == []
    assert await count_events(services) == 0


async def test_signature_from_a_rotated_secret_among_several_v1_is_accepted(client, services, fake_stripe, commerce):
    intent = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])
    body = fake_stripe.event("payment_intent.succeeded", intent)
    t = int(time.time())
    old = sign(body, "whsec_old_secret", t).split(",")[1]
    header = sign(body, WHSEC, t) + "," + old
    assert (await post_event(client, body, header=header)).status == 200
    assert len(commerce.events) == 1


async def test_replayed_event_is_a_duplicate_and_changes_nothing(client, services, fake_stripe, commerce):
    intent = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])
    body = fake_stripe.event("payment_intent.succeeded", intent, event_id="evt_replayed")
    assert (await post_event(client, body)).status == 200
    first = await stored_event(services, "stripe", "evt_replayed")

    for _ in range(2):  # Stripe re-signs a retry with a new timestamp; the event id is what repeats
        resp = await post_event(client, body, timestamp=int(time.time()) + 1)
        assert resp.status == 200
        assert await resp.json() == {"received": True, "duplicate": True}
    assert len(commerce.events) == 1
    again = await stored_event(services, "stripe", "evt_replayed")
    assert again["processed_at"] == first["processed_at"]
    assert await count_events(services) == 1


async def test_concurrent_deliveries_of_one_event_are_processed_once(client, services, fake_stripe, commerce):
    intent = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])
    body = fake_stripe.event("payment_intent.succeeded", intent, event_id="evt_concurrent")

    slow = RecordingCommerce()

    async def apply_slowly(event):
        await asyncio.sleep(0.05)  # keep the first delivery in flight while the others arrive
        return await slow.apply_payment_event(event)

    commerce.apply_payment_event = apply_slowly
    responses = await asyncio.gather(*(post_event(client, body) for _ in range(6)))
    bodies = [await r.json() for r in responses]
    assert all(r.status == 200 for r in responses)
    assert sum(1 for b in bodies if b.get("duplicate")) == 5
    assert len(slow.events) == 1


async def test_concurrent_retries_of_a_stored_unprocessed_event_are_processed_once(client, services, fake_stripe,
                                                                                      commerce):
    intent = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])
    body = fake_stripe.event("payment_intent.succeeded", intent, event_id="evt_stored_then_retried")
    commerce.fail_with = RuntimeError("first attempt fails")
    first = await post_event(client, body)  # stored; its job failed and waits for its retry
    assert first.status == 200 and "first attempt fails" in first.body["processing_error"]
    commerce.fail_with = None

    slow = RecordingCommerce()

    async def apply_slowly(event):
        await asyncio.sleep(0.05)
        return await slow.apply_payment_event(event)

    commerce.apply_payment_event = apply_slowly
    responses = await asyncio.gather(*(post_event(client, body) for _ in range(4)))
    assert [(r.status, r.body) for r in responses] == [(200, {"received": True, "duplicate": True})] * 4
    await retries_due(services)  # the provider's deliveries added no job: the one job's retry processes it
    row = await processed(services, "stripe", "evt_stored_then_retried")
    assert row["error"] is None and row["result"] == "recorded succeeded"
    assert len(slow.events) == 1


@pytest.mark.parametrize("event_type,kind", [
    ("payment_intent.payment_failed", "failed"),
    ("payment_intent.canceled", "canceled"),
])
async def test_failure_and_cancel_events_are_mapped(client, services, fake_stripe, commerce, event_type, kind):
    pi_id = (await started_intent(services, fake_stripe))["id"]
    intent = fake_stripe.fail(pi_id) if kind == "failed" else fake_stripe.cancel(pi_id)
    assert (await post_event(client, fake_stripe.event(event_type, intent))).status == 200
    [event] = commerce.events
    assert (event.kind, event.event_type, event.provider_ref, event.amount_minor) == (kind, event_type, pi_id, 2599)


async def test_full_refund_is_mapped_to_the_payment_intent(client, services, fake_stripe, commerce):
    pi_id = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])["id"]
    charge = fake_stripe.charge(pi_id)
    assert (await post_event(client, fake_stripe.event("charge.refunded", charge, event_id="evt_refund"))).status == 200
    [event] = commerce.events
    assert (event.kind, event.provider_ref, event.amount_minor, event.currency) == ("refunded", pi_id, 2599, "USD")


async def test_partial_refunds_carry_the_amount_of_each_refund(client, services, fake_stripe, commerce):
    pi_id = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])["id"]
    first = fake_stripe.charge(pi_id, amount_refunded=500)
    second = fake_stripe.charge(pi_id, amount_refunded=800)
    second["id"] = first["id"]
    full = fake_stripe.charge(pi_id)
    full["id"] = first["id"]
    for body in (fake_stripe.event("charge.refunded", first, previous={"amount_refunded": 0, "refunded": False}),
                 fake_stripe.event("charge.refunded", second, previous={"amount_refunded": 500}),
                 fake_stripe.event("charge.refunded", full, previous={"amount_refunded": 800, "refunded": False})):
        assert (await post_event(client, body)).status == 200
    assert [(e.kind, e.amount_minor, e.provider_ref) for e in commerce.events] == [
        ("refunded", 500, pi_id), ("refunded", 300, pi_id), ("refunded", 2599, pi_id)]


async def test_partial_refund_without_previous_attributes_uses_the_newest_refund(client, services, fake_stripe,
                                                                                 commerce):
    pi_id = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])["id"]
    charge = fake_stripe.charge(pi_id, amount_refunded=900)
    charge["refunds"] = {"object": "list", "data": [{"id": "re_2", "amount": 400}, {"id": "re_1", "amount": 500}]}
    assert (await post_event(client, fake_stripe.event("charge.refunded", charge))).status == 200
    assert commerce.events[0].amount_minor == 400


async def test_other_events_are_stored_processed_and_not_applied(client, services, fake_stripe, commerce):
    pi_id = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])["id"]
    body = fake_stripe.event("payment_intent.created", fake_stripe.intents[pi_id], event_id="evt_ign")
    resp = await post_event(client, body)
    assert resp.status == 200 and await resp.json() == {"received": True, "ignored": True}
    assert commerce.events == []
    row = await stored_event(services, "stripe", "evt_ign")
    assert row["processed_at"] is not None
    resp = await post_event(client, body)
    assert (await resp.json()).get("duplicate") is True


async def test_order_side_failure_is_answered_200_and_retried_by_its_job(client, services, fake_stripe, commerce):
    intent = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])
    body = fake_stripe.event("payment_intent.succeeded", intent, event_id="evt_retry")
    commerce.fail_with = RuntimeError("database hiccup")
    resp = await post_event(client, body)
    assert resp.status == 200 and "database hiccup" in resp.body["processing_error"]
    row = await stored_event(services, "stripe", "evt_retry")
    assert row["processed_at"] is None and "database hiccup" in row["error"]
    async with services.db.tx(SYSTEM) as conn:
        job = await conn.fetchrow("SELECT status::text, attempts FROM pgqueuer WHERE entrypoint = 'webhook.process'")
    assert (job["status"], job["attempts"]) == ("queued", 1)

    commerce.fail_with = None
    assert (await post_event(client, body)).body == {"received": True, "duplicate": True}  # Stripe's retry
    await retries_due(services)
    row = await processed(services, "stripe", "evt_retry")
    assert row["error"] is None and row["result"] == "recorded succeeded"
    assert len(commerce.events) == 2


async def test_order_side_rejection_is_final(client, services, fake_stripe, commerce):
    intent = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])
    body = fake_stripe.event("payment_intent.succeeded", intent, event_id="evt_unknown_payment")
    commerce.fail_with = domain_error("not_found", 404)
    resp = await post_event(client, body)
    assert resp.status == 200 and await resp.json() == {"received": True, "error": "not_found"}
    row = await stored_event(services, "stripe", "evt_unknown_payment")
    assert row["processed_at"] is not None and row["error"].startswith("not_found")
    assert (await (await post_event(client, body)).json()).get("duplicate") is True
    assert len(commerce.events) == 1


async def test_signed_body_that_is_not_json_is_rejected(client, services, commerce):
    resp = await post_event(client, b"not json at all")
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid"
    assert await count_events(services) == 0


async def test_missing_webhook_secret_answers_503_so_stripe_retries(tmp_path, dsn, aiohttp_client, fake_stripe):
    from live.app import create_app

    settings = make_settings(tmp_path, stripe_secret_key=fake_stripe.api_key, stripe_api_base=fake_stripe.url)
    client = await aiohttp_client(create_app(settings, dsn, run_migrations=False))
    body = orjson.dumps({"id": "evt_x", "type": "payment_intent.succeeded", "data": {"object": {}}})
    resp = await post_event(client, body)
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "unavailable"


async def test_the_route_answers_before_the_event_is_processed_by_its_job(client, services, fake_stripe, commerce):
    intent = fake_stripe.succeed((await started_intent(services, fake_stripe))["id"])
    body = fake_stripe.event("payment_intent.succeeded", intent, event_id="evt_later")
    release = asyncio.Event()
    held = RecordingCommerce()

    async def apply_when_released(event):
        await release.wait()
        return await held.apply_payment_event(event)

    commerce.apply_payment_event = apply_when_released
    resp = await client.post("/webhooks/stripe", data=body,
                             headers={"Content-Type": "application/json", "Stripe-Signature": sign(body, WHSEC)})
    reply = await resp.json()
    assert resp.status == 200 and reply["queued"] is True  # stored and answered; the order side has not run
    row = await stored_event(services, "stripe", "evt_later")
    assert row["processed_at"] is None and held.events == []
    release.set()
    row = await processed(services, "stripe", "evt_later")
    assert row["id"] == reply["event_id"] and row["result"] == "recorded succeeded"
    assert len(held.events) == 1
