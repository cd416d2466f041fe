"""The webhook route's generic part and the provider registry: unknown or disabled providers, body limits,
which providers a configuration offers, and the route's place outside /api/v1."""
from __future__ import annotations

import uuid

import orjson
import pytest

from live.appkeys import SERVICES
from live.auth.principal import SYSTEM
from live.commerce.payments import PaymentProviders
from live.errors import DomainError
from tests.helpers import make_settings
from tests.payments.fakes.payments import count_events


async def test_unknown_provider_is_404(client, services):
    resp = await client.post("/webhooks/paypal", data=b"{}")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    assert await count_events(services) == 0


@pytest.mark.parametrize("provider", ["stripe", "paystack"])
async def test_provider_without_keys_is_404(client, services, provider):
    resp = await client.post(f"/webhooks/{provider}", data=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
    assert resp.status == 404
    assert "not enabled" in (await resp.json())["error"]["message"]


async def test_body_over_one_megabyte_is_413(client, services):
    big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    resp = await client.post("/webhooks/sandbox", data=big, headers={"x-sandbox-signature": "t=1,v1=00"})
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"

    async def chunks():  # no Content-Length: the body is cut off while reading
        for _ in range(17):
            yield b" " * 65536

    resp = await client.post("/webhooks/sandbox", data=chunks(), headers={"x-sandbox-signature": "t=1,v1=00"})
    assert resp.status == 413
    assert await count_events(services) == 0


async def test_webhooks_take_no_bearer_token_and_only_post(client):
    resp = await client.post("/webhooks/sandbox", data=b"{}", headers={"Authorization": "Bearer nonsense"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_signature"
    assert (await client.get("/webhooks/sandbox")).status == 405


def test_registry_without_keys_offers_the_sandbox(tmp_path):
    providers = PaymentProviders(make_settings(tmp_path))
    assert providers.names() == ["sandbox"] and providers.default_name() == "sandbox"
    with pytest.raises(DomainError) as err:
        providers.get("stripe")
    assert err.value.code == "provider_unavailable" and err.value.status == 422
    assert "STRIPE_SECRET_KEY" in err.value.message
    with pytest.raises(DomainError) as err:
        providers.get("bitcoin")
    assert err.value.code == "provider_unavailable" and "sandbox" in err.value.message


def test_registry_prefers_stripe_then_paystack(tmp_path):
    both = PaymentProviders(make_settings(tmp_path, stripe_secret_key="sk_test_1", paystack_secret_key="sk_test_2"))
    assert both.names() == ["stripe", "paystack", "sandbox"] and both.default_name() == "stripe"
    assert both.get("paystack").name == "paystack"
    only_paystack = PaymentProviders(make_settings(tmp_path, paystack_secret_key="sk_test_2"))
    assert only_paystack.default_name() == "paystack"


def test_production_never_offers_the_sandbox(tmp_path):
    settings = make_settings(tmp_path, live_env="production", livekit_api_key="prodkey",
                             livekit_api_secret="p" * 40, stripe_secret_key="sk_live_1")
    providers = PaymentProviders(settings)
    assert providers.names() == ["stripe"]
    with pytest.raises(DomainError) as err:
        providers.get("sandbox")
    assert err.value.code == "provider_unavailable" and "production" in err.value.message


# ---- correctly signed, wrongly typed (issue 11 item 19): 400 invalid_payload, stored as rejected, never applied


def sandbox_post(client, body: bytes):
    from live.commerce.payments.sandbox import sign, signing_key
    from tests.helpers import SECRET

    return client.post("/webhooks/sandbox", data=body, headers={"x-sandbox-signature": sign(signing_key(SECRET), body)})


def sandbox_event(payment: dict, **data) -> dict:
    from live.commerce.payments.sandbox import SandboxProvider

    base = {"reference": SandboxProvider.reference_for(payment["payment_id"]), "payment_id": payment["payment_id"],
            "status": "succeeded", "amount_minor": payment["amount_minor"], "currency": payment["currency"]}
    return {"id": f"evt_sbx_typed_{uuid.uuid4().hex[:8]}", "type": "payment.succeeded", "created": 1,
            "data": {**base, **data}}


WRONG = {
    "data is a list": lambda e: {**e, "data": [1, 2]},
    "data is a string": lambda e: {**e, "data": "paid"},
    "amount is text": lambda e: {**e, "data": {**e["data"], "amount_minor": "lots"}},
    "amount is a bool": lambda e: {**e, "data": {**e["data"], "amount_minor": True}},
    "amount beyond bigint": lambda e: {**e, "data": {**e["data"], "amount_minor": 2**63}},
    "amount is a float": lambda e: {**e, "data": {**e["data"], "amount_minor": 12.5}},
    "payment_id is a number": lambda e: {**e, "data": {**e["data"], "payment_id": 123}},
    "payment_id is not a uuid": lambda e: {**e, "data": {**e["data"], "payment_id": "pay-1"}},
    "currency is a list": lambda e: {**e, "data": {**e["data"], "currency": ["USD"]}},
    "reference is an object": lambda e: {**e, "data": {**e["data"], "reference": {"a": 1}}},
    "id is an object": lambda e: {**e, "id": {"a": 1}},
    "type is a number": lambda e: {**e, "type": 7},
    "a NUL PostgreSQL cannot store": lambda e: {**e, "data": {**e["data"], "note": "a\x00b"}},
    "not an object": lambda e: [e],
}


@pytest.mark.parametrize("case", list(WRONG))
async def test_signed_webhook_with_wrong_types_is_400_and_stored_as_rejected(client, services, case):
    from tests.payments.fakes.payments import insert_payment, settled

    payment = await insert_payment(services)
    body = orjson.dumps(WRONG[case](sandbox_event(payment)))
    for _ in range(2):  # the provider's retry gets the same answer and stores nothing more
        resp = await sandbox_post(client, body)
        err = (await resp.json())["error"]
        assert resp.status == 400 and err["code"] == "invalid_payload", (case, err)
    async with services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT event_key, processed_at, error FROM webhook_events")
        status = await conn.fetchval("SELECT status FROM payments WHERE id = $1::uuid", payment["payment_id"])
    assert len(rows) == 1 and rows[0]["processed_at"] is not None
    assert rows[0]["error"].startswith("invalid_payload")
    assert status == "requires_action"  # nothing was applied
    # the same payment still takes a well-formed event afterwards
    good = await sandbox_post(client, orjson.dumps(sandbox_event(payment)))
    assert good.status == 200, await good.text()
    assert (await settled(services, await good.json()))["result"] == "applied"  # once its job ran
    async with services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT status FROM payments WHERE id = $1::uuid",
                                   payment["payment_id"]) == "succeeded"


async def test_stripe_and_paystack_wrong_types_are_400(tmp_path, dsn, aiohttp_client):
    from live.app import create_app
    from tests.payments.fakes.paystack_api import sign as paystack_sign
    from tests.payments.fakes.stripe_api import sign as stripe_sign

    whsec = "whsec_test_" + "t" * 24
    settings = make_settings(tmp_path, stripe_secret_key="sk_test_x", stripe_webhook_secret=whsec,
                             paystack_secret_key="sk_test_p")
    client = await aiohttp_client(create_app(settings, dsn, run_migrations=False))
    stripe_bodies = [
        {"id": "evt_t1", "object": "event", "type": "payment_intent.succeeded", "data": [1]},
        {"id": "evt_t2", "object": "event", "type": "payment_intent.succeeded",
         "data": {"object": {"object": "payment_intent", "id": "pi_1", "amount": "many", "currency": "usd"}}},
        {"id": "evt_t3", "object": "event", "type": "charge.refunded",
         "data": {"object": {"object": "charge", "payment_intent": "pi_1", "amount_refunded": "x", "refunded": False},
                  "previous_attributes": {"amount_refunded": 5}}},
        {"id": "evt_t4", "object": "event", "type": "payment_intent.succeeded",
         "data": {"object": {"object": "payment_intent", "id": "pi_1", "amount": 100, "currency": "usd",
                             "metadata": {"payment_id": ["x"]}}}},
    ]
    for payload in stripe_bodies:
        body = orjson.dumps(payload)
        resp = await client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": stripe_sign(body, whsec)})
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_payload", payload
    paystack_bodies = [[{"event": "charge.success"}], {"event": "charge.success", "data": ["x"]},
                       {"event": "charge.success", "data": {"reference": "r", "metadata": {"payment_id": 5}}}]
    for payload in paystack_bodies:
        body = orjson.dumps(payload)
        resp = await client.post("/webhooks/paystack", data=body,
                                 headers={"x-paystack-signature": paystack_sign(body, "sk_test_p")})
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_payload", payload
    services = client.app[SERVICES]
    async with services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT provider, error FROM webhook_events ORDER BY id")
    assert [r["provider"] for r in rows] == ["stripe"] * 4 + ["paystack"] * 3
    assert all(r["error"].startswith("invalid_payload") for r in rows)
