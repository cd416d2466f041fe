"""The sandbox provider end to end over real HTTP: start -> confirm page (HTML with the amount and the orders)
-> Pay/Decline -> a signed webhook sent by the server to its own /webhooks/sandbox -> the order side."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from live.commerce.payments.base import PaymentRequest
from live.commerce.payments.sandbox import SandboxProvider, payment_id_for, sign, signing_key
from tests.helpers import SECRET
from tests.payments.fakes.payments import count_events, insert_payment, settled, stored_event


@pytest.fixture
async def payment(services):
    return await insert_payment(services, amount_minor=1234, currency="USD", title="Red scarf")


async def start(services, payment, return_url: str | None = None):
    req = PaymentRequest(payment_id=payment["payment_id"], amount_minor=payment["amount_minor"],
                         currency=payment["currency"], idempotency_key="k", return_url=return_url)
    return await services.payments.get("sandbox").start(req)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def test_sandbox_is_the_default_without_keys(services):
    assert services.payments.default_name() == "sandbox"
    assert services.payments.names() == ["sandbox"]


async def test_start_points_at_our_confirm_page(services, payment):
    started = await start(services, payment)
    assert started.provider_ref.startswith("sbx_")
    assert payment_id_for(started.provider_ref) == payment["payment_id"]
    assert started.authorization_url == f"{services.settings.base_url()}/pay/sandbox/{started.provider_ref}"
    assert started.client_secret is None


async def test_confirm_page_shows_amount_orders_and_buttons(client, services, payment):
    started = await start(services, payment)
    resp = await client.get(path_of(started.authorization_url))
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert "12.34 USD" in page
    assert payment["order_number"] in page and "Red scarf × 1" in page
    assert 'value="succeeded"' in page and ">Pay<" in page and ">Decline<" in page
    assert f'action="/pay/sandbox/{started.provider_ref}"' in page
    assert "<script" not in page and "http" not in page.split("<main>")[1]  # self-contained

    resp = await client.get(path_of(started.authorization_url), headers={"Accept": "application/json"})
    summary = await resp.json()
    assert (summary["amount_minor"], summary["currency"], summary["status"]) == (1234, "USD", "requires_action")
    assert [o["number"] for o in summary["orders"]] == [payment["order_number"]]


async def test_pay_sends_a_signed_webhook_to_ourselves_and_reaches_the_order_side(client, services, payment,
                                                                                  commerce):
    started = await start(services, payment)
    resp = await client.post(f"/pay/sandbox/{started.provider_ref}", json={"outcome": "succeeded"})
    assert resp.status == 200
    out = await resp.json()
    assert out["outcome"] == "succeeded" and out["webhook"]["status"] == 200
    assert await settled(services, out["webhook"]["body"]) == {"received": True, "result": "recorded succeeded"}
    [event] = commerce.events
    assert (event.provider, event.kind, event.event_type) == ("sandbox", "succeeded", "payment.succeeded")
    assert (event.provider_ref, event.payment_id) == (started.provider_ref, payment["payment_id"])
    assert (event.amount_minor, event.currency) == (1234, "USD")
    assert event.event_key == out["event_id"]
    row = await stored_event(services, "sandbox", out["event_id"])
    assert row["processed_at"] is not None and row["payload"]["data"]["reference"] == started.provider_ref

    again = await client.post(f"/pay/sandbox/{started.provider_ref}", json={"outcome": "succeeded"})
    assert (await again.json())["webhook"]["body"] == {"received": True, "duplicate": True}
    assert len(commerce.events) == 1

    verified = await services.payments.get("sandbox").verify(started.provider_ref)
    assert (verified.kind, verified.amount_minor) == ("succeeded", 1234)


async def test_decline_is_a_failed_payment(client, services, payment, commerce):
    started = await start(services, payment)
    resp = await client.post(f"/pay/sandbox/{started.provider_ref}", json={"outcome": "failed"})
    assert resp.status == 200
    [event] = await commerce.wait()
    assert (event.kind, event.event_type) == ("failed", "payment.failed")


async def test_form_pay_redirects_to_the_signed_return_url(client, services, payment, commerce):
    started = await start(services, payment, return_url="https://shop.example/done?x=1")
    page = await (await client.get(path_of(started.authorization_url))).text()
    sig = parse_qs(urlsplit(started.authorization_url).query)["sig"][0]
    assert f'name="sig" value="{sig}"' in page  # the form carries the signed return_url on
    resp = await client.post(f"/pay/sandbox/{started.provider_ref}", allow_redirects=False, data={
        "outcome": "succeeded", "return_url": "https://shop.example/done?x=1", "sig": sig})
    assert resp.status == 303
    location = urlsplit(resp.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "shop.example", "/done")
    assert parse_qs(location.query) == {"x": ["1"], "payment": ["succeeded"], "reference": [started.provider_ref]}
    assert len(await commerce.wait()) == 1


async def test_form_with_a_forged_return_url_does_not_redirect(client, services, payment, commerce):
    started = await start(services, payment, return_url="https://shop.example/done")
    sig = parse_qs(urlsplit(started.authorization_url).query)["sig"][0]
    page = await (await client.get(f"/pay/sandbox/{started.provider_ref}?return_url=https://evil.example/&sig={sig}")
                  ).text()
    assert "evil.example" not in page
    resp = await client.post(f"/pay/sandbox/{started.provider_ref}", allow_redirects=False, data={
        "outcome": "failed", "return_url": "https://evil.example/", "sig": sig})
    assert resp.status == 200 and "Payment declined." in await resp.text()
    assert (await commerce.wait())[0].kind == "failed"


async def test_closed_payment_cannot_be_confirmed_again(client, services, commerce):
    paid = await insert_payment(services, status="succeeded")
    reference = SandboxProvider.reference_for(paid["payment_id"])
    page = await (await client.get(f"/pay/sandbox/{reference}")).text()
    assert "This payment is paid." in page and "<form" not in page
    resp = await client.post(f"/pay/sandbox/{reference}", json={"outcome": "failed"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "conflict"
    assert commerce.events == [] and await count_events(services) == 0


@pytest.mark.parametrize("reference", ["sbx_" + "0" * 32, "sbx_nothex", "pi_123"])
async def test_unknown_reference_is_404(client, reference):
    assert (await client.get(f"/pay/sandbox/{reference}")).status == 404
    assert (await client.post(f"/pay/sandbox/{reference}", json={"outcome": "succeeded"})).status == 404


async def test_payment_of_another_provider_has_no_sandbox_page(client, services):
    other = await insert_payment(services, provider="stripe")
    assert (await client.get(f"/pay/sandbox/{SandboxProvider.reference_for(other['payment_id'])}")).status == 404


async def test_bad_outcome_is_a_validation_error(client, services, payment, commerce):
    started = await start(services, payment)
    resp = await client.post(f"/pay/sandbox/{started.provider_ref}", json={"outcome": "maybe"})
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "validation_failed"
    resp = await client.post(f"/pay/sandbox/{started.provider_ref}", data={"outcome": "maybe"})
    assert resp.status == 422
    assert commerce.events == []


def sandbox_body(reference: str, outcome: str = "succeeded") -> bytes:
    return orjson.dumps({"id": f"evt_sbx_direct_{outcome}", "type": f"payment.{outcome}", "created": int(time.time()),
                         "data": {"reference": reference, "amount_minor": 1, "currency": "USD"}})


@pytest.mark.parametrize("forgery", ["other_jwt_secret", "no_signature", "stale", "tampered"])
async def test_forged_sandbox_webhook_is_rejected(client, services, commerce, forgery):
    body = sandbox_body("sbx_" + "1" * 32)
    key = signing_key(SECRET)
    header = {
        "other_jwt_secret": sign(signing_key("another-secret-" + "y" * 40), body),
        "no_signature": "",
        "stale": sign(key, body, int(time.time()) - 3600),
        "tampered": sign(key, body),
    }[forgery]
    if forgery == "tampered":
        body = body.replace(b'"amount_minor":1', b'"amount_minor":2')
    resp = await client.post("/webhooks/sandbox", data=body, headers={"x-sandbox-signature": header})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_signature"
    assert commerce.events == [] and await count_events(services) == 0


async def test_correctly_signed_sandbox_webhook_is_accepted(client, services, commerce):
    body = sandbox_body("sbx_" + "1" * 32)
    resp = await client.post("/webhooks/sandbox", data=body, headers={"x-sandbox-signature": sign(signing_key(SECRET),
                                                                                                   body)})
    assert resp.status == 200 and (await commerce.wait())[0].event_key == "evt_sbx_direct_succeeded"
