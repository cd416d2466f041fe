"""Inbound carrier tracking webhooks: `POST /webhooks/shippo` and `POST /webhooks/sandbox-carrier`.

Raw body, no bearer auth, not under /api/v1 (like the payment webhooks, live/http/webhooks.py). The carrier verifies
and reads the body (Shippo: `?token=` = SHIPPO_WEBHOOK_TOKEN, and `Shippo-Auth-Signature` when
SHIPPO_WEBHOOK_HMAC_SECRET is set; the sandbox carrier: `X-Sandbox-Carrier-Signature`); forged -> 401 (Shippo) or
400 `invalid_signature` (sandbox), unreadable -> 400 `invalid_payload`, nothing stored either way. Verified events
are stored once and answered at once; each shipment with a new event gets a `shipping.apply_tracking` job that
applies them (live/commerce/shipping/tracking.py): 200 `{received: true, events, stored, duplicates, unknown}`, also
for duplicates and tracking numbers we do not know. Shippo's route is 404 when SHIPPO_API_KEY is not set; a body over
MAX_BODY is 413. Every outcome is counted in `live_webhooks_total` (provider `shippo` / `sandbox-carrier`)."""
from __future__ import annotations

from aiohttp import web

from live.appkeys import HTTP_METRICS, SERVICES
from live.errors import DomainError
from live.http.api import json_response, read_body

MAX_BODY = 256 * 1024  # a Shippo track_updated with its whole tracking history stays far below this
ROUTES = {"/webhooks/shippo": ("shippo", "shippo"), "/webhooks/sandbox-carrier": ("sandbox", "sandbox-carrier")}


async def receive(request: web.Request) -> web.Response:
    provider, label = ROUTES[request.path]
    services = request.app[SERVICES]
    try:
        body = await read_body(request, MAX_BODY)
        result = await services.commerce.shipping.tracking.receive(provider, body, request.headers, request.query)
    except DomainError as exc:
        request.app[HTTP_METRICS].webhook(label, exc.code)
        raise
    request.app[HTTP_METRICS].webhook(label, "unknown_number" if result["unknown"] else "processed")
    return json_response(result)


def register(app: web.Application) -> None:
    """Before the payment webhooks' /webhooks/{provider}, which would otherwise take these paths."""
    for path in ROUTES:
        app.router.add_post(path, receive)
