"""The webhook route's generic part and the provider registry: unknown or disabled providers, body limits,
which providers a configuration offers, and the route's place outside /api/v1."""
from __future__ import annotations

import pytest

from live.commerce.payments import PaymentProviders
from live.errors import DomainError
from tests.conftest import make_settings
from tests.fakes.payments import count_events


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
