"""A small route registry: each REST operation is declared once, with its body/query models and auth rule.

The registry wires the aiohttp routes *and* produces the OpenAPI 3 document from the same declarations, so the
document cannot drift from the routes. Handlers get a `Call` (principal, parsed body and query, services) and
return plain data (serialized with orjson) or an aiohttp response.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from live.appkeys import SERVICES
from live.auth import policy
from live.auth.principal import ANONYMOUS, Principal
from live.errors import Code, DomainError

API = "/api/v1"
MAX_BIGINT = 2**63 - 1  # the largest id or number a bigint column holds
NUL_MESSAGE = "must not contain a NUL byte (\\u0000)"


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if hasattr(obj, "items") and hasattr(obj, "keys"):  # asyncpg.Record
        return dict(obj.items())
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot serialize {type(obj).__name__}")


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json", headers=headers)


def _field(loc: tuple) -> str | None:
    return ".".join(str(p) for p in loc) or None


def validation_details(exc: ValidationError) -> list[dict]:
    return [{"field": _field(e["loc"]),
             "message": "must not be null" if e.get("input", ...) is None else e["msg"]} for e in exc.errors()]


def patchable(**kw: Any) -> Any:
    """A field of a partial update (PATCH) whose column is NOT NULL: leaving it out keeps the value, an explicit
    null is refused (422 naming the field). Declare it with its plain type (`title: str = patchable(...)`), not
    `str | None`; nullable columns keep `X | None = None`, where null clears the value."""
    return Field(default=None, json_schema_extra=_no_default, **kw)


def _no_default(schema: dict) -> None:
    schema.pop("default", None)  # the document says "may be left out", not "null is a value"


def nul_fields(value: Any, loc: tuple = ()) -> list[str]:
    """Paths of the strings (keys included) holding a NUL byte, which PostgreSQL text cannot store."""
    if isinstance(value, str):
        return [_field(loc) or "body"] if "\x00" in value else []
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += [_field(loc + (k,)) or "body"] if "\x00" in k else nul_fields(v, loc + (k,))
        return out
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in nul_fields(v, loc + (i,))]
    return []


_FIRST_TS = datetime(1, 1, 2, tzinfo=timezone.utc)  # a day inside Python's and PostgreSQL's ranges, whatever the
_LAST_TS = datetime(9998, 12, 31, tzinfo=timezone.utc)  # offset (0001-01-01T00:00+14:00 is year 0 in UTC)


def out_of_range(value: Any, loc: tuple = ()) -> list[str]:
    """Paths of the validated values no column can hold: integers beyond bigint, timestamps outside years 1-9998
    (once in UTC). Checked on every body and query, so a model field without bounds cannot reach SQL with one."""
    if isinstance(value, BaseModel):
        return [f for name, info in type(value).model_fields.items()
                for f in out_of_range(getattr(value, name), loc + (info.alias or name,))]
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [] if -MAX_BIGINT <= value <= MAX_BIGINT else [_field(loc) or "value"]
    if isinstance(value, datetime):
        try:
            utc = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        except OverflowError:
            return [_field(loc) or "value"]
        return [] if _FIRST_TS <= utc <= _LAST_TS else [_field(loc) or "value"]
    if isinstance(value, (list, tuple)):
        return [f for i, v in enumerate(value) for f in out_of_range(v, loc + (i,))]
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in out_of_range(v, loc + (k,))]
    return []


def _in_range(parsed: Any, code: str, message: str) -> Any:
    bad = out_of_range(parsed)
    if bad:
        raise DomainError(code, message, details=[{"field": f, "message": "out of range"} for f in bad])
    return parsed


def parse_body(model: type[BaseModel], raw: bytes) -> Any:
    """`model` from a JSON body: not JSON -> `invalid`, JSON that does not fit or a string with a NUL byte ->
    `validation_failed` naming the fields."""
    if b"\\u0000" in raw:  # the only way JSON carries a NUL (a raw one is not JSON): find where, by name
        try:
            bad = nul_fields(orjson.loads(raw))
        except orjson.JSONDecodeError:
            bad = []
        if bad:
            raise DomainError("validation_failed", "invalid request body",
                              details=[{"field": f, "message": NUL_MESSAGE} for f in bad])
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise DomainError("invalid", "body is not valid JSON") from None
        raise DomainError("validation_failed", "invalid request body", details=validation_details(exc)) from None
    return _in_range(parsed, "validation_failed", "invalid request body")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused (413) past `limit` bytes as read, whatever the framing (Content-Length or
    chunked): at most `limit` + one chunk is ever held; and 408 when it has not all arrived within
    HTTP_BODY_TIMEOUT_SECONDS (a client trickling its body holds a handler no longer than that; aiohttp then
    closes the connection after at most its 10 s lingering time)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(request.app[SERVICES].settings.http_body_timeout_seconds):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise DomainError("request_timeout", "the request body did not arrive in time") from None
    return b"".join(chunks)


def _too_large(limit: int) -> DomainError:
    return DomainError("payload_too_large", f"body larger than {limit} bytes")


async def authenticate(request: web.Request) -> Principal:
    """The caller of the request's Authorization header (a bad token is 401 "invalid token": live/auth/tokens.py)."""
    return await request.app[SERVICES].authenticate(request.headers.get("Authorization"))


