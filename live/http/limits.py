"""REST rate limits: one table (route template -> named limit) and one middleware.

The limit's numbers are in live/ratelimit.py (`DEFAULT_LIMITS`, overridden by RATE_LIMITS). The key is the
signed-in user (from a valid token of ours: signature and expiry only, no database) or else the client address
(`client_address`). Every POST/PUT/PATCH/DELETE under /api/ that the table does not name gets the `write` limit.
A limit may have a longer one checked after it (ALSO: `upload` an hour, then `upload_daily`). A refused request
gets 429 `{"error": {"code": "rate_limited", ...}}` and `Retry-After` (seconds), and touches nothing. With Redis
(REDIS_URL, `serve --workers`) the counts are shared by every worker; one limiter call a request (two for ALSO).
"""
from __future__ import annotations

import ipaddress

from aiohttp import web

from live.appkeys import SERVICES
from live.auth.tokens import bearer
from live.errors import DomainError
from live.http.api import API, Api
from live.http.middleware import error_response
from live.ratelimit import RateLimited

ROUTES: dict[tuple[str, str], str] = {
    ("POST", f"{API}/auth/email/start"): "auth_email_start",
    ("POST", f"{API}/auth/email/verify"): "auth_email_verify",
    ("POST", f"{API}/auth/wallet/nonce"): "auth_wallet_nonce",
    ("POST", f"{API}/auth/wallet/verify"): "auth_wallet_verify",
    ("POST", f"{API}/checkout"): "checkout",
    ("POST", f"{API}/me/cart/items"): "cart",
    ("PATCH", f"{API}/me/cart/items/{{variant_id}}"): "cart",
    ("DELETE", f"{API}/me/cart/items/{{variant_id}}"): "cart",
    ("GET", f"{API}/products"): "search",
    ("POST", f"{API}/sellers/{{id}}/follow"): "follow",
    ("DELETE", f"{API}/sellers/{{id}}/follow"): "follow",
    ("POST", f"{API}/livestreams/{{id}}/cover"): "cover",
    ("POST", f"{API}/seller/uploads"): "upload",
    ("POST", f"{API}/livestreams/{{id}}/whep"): "whep",
}
ALSO: dict[str, str] = {"upload": "upload_daily"}  # checked once the first passes
PER_ADDRESS = {"auth_email_start", "auth_email_verify", "auth_wallet_nonce", "auth_wallet_verify"}
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def client_address(request: web.Request) -> str:
    """The client's address: the rightmost entry of TRUSTED_PROXY_HEADER when that is set (the address your
    proxy saw), else the peer of the connection. IPv6 addresses count by their /64 network."""
    header = request.app[SERVICES].settings.trusted_proxy_header
    raw = None
    if header:
        value = request.headers.get(header)
        if value:
            raw = value.rsplit(",", 1)[-1].strip()
    raw = raw or request.remote or "unknown"
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return raw[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _limit(method: str, template: str) -> str | None:
    name = ROUTES.get((method, template))
    if name is None and method in WRITES and template.startswith("/api/"):
        name = "write"
    return name


def limit_for(request: web.Request) -> str | None:
    route = request.match_info.route
    return _limit(request.method, route.resource.canonical if route.resource is not None else request.path)


def declare(api: Api) -> None:
    """Every limited operation lists 429 among its responses in the OpenAPI document."""
    for op in api.operations:
        if _limit(op.method, op.path) is not None and 429 not in op.errors:
            op.errors = (*op.errors, 429)


def _caller_key(request: web.Request, name: str) -> str:
    if name not in PER_ADDRESS:
        try:
            token = bearer(request.headers.get("Authorization"))
            if token:
                return "user:" + request.app[SERVICES].tokens.decode(token)[0].user_id
        except DomainError:
            pass  # a malformed header or not a valid token of ours: the route refuses it, or it is an external one
    return "ip:" + client_address(request)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler):
    try:
        name = limit_for(request)
        if name is not None:
            key = _caller_key(request, name)
            await request.app[SERVICES].limits.check(name, key)
            if name in ALSO:
                await request.app[SERVICES].limits.check(ALSO[name], key)
        return await handler(request)
    except RateLimited as exc:
        response = error_response(exc)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
