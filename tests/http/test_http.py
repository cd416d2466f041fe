"""HTTP plumbing over a real socket: JSON errors, X-Request-ID, request ids in log lines, health probes, CORS.

The tests of this module only read, so they share one migrated database (cloned from the template like
conftest's `dsn`); the readiness-failure test swaps in a closed pool, it does not stop the database."""
from __future__ import annotations

import io
import logging
import re

import orjson
import pytest
import structlog

from db import Database
from live.app import create_app
from live.logging import get_logger, request_id_var, setup_logging
from tests.helpers import make_settings

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def dsn(module_dsn):
    """Overrides conftest's per-test database (see the module docstring)."""
    return module_dsn


async def error_of(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"code", "message"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


# ---------------------------------------------------------------- JSON errors


async def test_unknown_route_is_json_404(client):
    for path in ("/api/v1/no-such-thing", "/definitely/not/here"):
        err = await error_of(await client.get(path), 404)
        assert err["code"] == "not_found"


async def test_wrong_method_is_json_405_with_allow(client):
    resp = await client.delete("/api/v1/healthz")
    err = await error_of(resp, 405)
    assert err["code"] == "method_not_allowed"
    assert "GET" in resp.headers["Allow"]


async def test_unauthorized_is_json_401(client):
    err = await error_of(await client.get("/api/v1/me"), 401)
    assert err["code"] == "unauthorized"


async def test_validation_error_is_json_422_with_details(client):
    err = await error_of(await client.post("/api/v1/auth/email/start", json={"email": "nope"}), 422)
    assert err["code"] == "validation_failed"
    assert any(d["field"] == "email" for d in err["details"])


async def test_oversized_body_is_json_413(client):
    resp = await client.post("/api/v1/auth/email/start", data=b"x" * (2 * 1024 * 1024),
                             headers={"Content-Type": "application/json"})
    err = await error_of(resp, 413)
    assert err["code"] == "payload_too_large"


# ---------------------------------------------------------------- X-Request-ID


async def test_given_request_id_is_echoed(client):
    resp = await client.get("/api/v1/healthz", headers={"X-Request-ID": "req-abc.123:x_y"})
    assert resp.status == 200
    assert resp.headers["X-Request-ID"] == "req-abc.123:x_y"


async def test_absent_request_id_is_generated_and_unique(client):
    first = (await client.get("/api/v1/healthz")).headers["X-Request-ID"]
    second = (await client.get("/api/v1/healthz")).headers["X-Request-ID"]
    assert HEX_ID.match(first) and HEX_ID.match(second)
    assert first != second


async def test_invalid_request_id_is_replaced(client):
    for bad in ("has spaces in it", "x" * 200, "<script>"):
        rid = (await client.get("/api/v1/healthz", headers={"X-Request-ID": bad})).headers["X-Request-ID"]
        assert HEX_ID.match(rid), rid


async def test_error_responses_carry_the_request_id(client):
    resp = await client.get("/api/v1/nowhere", headers={"X-Request-ID": "trace-404"})
    assert resp.status == 404
    assert resp.headers["X-Request-ID"] == "trace-404"
    resp = await client.get("/api/v1/me", headers={"X-Request-ID": "trace-401"})
    assert resp.status == 401
    assert resp.headers["X-Request-ID"] == "trace-401"


@pytest.fixture
def json_log():
    """The app's real logging setup (structlog -> stdlib -> JSON), writing into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    setup_logging("info")
    # same pipeline, but no logger keeps it cached after this test (other tests may configure structlog)
    structlog.configure(cache_logger_on_first_use=False)
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)

    def lines() -> list[dict]:
        return [orjson.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield lines
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.configure(**saved_structlog)


@pytest.fixture
async def logging_client(settings, dsn, aiohttp_client):
    """The real app plus two probe routes that log inside the request."""
    app = create_app(settings, dsn, run_migrations=False)
    log = get_logger("tests.probe")

    async def probe(request):
        log.info("probe_event", marker=request.query.get("m"))
        from aiohttp import web
        return web.json_response({"ok": True})

    async def boom(request):
        raise RuntimeError("kaboom")

    app.router.add_get("/test/probe", probe)
    app.router.add_get("/test/boom", boom)
    return await aiohttp_client(app)


async def test_log_lines_inside_a_request_carry_its_request_id(logging_client, json_log):
    resp = await logging_client.get("/test/probe?m=given", headers={"X-Request-ID": "log-trace-1"})
    assert resp.status == 200
    resp = await logging_client.get("/test/probe?m=generated")
    generated = resp.headers["X-Request-ID"]
    get_logger("tests.probe").info("probe_event", marker="outside")

    events = {e["marker"]: e for e in json_log() if e.get("event") == "probe_event"}
    assert events["given"]["request_id"] == "log-trace-1"
    assert events["generated"]["request_id"] == generated
    assert "request_id" not in events["outside"]
    assert events["given"]["level"] == "info" and "timestamp" in events["given"]
    assert request_id_var.get() is None  # nothing leaks out of the request


async def test_unhandled_error_is_json_500_and_logged_with_request_id(logging_client, json_log):
    resp = await logging_client.get("/test/boom", headers={"X-Request-ID": "boom-1"})
    err = await error_of(resp, 500)
    assert err == {"code": "internal", "message": "internal server error"}  # no internals leak
    assert resp.headers["X-Request-ID"] == "boom-1"
    logged = [e for e in json_log() if e.get("event") == "unhandled_error"]
    assert len(logged) == 1
    assert logged[0]["request_id"] == "boom-1"
    assert logged[0]["path"] == "/test/boom"
    assert "kaboom" in logged[0]["exception"]


# ---------------------------------------------------------------- health probes


async def test_liveness_probes(client):
    for path in ("/api/v1/healthz", "/healthz"):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert (await resp.json())["status"] == "ok"


async def test_readiness_probes(client):
    for path in ("/api/v1/readyz", "/readyz"):
        resp = await client.get(path)
        assert resp.status == 200, path
        body = await resp.json()
        assert body["checks"]["database"] == "ok"
        assert body["status"] == "ok"


async def test_readiness_fails_when_the_database_is_unreachable(client, services, dsn):
    broken = await Database.connect(dsn, min_size=1, max_size=1)
    await broken.close()  # a real pool whose every acquire now fails
    working, services.db = services.db, broken
    try:
        resp = await client.get("/api/v1/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"].startswith("error")
        # liveness does not depend on the database
        assert (await client.get("/api/v1/healthz")).status == 200
    finally:
        services.db = working
    assert (await client.get("/api/v1/readyz")).status == 200


async def test_landing_page(client):
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"


# ---------------------------------------------------------------- CORS


@pytest.fixture
async def cors_client(tmp_path, dsn, aiohttp_client):
    settings = make_settings(tmp_path, cors_origins="https://shop.example")
    return await aiohttp_client(create_app(settings, dsn, run_migrations=False))


async def test_cors_preflight_from_allowed_origin(cors_client):
    resp = await cors_client.options("/api/v1/me", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "PATCH" in resp.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
    assert "Origin" in resp.headers["Vary"]


async def test_cors_preflight_from_disallowed_origin(cors_client):
    resp = await cors_client.options("/api/v1/me", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "PATCH"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Methods" not in resp.headers


async def test_cors_simple_request(cors_client):
    resp = await cors_client.get("/api/v1/healthz", headers={"Origin": "https://shop.example"})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "X-Request-ID" in resp.headers["Access-Control-Expose-Headers"]
    resp = await cors_client.get("/api/v1/healthz", headers={"Origin": "https://evil.example"})
    assert resp.status == 200
    assert "Access-Control-Allow-Origin" not in resp.headers
    # errors get the CORS headers too, so the browser can read them
    resp = await cors_client.get("/api/v1/me", headers={"Origin": "https://shop.example"})
    assert resp.status == 401
    assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"


async def test_no_cors_headers_without_configured_origins(client):
    resp = await client.options("/api/v1/me", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in resp.headers
