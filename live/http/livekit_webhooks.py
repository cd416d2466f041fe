"""`POST /webhooks/livekit`: LiveKit's room, participant and track events (live/media/livekit_webhooks.py).

Raw body (at most MAX_BODY, else 413), no bearer auth, not under /api/v1: LiveKit's signed Authorization token is
the credential (forged or missing: 401 `unauthorized`; a verified body that is no event: 400 `invalid_payload`).
200 `{received: true, duplicate, stream_id}`. Every outcome is counted in `live_webhooks_total` (provider
`livekit`)."""
from __future__ import annotations

from aiohttp import web

from live.appkeys import HTTP_METRICS, SERVICES
from live.errors import DomainError
from live.http.api import json_response, read_body
from live.media.livekit_webhooks import MAX_BODY

PATH = "/webhooks/livekit"


async def receive(request: web.Request) -> web.Response:
    metrics = request.app[HTTP_METRICS]
    try:
        body = await read_body(request, MAX_BODY)
        result = await request.app[SERVICES].livekit_webhooks.receive(body, request.headers.get("Authorization"))
    except DomainError as exc:
        metrics.webhook("livekit", exc.code)
        raise
    metrics.webhook("livekit", "duplicate" if result["duplicate"] else "processed")
    return json_response(result)


def register(app: web.Application) -> None:
    """Before the payment webhooks' /webhooks/{provider}, which would otherwise take this path."""
    app.router.add_post(PATH, receive)
