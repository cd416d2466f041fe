"""Request id, JSON errors and CORS for every HTTP response."""
from __future__ import annotations

import asyncio
import re
import uuid

from aiohttp import web

from live.errors import DomainError
from live.http.api import json_response
from live.logging import get_logger, request_id_var

log = get_logger("live.http")
_RID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CODE_FOR_STATUS = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
                    415: "unsupported_media_type", 422: "validation_failed", 429: "rate_limited"}


def error_response(status: int, code: str, message: str, details: object = None) -> web.Response:
    err: dict = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return json_response({"error": err}, status)


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
        return error_response(exc.status, exc.code, exc.message, exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODE_FOR_STATUS.get(exc.status, "error")
        resp = error_response(exc.status, code, exc.reason if exc.status != 404 else "no such route")
        for k in ("Allow", "Retry-After"):
            if k in exc.headers:
                resp.headers[k] = exc.headers[k]
        return resp
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled_error", method=request.method, path=request.path)
        return error_response(500, "internal", "internal server error")


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
