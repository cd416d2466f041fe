"""Inbound payment webhooks: `POST /webhooks/{stripe|paystack|sandbox}`.

Raw body, no bearer auth (the provider's signature is the authentication), not under /api/v1. The provider
verifies and normalises the event (forged -> 400 `invalid_signature`, nothing stored); the inbox stores it once
and hands it to the order side once (live/commerce/payments/inbox.py). Unknown or disabled provider -> 404,
body over 1 MB -> 413. See docs/payments.md for the contract.
"""
from __future__ import annotations

from aiohttp import web

from live.commerce.payments import KNOWN
from live.errors import DomainError
from live.http.api import json_response

MAX_WEBHOOK_BODY = 1024 * 1024
PATH = "/webhooks/{provider}"


async def receive_webhook(request: web.Request) -> web.Response:
    services = request.app["services"]
    name = request.match_info["provider"]
    if name not in KNOWN:
        raise DomainError("not_found", f"no webhook for provider {name!r}")
    try:
        provider = services.payments.get(name)
    except DomainError:
        raise DomainError("not_found", f"payment provider {name} is not enabled on this server") from None
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BODY:
        raise DomainError("payload_too_large", f"webhook body larger than {MAX_WEBHOOK_BODY} bytes")
    body = await request.read()  # a chunked body over the app's client_max_size (1 MB) is cut off here: 413
    event = provider.parse_webhook(body, request.headers)
    receipt = await services.payments.inbox.receive(provider, event, services.commerce.apply_payment_event)
    return json_response(receipt.body, receipt.status)


def register(app: web.Application) -> None:
    app.router.add_post(PATH, receive_webhook)
