"""Hostile REST input answers a clear 4xx and changes nothing (issue 11 items 4, 5, 7, 18, 20): NUL bytes in any
body, query or path parameter, explicit nulls in partial updates, forged cursors and out-of-range numbers, chunked
bodies over the limit, and 401 messages that do not echo the JWT library."""
from __future__ import annotations

import asyncio
import uuid

import jwt
import pytest

from live.auth.principal import SYSTEM
from tests.commerce.harness import API, Shop, make_client
from tests.helpers import SECRET


@pytest.fixture
def dsn(module_dsn):
    """Every test makes its own users and products (unique names): one database for the module."""
    return module_dsn


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client) -> Shop:
    return Shop(await make_client(tmp_path, dsn, aiohttp_client))


async def error_of(resp, status: int) -> dict:
    body = await resp.json()
    assert resp.status == status, body
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


def fields(err: dict) -> set:
    return {d["field"] for d in err.get("details") or []}


# ---------------------------------------------------------------- item 4: NUL bytes


async def test_nul_in_a_json_body_is_422_naming_the_field(shop):
    resp = await shop.client.post(f"{API}/auth/email/start", json={"email": "a\x00b@example.com"})
    err = await error_of(resp, 422)
    assert err["code"] == "validation_failed" and fields(err) == {"email"}
    assert "NUL" in err["details"][0]["message"]
    async with shop.services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT count(*) FROM email_codes WHERE email LIKE 'a%b@example.com'") == 0


async def test_nul_deep_in_a_body_names_the_nested_field(shop):
    seller = await shop.seller()
    body = {"title": "Lamp", "description": "bright\x00", "variants": [
        {"sku": f"S-{uuid.uuid4().hex[:8]}", "price_minor": 100, "currency": "USD", "color": "r\x00ed"}]}
    resp = await shop.client.post(f"{API}/products", json=body, headers=seller.headers)
    err = await error_of(resp, 422)
    assert fields(err) == {"description", "variants.0.color"}
    assert (await shop.call("GET", "/me/products", seller))["items"] == []


async def test_nul_in_a_query_parameter_is_400_naming_it(shop):
    for path in ("/products?q=a%00b", "/livestreams?status=live&seller_id=%00"):
        err = await error_of(await shop.client.get(API + path), 400)
        assert err["code"] == "invalid"
        assert fields(err) in ({"q"}, {"seller_id"}), err


async def test_nul_in_a_path_parameter_is_400_naming_it(shop):
    seller = await shop.seller()
    for method, path in (("GET", "/livestreams/de%00mo"), ("GET", "/livestreams/x%00/chat"),
                         ("PATCH", "/livestreams/a%00b")):
        resp = await shop.client.request(method, API + path, json={"title": "t"}, headers=seller.headers)
        err = await error_of(resp, 400)
        assert err["code"] == "invalid" and fields(err) == {"id"}, (path, err)


async def test_nul_outside_the_api_is_400_too(shop):
    resp = await shop.client.get("/pay/sandbox/sbx_%00?return_url=%00")
    assert resp.status == 400


# ---------------------------------------------------------------- item 5: explicit nulls in PATCH


async def test_null_for_a_not_null_column_is_422_naming_it(shop):
    seller = await shop.seller()
    product = await shop.product(seller, title="Original")
    variant = product["variants"][0]
    stream = await shop.call("POST", "/livestreams", seller, json={"title": "S", "slug": f"s-{uuid.uuid4().hex[:8]}"},
                             expect=201)
    coupon = await shop.call("POST", "/coupons", seller, json={"code": f"C{uuid.uuid4().hex[:6]}", "kind": "percent",
                                                               "value": 5}, expect=201)
    cases = [(f"/products/{product['id']}", ["title", "image_urls", "status"]),
             (f"/variants/{variant['id']}", ["sku", "price_minor"]),
             (f"/livestreams/{stream['id']}", ["title", "blocked_words", "slow_mode_seconds"]),
             (f"/coupons/{coupon['id']}", ["active", "min_subtotal_minor"])]
    for path, names in cases:
        for name in names:
            resp = await shop.client.patch(API + path, json={name: None}, headers=seller.headers)
            err = await error_of(resp, 422)
            assert err["code"] == "validation_failed" and fields(err) == {name}, (path, err)
            assert "null" in err["details"][0]["message"]
    # nullable columns still take null, and nothing above changed the rows
    after = await shop.call("PATCH", f"/products/{product['id']}", seller, json={"description": None})
    assert after["title"] == "Original" and after["description"] is None and after["status"] == "active"
    changed = await shop.call("PATCH", f"/variants/{variant['id']}", seller, json={"color": None})
    assert changed["variants"][0]["sku"] == variant["sku"] and changed["variants"][0]["price_minor"] == 1000
    assert (await shop.call("PATCH", f"/coupons/{coupon['id']}", seller, json={"usage_limit": None}))["active"] is True


