"""Inbound payment webhooks: `POST /webhooks/{stripe|paystack|sandbox}`.

Raw body, no bearer auth (the provider's signature is the authentication), not under /api/v1. The provider
verifies and normalises the event (forged -> 400 `invalid_signature`, nothing stored); the inbox stores it once
and hands it to the order side once (live/commerce/payments/inbox.py). A verified event whose fields have the
wrong type or range (base.check_event) -> 400 `invalid_payload`, stored once as rejected and never applied (a
retry gets the same 400). Unknown or disabled provider -> 404, body over 1 MB -> 413. Every outcome is counted in
`live_webhooks_total`. See docs/payments.md for the contract.
"""
from __future__ import annotations

import hashlib

import orjson
from aiohttp import web

from db import webhooks as webhooks_db
from live.auth.principal import SYSTEM
from live.commerce.payments import KNOWN
from live.commerce.payments.base import InvalidPayload, check_event
from live.errors import DomainError
from live.http.api import json_response, read_body
from live.logging import get_logger

MAX_WEBHOOK_BODY = 1024 * 1024
MAX_STORED_REJECT = 64 * 1024  # of a rejected body that is not a storable JSON object, this much text is kept
PATH = "/webhooks/{provider}"
log = get_logger("live.payments")


async def receive_webhook(request: web.Request) -> web.Response:
    services = request.app["services"]
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
            await _reject(services, name, body, exc)
            raise
        receipt = await services.payments.inbox.receive(provider, event, services.commerce.apply_payment_event)
    except DomainError as exc:
        request.app["http_metrics"].webhook(label, exc.code)
        raise
    request.app["http_metrics"].webhook(label, _result(receipt))
    return json_response(receipt.body, receipt.status)


def _result(receipt) -> str:
    body = receipt.body
    if receipt.status != 200:
        return "failed"
    for key in ("duplicate", "ignored"):
        if body.get(key):
            return key
    return body.get("error") or "processed"


async def _reject(services, provider: str, body: bytes, exc: InvalidPayload) -> None:
    """Store the refused event once as rejected. Its key is the event's own id when it could be read, else a
    digest of the body (so the provider's retries of it are one row)."""
    key = exc.event_key or "invalid:" + hashlib.sha256(body).hexdigest()
    payload = exc.payload
    if not isinstance(payload, dict) or b"\\u0000" in orjson.dumps(payload):
        payload = {"rejected_body": body[:MAX_STORED_REJECT].decode("utf-8", "replace").replace("\x00", "\ufffd")}
    async with services.db.tx(SYSTEM) as conn:
        await webhooks_db.reject(conn, provider, key, exc.event_type, payload,
                                 f"{webhooks_db.REJECTED}: {exc.message}"[:2000])
    log.warning("webhook_invalid_payload", provider=provider, event_key=key, error=exc.message)


def register(app: web.Application) -> None:
    app.router.add_post(PATH, receive_webhook)
