"""The keys of the objects an aiohttp application holds (aiohttp `web.AppKey`s), declared once: `app[SERVICES]`,
never a string key. This module sits below every module that reads them (see the layers in pyproject.toml), so
it names their types in comments only."""
from __future__ import annotations

from typing import Any

from aiohttp import web

ROUTES: web.AppKey[Any] = web.AppKey("api")  # live.http.api.Api: the route registry (set by live.app)
OPENAPI: web.AppKey[Any] = web.AppKey("openapi")  # dict: the OpenAPI document, built once (live.http.system)
GATEWAY: web.AppKey[Any] = web.AppKey("gateway")  # live.rooms.gateway.Gateway (set by live.app)
SERVICES: web.AppKey[Any] = web.AppKey("services")  # live.container.Services, once the app has started
METRICS_REGISTRY: web.AppKey[Any] = web.AppKey("metrics_registry")  # the Prometheus registry (live.http.metrics)
HTTP_METRICS: web.AppKey[Any] = web.AppKey("http_metrics")  # live.metrics.HttpMetrics (live.http.metrics)
