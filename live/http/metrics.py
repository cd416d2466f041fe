"""GET /metrics: the Prometheus text exposition of this worker (not under /api/v1, not in the OpenAPI
document: it is for scrapers and load tests, not API clients)."""
from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from live.metrics import EventCounters, make_registry


def register(app: web.Application) -> None:
    """Add the route, and count socket events once the app has started (when every handler is registered)."""
    counters = EventCounters()
    app["metrics_registry"] = make_registry(app, counters)

    async def instrument(app: web.Application) -> None:
        counters.instrument(app["gateway"].sio)

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(request.app["metrics_registry"])
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.on_startup.append(instrument)
    app.router.add_get("/metrics", metrics)
