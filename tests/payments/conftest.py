"""Fixtures of the payments tests: the fake Stripe and Paystack servers, a recording order side, and `shop`: the
commerce API whose Stripe and Paystack are the fakes (the refund tests')."""
from __future__ import annotations

import pytest

from tests.commerce.harness import Shop, make_client
from tests.payments.fakes.payments import RecordingCommerce
from tests.payments.fakes.paystack_api import FakePaystack
from tests.payments.refunding import WHSEC


@pytest.fixture
async def fake_paystack():
    server = await FakePaystack().start()
    yield server
    await server.close()


@pytest.fixture
def commerce(services, monkeypatch):
    recorder = RecordingCommerce()
    monkeypatch.setattr(services, "commerce", recorder, raising=False)
    return recorder


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake_stripe, fake_paystack) -> Shop:
    return Shop(await make_client(
        tmp_path, dsn, aiohttp_client, stripe_secret_key=fake_stripe.api_key, stripe_webhook_secret=WHSEC,
        stripe_api_base=fake_stripe.url, paystack_secret_key=fake_paystack.secret_key,
        paystack_api_base=fake_paystack.url))
