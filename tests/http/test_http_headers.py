"""What every HTTP response carries and who may read /metrics (issue 11 items 16, 17, 20 and the HTTP metrics):
security headers on pages, JSON, errors and Socket.IO; no-store on signed-in data; /metrics behind a token (or
loopback outside production); requests counted by route template; a request aiohttp's parser refuses is one
short log line."""
from __future__ import annotations

import asyncio
import io
import logging
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from live.app import create_app
from tests.commerce.harness import API, Shop
from tests.helpers import make_settings


@pytest.fixture
def dsn(module_dsn):
    return module_dsn


async def serve(tmp_path, dsn, aiohttp_client, **settings):
    return Shop(await aiohttp_client(create_app(make_settings(tmp_path, **settings), dsn, run_migrations=False)))


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client) -> Shop:
    return await serve(tmp_path, dsn, aiohttp_client)


# ---------------------------------------------------------------- item 16: security headers

COMMON = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def assert_common(resp) -> None:
    for name, value in COMMON.items():
        assert resp.headers.get(name) == value, (resp.url, name, resp.headers.get(name))
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP


async def test_every_kind_of_response_carries_the_security_headers(shop):
    seller = await shop.seller()
    responses = [
        await shop.client.get("/"),  # the landing page
        await shop.client.get(f"{API}/healthz"),  # JSON
        await shop.client.get(f"{API}/products?limit=0"),  # a 400
        await shop.client.get("/nowhere"),  # aiohttp's 404
        await shop.client.delete(f"{API}/healthz"),  # aiohttp's 405
        await shop.client.get(f"{API}/me", headers=seller.headers),
        await shop.client.get("/socket.io/?EIO=4&transport=polling"),  # Socket.IO's own handler
        await shop.client.get("/metrics"),
    ]
    for resp in responses:
        assert_common(resp)
    page, json_ok = responses[0], responses[1]
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert json_ok.headers["Content-Security-Policy"].startswith("default-src 'none'")


async def test_the_pages_work_under_their_policy(shop):
    """The pages' scripts are files of this origin, never inline: the policy forbids inline script (and allows
    inline styles)."""
    for path in ("/", "/signin", "/live/demo"):
        resp = await shop.client.get(path)
        html = await resp.text()
        csp = resp.headers["Content-Security-Policy"]
        scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
        assert len(scripts) == html.count("<script"), path
        assert scripts and all(s.strip() == "" for s in scripts), path  # no inline code
        assert all(re.search(r'src="/static/', tag) for tag in re.findall(r"<script\b[^>]*>", html)), path
        assert ("style-src 'self' 'unsafe-inline'" in csp
                and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0])


async def test_signed_in_json_is_not_stored(shop):
    buyer = await shop.user()
    assert (await shop.client.get(f"{API}/me", headers=buyer.headers)).headers["Cache-Control"] == "no-store"
    # anything a write answered (a token, an order) is not stored either; public reads are left cacheable
    resp = await shop.client.post(f"{API}/auth/wallet/nonce", json={"address": "x"})
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Cache-Control" not in (await shop.client.get(f"{API}/products")).headers


async def test_hsts_only_when_served_over_tls(tmp_path, dsn, aiohttp_client):
    shop = await serve(tmp_path, dsn, aiohttp_client, public_url="https://shop.example")
    resp = await shop.client.get(f"{API}/healthz")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")


# ---------------------------------------------------------------- item 17: /metrics


async def test_metrics_need_the_token_when_one_is_set(tmp_path, dsn, aiohttp_client):
    shop = await serve(tmp_path, dsn, aiohttp_client, metrics_token="m" * 32)
    assert (await shop.client.get("/metrics")).status == 401
    assert (await shop.client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 32})).status == 401
    buyer = await shop.user()  # a user's token is not the metrics token
    assert (await shop.client.get("/metrics", headers=buyer.headers)).status == 401
    resp = await shop.client.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32})
    assert resp.status == 200 and "live_socket_connections" in await resp.text()


