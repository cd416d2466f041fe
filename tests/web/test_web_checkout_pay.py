"""How the checkout page pays with a real provider: `GET /api/v1/payments/config` (the providers, the default, and
Stripe.js's publishable key, only when Stripe is configured), and /checkout alone allowing the providers' scripts and
frames in its Content-Security-Policy (Stripe.js must come from js.stripe.com), every other page keeping
`script-src 'self'`."""
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


async def test_only_checkout_may_load_the_providers_scripts(client):
    checkout = (await client.get("/checkout")).headers["Content-Security-Policy"]
    script_src = checkout.split("script-src")[1].split(";")[0]
    assert "'self' https://js.stripe.com https://js.paystack.co" in script_src and "unsafe" not in script_src
    assert "frame-src https://js.stripe.com" in checkout and "frame-ancestors 'none'" in checkout
    for path in ("/orders/00000000-0000-0000-0000-000000000000", "/signin", "/live/demo"):
        csp = (await client.get(path)).headers["Content-Security-Policy"]
        assert "stripe" not in csp and "script-src 'self';" in csp, path
