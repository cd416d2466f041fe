"""Inbound payment webhooks: `POST /webhooks/{stripe|paystack|sandbox}`.

Raw body, no bearer auth (the provider's signature is the authentication), not under /api/v1. The provider
verifies and normalises the event (forged -> 400 `invalid_signature`, nothing stored); the inbox stores it once
and enqueues its `webhook.process` job in the same transaction, and the route answers 200 at once; the job hands
it to the order side once (live/commerce/payments/inbox.py). A verified event whose fields have the
wrong type or range (base.check_event) -> 400 `invalid_payload`, stored once as rejected (WebhookInbox.reject)
and never applied (a retry gets the same 400). Unknown or disabled provider -> 404, body over 1 MB -> 413. Every
outcome is counted in `live_webhooks_total`. See docs/payments.md for the contract.
"""
from __future__ import annotations

from aiohttp import web

from live.appkeys import HTTP_METRICS, SERVICES
from live.commerce.payments import KNOWN
from live.commerce.payments.base import InvalidPayload, check_event
from live.errors import DomainError
from live.http.api import json_response, read_body

MAX_WEBHOOK_BODY = 1024 * 1024
PATH = "/webhooks/{provider}"


async def receive_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    name = request.match_info["provider"]
    label = name if name in KNOWN else "unknown"
    try:
        if name not in KNOWN:
            raise DomainError("not_found", f"no webhook for provider {name!r}")
        try:
            provider = services.payments.get(name)
        except DomainError:
            raise DomainError("not_found", f"payment provider {name} is not enabled on this server") from None
        body = await read_body(request, MAX_WEBHOOK_BODY)
        try:
            event = check_event(provider.parse_webhook(body, request.headers))
        except InvalidPayload as exc:
            await services.payments.inbox.reject(name, body, exc)
            raise
        receipt = await services.payments.inbox.receive(event)
    except DomainError as exc:
        request.app[HTTP_METRICS].webhook(label, exc.code)
        raise
    request.app[HTTP_METRICS].webhook(label, _result(receipt))
    return json_response(receipt.body, receipt.status)


def _result(receipt) -> str:
    body = receipt.body
    if receipt.status != 200:
        return "failed"
    for key in ("duplicate", "ignored", "queued"):
        if body.get(key):
            return key
    return body.get("error") or "processed"


def register(app: web.Application) -> None:
    app.router.add_post(PATH, receive_webhook)