async def test_metrics_without_a_token(tmp_path, dsn, aiohttp_client, monkeypatch):
    shop = await serve(tmp_path, dsn, aiohttp_client)
    assert (await shop.client.get("/metrics")).status == 200  # development and tests: loopback may read
    # a client from another machine may not (the peer address is what counts, not any header)
    monkeypatch.setattr("live.http.metrics._loopback", lambda remote: False)
    resp = await shop.client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_metrics_in_production_without_a_token_are_404(tmp_path, dsn, aiohttp_client):
    shop = await serve(tmp_path, dsn, aiohttp_client, live_env="production", livekit_api_key="prodkey",
                       livekit_api_secret="p" * 40)
    assert (await shop.client.get("/metrics")).status == 404


def test_a_short_metrics_token_is_refused(tmp_path):
    from live.config import ConfigError
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        make_settings(tmp_path, metrics_token="short")


# ---------------------------------------------------------------- HTTP metrics


async def scrape(shop) -> dict:
    text = await (await shop.client.get("/metrics")).text()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = {k: v for k, v in s.labels.items() if k != "worker"}
            out[(s.name, tuple(sorted(labels.items())))] = s.value
    return out


async def test_requests_are_counted_by_route_template(shop):
    seller = await shop.seller()
    product = await shop.product(seller)
    for _ in range(3):
        await shop.client.get(f"{API}/products/{product['id']}")
    await shop.client.get(f"{API}/products/not-a-uuid")
    await shop.client.get("/no/such/path/123")
    await shop.client.request("PROPFIND", f"{API}/healthz")
    m = await scrape(shop)
    route = f"{API}/products/{{id}}"
    key = ("live_http_requests_total", (("method", "GET"), ("route", route), ("status", "200")))
    assert m[key] == 3
    assert m[("live_http_requests_total", (("method", "GET"), ("route", route), ("status", "404")))] == 1
    assert m[("live_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert m[("live_http_requests_total", (("method", "other"), ("route", "unmatched"), ("status", "405")))] == 1
    assert m[("live_http_request_duration_seconds_count", (("method", "GET"), ("route", route)))] == 4
    # raw paths never become label values
    assert not any(product["id"] in str(labels) or "/no/such" in str(labels) for _, labels in m)


# ---------------------------------------------------------------- item 20: parser errors in the log


@pytest.fixture
def server_log():
    """What aiohttp's server logger writes, as the app's handlers would see it (after the logger's filters)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(status)s %(error)s|%(exc_text)s"))
    logger = logging.getLogger("aiohttp.server")
    logger.addHandler(handler)
    yield buffer
    logger.removeHandler(handler)


async def raw_request(shop, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(shop.client.host, shop.client.port)
    writer.write(head)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return data


async def test_an_over_long_header_is_one_short_log_line(shop, server_log):
    long_header = b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    reply = await raw_request(shop, long_header)
    assert reply.split(b" ")[1] in (b"400", b"431"), reply[:200]
    broken = b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"
    reply = await raw_request(shop, b"POST" + broken[3:])
    assert reply.split(b" ")[1] == b"400", reply[:200]
    logged = server_log.getvalue()
    lines = [line for line in logged.splitlines() if line]
    assert lines and all(line.startswith("WARNING bad_http_request 4") for line in lines), logged
    assert "Traceback" not in logged and "a" * 100 not in logged


async def test_checkout_and_webhook_outcomes_are_counted(shop):
    seller, buyer = await shop.seller(), await shop.user()
    product = await shop.product(seller, stock=5)
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": product["variants"][0]["id"], "qty": 1})
    await shop.checkout(buyer, "key-1")
    await shop.checkout(buyer, "key-1")  # the replay
    await shop.checkout(buyer, "key-2", expect=409)  # the cart is empty now
    resp = await shop.client.post(f"{API}/checkout", json={"address_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12},
                                  headers=buyer.headers)  # no Idempotency-Key
    assert resp.status == 400
    await shop.client.post("/webhooks/sandbox", data=b"{}", headers={"x-sandbox-signature": "t=1,v1=00"})
    await shop.client.post("/webhooks/paypal", data=b"{}")
    m = await scrape(shop)
    checkouts = {dict(labels)["result"]: v for (name, labels), v in m.items() if name == "live_checkouts_total"}
    assert checkouts["created"] == 1 and checkouts["replayed"] == 1 and checkouts["invalid"] == 1
    assert sum(checkouts.values()) == 4, checkouts
    webhooks = {(dict(labels)["provider"], dict(labels)["result"]): v
                for (name, labels), v in m.items() if name == "live_webhooks_total"}
    assert webhooks == {("sandbox", "invalid_signature"): 1, ("unknown", "not_found"): 1}