# ---------------------------------------------------------------- item 7: cursors and number ranges


async def test_numbers_beyond_the_column_are_400(shop):
    seller = await shop.seller()
    product = await shop.product(seller)
    variant_id = product["variants"][0]["id"]
    for path in (f"/variants/{variant_id}/inventory?before=99999999999999999999",
                 "/livestreams/demo/chat?before=99999999999999999999",
                 f"/variants/{variant_id}/inventory?before=9223372036854775808"):
        resp = await shop.client.get(API + path, headers=seller.headers)
        err = await error_of(resp, 400)
        assert fields(err) == {"before"}, err
    ok = await shop.client.get(f"{API}/variants/{variant_id}/inventory?before=9223372036854775807",
                               headers=seller.headers)
    assert ok.status == 200


FORGED = ["WyJ4Il0", "WzEsMl0", "WyJub3QtYS1kYXRlIiwgIm5vdC1hLXV1aWQiXQ", "W251bGwsbnVsbF0", "!!!", "WzEuNSwiYSJd",
          "WyIyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwibm90LWEtdXVpZCJd", "WzEwMDAwMDAwMDAwMDAwMDAwMDAwLCJhIl0",
          "WyIyMDI0LTAxLTAxVDAwOjAwOjAwIiwxXQ", "eyJhIjoxfQ", "WyJcdTAwMDAiLCJcdTAwMDAiXQ", "WyJ4IiwieCIsIngiXQ"]


@pytest.mark.parametrize("cursor", FORGED)
async def test_forged_cursors_are_400(shop, cursor):
    seller = await shop.seller()
    for path in ("/products", "/me/products", "/me/orders", "/seller/orders"):
        resp = await shop.client.get(f"{API}{path}?cursor={cursor}", headers=seller.headers)
        err = await error_of(resp, 400)
        assert err["code"] == "invalid", (path, err)


SEARCH_FORGED = [("newest", "WyJuZXdlc3QiLCAiMjAyNC0wMS0wMVQwMDowMDowMCswMDowMCIsICJub3BlIl0"),
                 ("newest", "WyJuZXdlc3QiLCA1LCBudWxsXQ"),
                 ("price_asc", "WyJwcmljZV9hc2MiLCAiY2hlYXAiLCAiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIl0"),
                 ("price_asc", "WyJwcmljZV9hc2MiLCAxMDAwMDAwMDAwMDAwMDAwMDAwMDAsICIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0w"
                               "MDAwMDAwMDAwMDAiXQ"),
                 ("price_asc", "WyJwcmljZV9hc2MiLCB0cnVlLCAiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIl0"),
                 ("relevance", "WyJyZWxldmFuY2UiLCAieCIsICIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiXQ"),
                 ("relevance", "WyJyZWxldmFuY2UiLCAiTmFOIiwgIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd")]


@pytest.mark.parametrize("sort,cursor", SEARCH_FORGED)
async def test_forged_search_cursors_are_400(shop, sort, cursor):
    resp = await shop.client.get(f"{API}/products?q=lamp&sort={sort}&cursor={cursor}")
    assert (await error_of(resp, 400))["code"] == "invalid"


