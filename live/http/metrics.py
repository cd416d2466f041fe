"""GET /metrics: the Prometheus text exposition of this worker (not under /api/v1, not in the OpenAPI
document: it is for scrapers and load tests, not API clients).

Who may read it: with METRICS_TOKEN set, a request carrying `Authorization: Bearer <METRICS_TOKEN>` (anything else
401). Without it, outside production, clients on this machine only (loopback: `make run`, the load tests); any
other client, and everyone in production without a token, gets 404 (the endpoint does not advertise itself).
"""
from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from live.appkeys import GATEWAY, HTTP_METRICS, METRICS_REGISTRY, SERVICES
from live.errors import DomainError
from live.logging import get_logger
from live.metrics import EventCounters, HttpMetrics, make_registry

log = get_logger("live.metrics")


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:  # a unix socket ("") or no peer
        return False


def check_access(request: web.Request) -> None:
    settings = request.app[SERVICES].settings
    if settings.metrics_token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                  settings.metrics_token.encode()):
            raise DomainError("unauthorized", "the metrics token is required")
    elif settings.live_env == "production" or not _loopback(request.remote):
        raise DomainError("not_found", "no such route")


def register(app: web.Application) -> None:
    """Add the route, and count socket events once the app has started (when every handler is registered)."""
    counters = EventCounters()
    app[METRICS_REGISTRY] = make_registry(app, counters)
    app[HTTP_METRICS] = HttpMetrics(app[METRICS_REGISTRY])

    async def instrument(app: web.Application) -> None:
        counters.instrument(app[GATEWAY].sio)

    async def metrics(request: web.Request) -> web.Response:
        check_access(request)
        try:
            await request.app[SERVICES].jobs_desk.refresh()  # the job gauges: one bounded query per scrape
        except Exception as exc:  # the database is away: the other families are still served
            log.warning("metrics_jobs_unavailable", error=repr(exc)[:200])
        body = generate_latest(request.app[METRICS_REGISTRY])
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.on_startup.append(instrument)
    app.router.add_get("/metrics", metrics)
