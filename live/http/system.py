"""Liveness, readiness and the OpenAPI document (the home page `/` is live/web/discover.py)."""
from __future__ import annotations

import asyncio

from aiohttp import web

from live import __version__
from live.appkeys import OPENAPI, ROUTES
from live.http.api import API, Api, Call, json_response, openapi_document, wrap

api = Api()


@api.route("GET", f"{API}/healthz", summary="Liveness: the process answers", tag="system")
async def healthz(call: Call):
    return {"status": "ok", "version": __version__}


@api.route("GET", f"{API}/readyz", summary="Readiness: database (and Redis when configured) reachable",
           tag="system", errors=(503,))
async def readyz(call: Call):
    services = call.services
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(services.db.ping(), 2.0)
        checks["database"] = "ok"
    except (asyncio.TimeoutError, OSError, Exception) as exc:  # any failure means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    for name, probe in services.readiness_probes().items():
        checks[name] = await probe()
    ready = checks["database"] == "ok"
    degraded = any(v != "ok" for v in checks.values())
    status = "ok" if not degraded else ("degraded" if ready else "unavailable")
    return json_response({"status": status, "checks": checks}, 200 if ready else 503)


@api.route("GET", f"{API}/openapi.json", summary="This API's OpenAPI 3 document", tag="system")
async def openapi(call: Call):
    return call.request.app[OPENAPI]


def register_root(app: web.Application) -> None:
    app[OPENAPI] = openapi_document(app[ROUTES], title="live", version=__version__)  # built once, before start
    # Load balancers expect the probes at the root too.
    for op in api.operations:
        if op.handler in (healthz, readyz):
            app.router.add_get(op.path.removeprefix(API), wrap(op))