async def test_real_cursors_still_page(shop):
    seller = await shop.seller()
    products = [await shop.product(seller, title=f"Pager {i}", price=100 + i) for i in range(3)]
    seller_id = products[0]["seller"]["id"]
    seen = []
    cursor = None
    for _ in range(3):
        page = await shop.call("GET", f"/products?seller_id={seller_id}&sort=price_asc&limit=1"
                               + (f"&cursor={cursor}" if cursor else ""))
        seen += [p["title"] for p in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ["Pager 0", "Pager 1", "Pager 2"]
    mine = await shop.call("GET", "/me/products?limit=2", seller)
    rest = await shop.call("GET", f"/me/products?limit=2&cursor={mine['next_cursor']}", seller)
    assert len(mine["items"]) == 2 and len(rest["items"]) == 1


# ---------------------------------------------------------------- item 18: body limit on bytes read


async def test_a_chunked_body_over_the_limit_is_413(shop):
    async def chunks():  # no Content-Length: the limit must count the bytes as they arrive
        yield b'{"name": "A", "line1": "1 Road", "city": "Lagos", "country": "NG", "pad": "'
        for _ in range(5):
            yield b"x" * 16384
        yield b'"}'

    buyer = await shop.user()
    headers = {"Content-Type": "application/json", **buyer.headers}
    resp = await shop.client.post(f"{API}/me/addresses", data=chunks(), headers=headers)
    err = await error_of(resp, 413)
    assert err["code"] == "payload_too_large" and "65536" in err["message"]
    assert (await shop.call("GET", "/me/addresses", buyer))["items"] == []

    async def small():  # under the limit, chunked is fine
        yield b'{"name": "A", "line1": "1 Road", "city": "Lagos", '
        yield b'"country": "NG"}'
    assert (await shop.client.post(f"{API}/me/addresses", data=small(), headers=headers)).status == 201


async def test_a_body_trickled_past_the_body_timeout_is_408(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, http_body_timeout_seconds=0.3))
    buyer = await shop.user()

    async def trickle():  # a few bytes, then nothing for longer than the timeout
        yield b'{"name": "A", '
        await asyncio.sleep(3)
        yield b'"line1": "1 Road", "city": "Lagos", "country": "NG"}'

    headers = {"Content-Type": "application/json", **buyer.headers}
    resp = await shop.client.post(f"{API}/me/addresses", data=trickle(), headers=headers)
    assert (await error_of(resp, 408))["code"] == "request_timeout"
    assert (await shop.call("GET", "/me/addresses", buyer))["items"] == []


async def test_the_body_limit_is_a_setting(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, http_max_body_bytes=2048))
    resp = await shop.client.post(f"{API}/auth/email/start", json={"email": "a@example.com", "x": "y" * 3000})
    assert (await error_of(resp, 413))["message"].endswith("2048 bytes")


# ---------------------------------------------------------------- item 20: stable 401 messages


async def test_401_messages_are_short_and_stable(shop):
    bad = {
        "garbage": "not-a-jwt",
        "bad signature": jwt.encode({"sub": "x", "exp": 2**40, "iss": "live", "role": "customer"}, "other" * 10),
        "wrong issuer": jwt.encode({"sub": "x", "exp": 2**40, "iss": "elsewhere", "role": "customer"}, SECRET),
        "no exp": jwt.encode({"sub": "x", "iss": "live", "role": "customer"}, SECRET),
    }
    messages = set()
    for name, token in bad.items():
        err = await error_of(await shop.client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"}), 401)
        assert err["code"] == "unauthorized"
        messages.add(err["message"])
    assert messages == {"invalid token"}, messages
    expired = jwt.encode({"sub": "x", "exp": 1, "iss": "live", "role": "customer"}, SECRET)
    err = await error_of(await shop.client.get(f"{API}/me", headers={"Authorization": f"Bearer {expired}"}), 401)
    assert err["message"] == "token expired"


async def test_the_sandbox_page_counts_its_json_body_too(shop):
    async def chunks():
        yield b'{"outcome": "succeeded", "pad": "'
        for _ in range(5):
            yield b"x" * 16384
        yield b'"}'

    resp = await shop.client.post("/pay/sandbox/sbx_" + "1" * 32, data=chunks(),
                                  headers={"Content-Type": "application/json"})
    assert (await error_of(resp, 413))["code"] == "payload_too_large"


async def test_timestamps_beyond_what_the_database_holds_are_refused(shop):
    seller = await shop.seller()
    for query, name in (("from=0001-01-01T00:00:00%2B14:00", "from"), ("to=9999-12-31T23:59:59-14:00", "to"),
                        ("to=9999-12-31T23:59:59.999999-23:59", "to")):
        err = await error_of(await shop.client.get(f"{API}/seller/orders?{query}", headers=seller.headers), 400)
        assert fields(err) == {name}, err
    assert (await shop.client.get(f"{API}/seller/orders?from=2024-01-01T00:00:00",
                                  headers=seller.headers)).status == 200
    coupon = await shop.call("POST", "/coupons", seller, json={"code": f"T{uuid.uuid4().hex[:6]}", "kind": "percent",
                                                               "value": 5}, expect=201)
    for body in ({"starts_at": "0001-01-01T00:00:00+14:00"}, {"ends_at": "9999-12-31T23:59:59-14:00"}):
        resp = await shop.client.patch(f"{API}/coupons/{coupon['id']}", json=body, headers=seller.headers)
        assert fields(await error_of(resp, 422)) == set(body)
    resp = await shop.client.post(f"{API}/livestreams", headers=seller.headers, json={
        "title": "t", "slug": f"t-{uuid.uuid4().hex[:6]}", "scheduled_at": "0001-01-01T00:00:00+14:00"})
    assert fields(await error_of(resp, 422)) == {"scheduled_at"}
