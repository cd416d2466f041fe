"""Every HTTP request's plumbing: request id, JSON errors, CORS, NUL bytes in the path or query (400), the
security headers of every response, and the request metrics (by route template)."""
from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.log import server_logger

from live.appkeys import HTTP_METRICS
from live.errors import Code, DomainError
from live.http.api import NUL_MESSAGE, json_response
from live.logging import get_logger, request_id_var

log = get_logger("live.http")
_RID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# the code of an error aiohttp raised (no route, a method the route lacks, ...), by its status
_CODE_FOR_STATUS = {c.status: c for c in (Code.INVALID, Code.UNAUTHORIZED, Code.FORBIDDEN, Code.NOT_FOUND,
                                          Code.METHOD_NOT_ALLOWED, Code.CONFLICT, Code.PAYLOAD_TOO_LARGE,
                                          Code.UNSUPPORTED_MEDIA_TYPE, Code.VALIDATION_FAILED, Code.RATE_LIMITED)}


def error_response(error: DomainError) -> web.Response:
    """`{"error": {code, message, details?}}` with the code's status (live/errors.py)."""
    return json_response({"error": error.body()}, error.status)


@web.middleware
async def request_id_middleware(request: web.Request, handler):
    rid = request.headers.get("X-Request-ID", "")
    if not _RID.match(rid):
        rid = uuid.uuid4().hex
    token = request_id_var.set(rid)
    try:
        response = await handler(request)
        response.headers["X-Request-ID"] = rid
        return response
    except web.HTTPException as exc:
        exc.headers["X-Request-ID"] = rid
        raise
    finally:
        request_id_var.reset(token)


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except DomainError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODE_FOR_STATUS.get(exc.status, Code.INVALID if exc.status < 500 else Code.INTERNAL)
        resp = error_response(DomainError(code, exc.reason if exc.status != 404 else "no such route"))
        for k in ("Allow", "Retry-After"):
            if k in exc.headers:
                resp.headers[k] = exc.headers[k]
        return resp
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled_error", method=request.method, path=request.path)
        return error_response(DomainError("internal"))


def cors_middleware(origins: tuple[str, ...]):
    allow_all = "*" in origins

    @web.middleware
    async def cors(request: web.Request, handler):
        origin = request.headers.get("Origin")
        allowed = origin is not None and (allow_all or origin in origins)
        if request.method == "OPTIONS" and allowed and "Access-Control-Request-Method" in request.headers:
            resp = web.Response(status=204)
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            resp.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "Authorization, Content-Type, Idempotency-Key, X-Request-ID")
            resp.headers["Access-Control-Max-Age"] = "600"
        else:
            resp = await handler(request)
        if allowed:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Expose-Headers"] = "X-Request-ID"
            resp.headers["Vary"] = "Origin"
        return resp

    return cors


@web.middleware
async def input_middleware(request: web.Request, handler):
    """A NUL byte in any path or query parameter, on any route: 400 naming it (PostgreSQL text cannot hold one, so
    it would otherwise fail deep inside a query)."""
    bad = [name for name, value in request.match_info.items() if "\x00" in value]
    bad += [name if "\x00" not in name else "query" for name, value in request.query.items()
            if "\x00" in name or "\x00" in value]
    if bad:
        raise DomainError("invalid", f"{', '.join(sorted(set(bad)))}: {NUL_MESSAGE}",
                          details=[{"field": name, "message": NUL_MESSAGE} for name in sorted(set(bad))])
    return await handler(request)


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(request: web.Request) -> str:
    """The route template (`/api/v1/products/{id}`), never the raw path: the label's values are bounded by the
    routes the app has. Requests that match no route share one value."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler):
    """Requests by method, route template and status, and their latency (live/metrics.HttpMetrics)."""
    metrics = request.app.get(HTTP_METRICS)
    if metrics is None:
        return await handler(request)
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in METHODS else "other"  # any token is a method to aiohttp
        metrics.observe(method, route_label(request), status, time.perf_counter() - start)


# Pages (the landing page, the sandbox's confirm page): their own inline <style>, no inline script; scripts,
# sockets (Socket.IO, LiveKit) and media only from this origin or over TLS; no framing, plugins or <base>.
HTML_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
            "connect-src 'self' ws: wss: https:; media-src 'self' blob: https:; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'")
# Everything else (JSON, Prometheus text, ...) is data, never a document: nothing may load or frame it.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"  # one year, sent only over TLS
STATIC_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def security_headers(public_https: bool):
    """An `on_response_prepare` hook: it sees every response the app sends (handlers', errors', aiohttp's own
    404/405, Socket.IO's), just before the headers go out."""
    async def prepare(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        for name, value in STATIC_HEADERS.items():
            headers.setdefault(name, value)
        headers.setdefault("Content-Security-Policy",
                           HTML_CSP if response.content_type == "text/html" else DATA_CSP)
        if request.secure or public_https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        # a signed-in caller's data, or anything a POST/PATCH/... answered (tokens, orders), is never stored by
        # a browser or a shared cache
        if "Cache-Control" not in headers and ("Authorization" in request.headers
                                               or request.method not in ("GET", "HEAD")):
            headers["Cache-Control"] = "no-store"
    return prepare


class ParseErrorLog(logging.Filter):
    """aiohttp logs a request its parser refused (a header line over 8190 bytes, a bad request line, broken
    chunking) with a full traceback at ERROR, for what is the client's mistake. This filter on aiohttp's server
    logger turns that record into one short warning, `bad_http_request` with the status and the parser's error
    class; other records pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args, record.exc_info, record.exc_text = "bad_http_request", (), None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.status = exc.code or 400
            record.error = type(exc).__name__
        return True


_PARSE_ERROR_LOG = ParseErrorLog()


def quiet_parse_errors() -> None:
    """Install the filter (idempotent: one filter however many apps a process builds)."""
    server_logger.addFilter(_PARSE_ERROR_LOG)
