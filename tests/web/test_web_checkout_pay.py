"""How the checkout page pays with a real provider: `GET /api/v1/payments/config` (the providers, the default, and
Stripe.js's publishable key, only when Stripe is configured)."""
from __future__ import annotations

import pytest

from live.config import ConfigError
from tests.commerce.harness import make_client
from tests.helpers import make_settings

PK = "pk_test_51Abc"


async def test_payments_config_names_the_default_and_no_key_for_the_sandbox(tmp_path, dsn, aiohttp_client):
    client = await make_client(tmp_path, dsn, aiohttp_client, stripe_publishable_key=PK)
    resp = await client.get("/api/v1/payments/config")
    assert resp.status == 200
    assert await resp.json() == {"providers": ["sandbox"], "default": "sandbox", "stripe_publishable_key": None}


async def test_payments_config_gives_the_publishable_key_with_stripe(tmp_path, dsn, aiohttp_client):
    client = await make_client(tmp_path, dsn, aiohttp_client, stripe_secret_key="sk_test_x", stripe_publishable_key=PK)
    body = await (await client.get("/api/v1/payments/config")).json()
    assert body["default"] == "stripe" and "stripe" in body["providers"] and body["stripe_publishable_key"] == PK


def test_a_publishable_key_that_is_not_one_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="STRIPE_PUBLISHABLE_KEY must be a Stripe publishable key"):
        make_settings(tmp_path, stripe_publishable_key="sk_test_secret")