@dataclass
class Call:
    request: web.Request
    principal: Principal
    body: Any = None
    query: Any = None

    @property
    def services(self):
        return self.request.app[SERVICES]

    def param(self, name: str) -> str:
        return self.request.match_info[name]


Handler = Callable[[Call], Awaitable[Any]]


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: str = "none"  # none | optional | user
    roles: tuple[str, ...] | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    raw_body: bool = False
    content_type: str = "application/json"
    extra: dict = field(default_factory=dict)


class Api:
    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(self, method: str, path: str, *, summary: str, tag: str, **kw: Any) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.operations.append(Operation(method.upper(), path, fn, summary, tag, **kw))
            return fn
        return deco

    def include(self, other: "Api") -> None:
        self.operations.extend(other.operations)

    def register(self, app: web.Application) -> None:
        for op in self.operations:
            app.router.add_route(op.method, op.path, wrap(op))


def wrap(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = ANONYMOUS
        if op.auth != "none":
            principal = await authenticate(request)
            if op.auth == "user":
                policy.signed_in(principal)
            if op.roles:
                policy.has_role(principal, op.roles)
        call = Call(request, principal)
        if op.query is not None:
            try:
                query = op.query.model_validate(dict(request.query))
            except ValidationError as exc:
                raise DomainError("invalid", "invalid query parameters", details=validation_details(exc)) from None
            call.query = _in_range(query, "invalid", "invalid query parameters")
        if op.body is not None:
            raw = await read_body(request, request.app[SERVICES].settings.http_max_body_bytes)
            if not raw:
                raise DomainError("invalid", "a JSON body is required")
            call.body = parse_body(op.body, raw)
        result = await op.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        return json_response(result, op.status)
    handle.__name__ = op.handler.__name__
    return handle


# ---- OpenAPI ----

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad request",
                401: "Missing or invalid token", 403: "Not allowed", 404: "Not found", 408: "Request body too slow",
                409: "Conflict", 413: "Payload too large", 422: "Validation failed", 429: "Rate limited",
                503: "Unavailable"}


def _schema(model: type[BaseModel], components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def openapi_document(api: Api, *, title: str, version: str, server_url: str = "/") -> dict:
    components: dict[str, Any] = {
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "enum": [c.value for c in Code],
                         "description": "; ".join(f"{c.value}: {c.status}" for c in Code)},
                "message": {"type": "string"}, "details": {}}}},
        }
    }
    paths: dict[str, dict] = {}
    for op in api.operations:
        path = _PARAM.sub(r"{\1}", op.path)
        item: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                                "operationId": op.handler.__name__}
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in _PARAM.findall(op.path)]
        if op.query is not None:
            for name, f in op.query.model_fields.items():
                q = {"name": f.alias or name, "in": "query", "required": f.is_required(),
                     "schema": {"type": "string"}}
                if f.description:
                    q["description"] = f.description
                params.append(q)
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": True,
                                   "content": {"application/json": {"schema": _schema(op.body, components)}}}
        ok: dict[str, Any] = {"description": _STATUS_TEXT.get(op.status, "OK")}
        if op.status != 204:
            schema = _schema(op.response, components) if op.response else {"type": "object"}
            ok["content"] = {op.content_type: {"schema": schema}}
        responses: dict[str, Any] = {str(op.status): ok}
        codes = set(op.errors) | {400}  # 400: a NUL byte in any path or query parameter (input_middleware)
        if op.body is not None or op.query is not None:
            codes |= {400, 422}
        if op.body is not None:
            codes |= {408, 413}  # a body slower than HTTP_BODY_TIMEOUT_SECONDS, or over HTTP_MAX_BODY_BYTES
        if op.auth != "none":
            codes.add(401)  # "optional" too: a token that is sent must be valid
        if op.roles:
            codes.add(403)
        for code in sorted(codes):
            responses[str(code)] = {"description": _STATUS_TEXT.get(code, "Error"), "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        item["responses"] = responses
        if op.auth != "none":
            item["security"] = [{"bearerAuth": []}] if op.auth == "user" else [{"bearerAuth": []}, {}]
        item.update(op.extra)
        paths.setdefault(path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "REST API of live. Errors are JSON {\"error\": {code, message}}."},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
