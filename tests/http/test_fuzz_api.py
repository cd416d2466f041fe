"""Every operation of the OpenAPI document, fuzzed with schemathesis as a customer, a seller and an admin against
the real app (real PostgreSQL, real sockets): no 5xx, and every response is one the document declares (status,
content type, body schema). Issue 11's acceptance for the REST layer.

The database is seeded first (a seller's product, variants, stream, coupon; a customer's address, cart and
order), and path parameters are drawn half the time from those real ids, so the fuzzer reaches the handlers'
logic instead of bouncing on 404s. Bounded: a few examples per operation, role and generation mode (valid by the
schema, and schemathesis' negative mode), derandomized; no shrinking (the failure report names the request).
Tune with FUZZ_EXAMPLES (per operation, role and mode; default 4).
"""
from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from live.auth.principal import SYSTEM
from tests.commerce.harness import API, Shop, make_client

schemathesis.serializer.alias("application/sdp", "text/plain")  # WHIP/WHEP offers (live/http/media.py)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


async def seed(shop: Shop) -> dict:
    """Real rows for the path parameters, owned by the users the fuzzer acts as."""
    seller, customer, admin = await shop.seller(), await shop.user(), await shop.user(role="admin")
    product = await shop.product(seller, stock=1000, variants=[
        {"sku": f"F-{uuid.uuid4().hex[:8]}", "price_minor": 1500, "currency": "USD", "stock": 1000},
        {"sku": f"G-{uuid.uuid4().hex[:8]}", "price_minor": 2500, "currency": "USD", "stock": 1000}])
    variant = product["variants"][0]["id"]
    stream = await shop.live_stream(seller, product_ids=[product["id"]])
    coupon = await shop.call("POST", "/coupons", seller, json={"code": f"F{uuid.uuid4().hex[:6]}",
                                                               "kind": "percent", "value": 10}, expect=201)
    address = await shop.call("POST", "/me/addresses", customer, json={
        "name": "Ada", "line1": "1 Road", "city": "Lagos", "country": "NG"}, expect=201)
    await shop.call("POST", "/me/cart/items", customer, json={"variant_id": variant, "qty": 1})
    order = (await shop.checkout(customer))["orders"][0]
    await shop.call("POST", "/me/cart/items", customer, json={"variant_id": product["variants"][1]["id"], "qty": 2})
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("INSERT INTO chat_messages (livestream_id, user_id, text) VALUES ($1::uuid, $2::uuid, 'hi')",
                           stream["id"], customer.id)
    ids = {"product": product["id"], "variant": variant, "stream": stream["id"], "coupon": coupon["id"],
           "address": address["id"], "order": order["id"], "user": customer.id}
    return {"ids": ids, "tokens": {"customer": customer.token, "seller": seller.token, "admin": admin.token}}


def real_path_parameters(path: str, ids: dict) -> dict:
    """The seeded id each path parameter of `path` stands for (by the resource the path names)."""
    out = {}
    if "{user_id}" in path:
        out["user_id"] = ids["user"]
    for name in ("id", "variant_id"):
        if "{" + name + "}" not in path:
            continue
        resource = path.removeprefix(API + "/").split("/{")[0]
        kind = {"products": "product", "variants": "variant", "me/cart/items": "variant", "me/wishlist": "product",
                "coupons": "coupon", "me/addresses": "address", "me/orders": "order", "seller/orders": "order",
                "livestreams": "stream"}.get(resource)
        if kind is None and "users" in resource:
            kind = "user"
        if kind is not None:
            out[name] = ids[kind]
    return out


def identity_last(operation) -> int:
    """Operations that end sessions or change a user (sign-out, role, suspension) run after all others: they
    revoke the tokens the fuzzer acts with, and later operations would only see 401s."""
    if operation.path.endswith("/sign-out"):
        return 2
    return 1 if "/admin/users/" in operation.path and operation.method.upper() != "GET" else 0


def fuzz(base_url: str, document: dict, seeded: dict) -> list[str]:
    """Runs in a thread (schemathesis calls are blocking) while the app serves on the test's event loop."""
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    failures: list[str] = []
    nothing_to_negate: set[str] = set()
    statuses: Counter[int] = Counter()
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=identity_last)
    assert len(operations) >= 40  # every operation is fuzzed, none skipped
    for operation in operations:
        real = real_path_parameters(operation.path, seeded["ids"])
        for role, token in seeded["tokens"].items():
            headers = {"Authorization": f"Bearer {token}"}
            for mode in MODES:
                strategy = operation.as_strategy(generation_mode=mode)
                if real and mode is GenerationMode.POSITIVE:
                    strategy = st.one_of(operation.as_strategy(generation_mode=mode, path_parameters=real), strategy)

                @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
                @given(case=strategy)
                def run(case):
                    case.headers = {**(case.headers or {}), **headers}
                    response = case.call_and_validate(base_url=base_url, session=session, checks=CHECKS)
                    statuses[response.status_code // 100] += 1

                try:
                    run()
                except Unsatisfiable:
                    # no input breaks this operation's schema (no parameters, or free-form strings only): there is
                    # nothing negative to send; its positive run covered it
                    assert mode is GenerationMode.NEGATIVE, operation.path
                    nothing_to_negate.add(f"{operation.method.upper()} {operation.path}")
                except (Exception, BaseExceptionGroup) as exc:  # collect every failure, then report them all
                    first = str(exc).strip().splitlines()
                    failures.append(f"{operation.method.upper()} {operation.path} as {role} ({mode.value}): "
                                    + " | ".join(first[:12]))
    print(f"fuzzed {len(operations)} operations, {sum(statuses.values())} requests, {dict(statuses)} by status class; "
          f"no negative input exists for: {sorted(nothing_to_negate)}")
    # the fuzzer got past validation and authorization: a good share of the requests did something
    assert statuses[2] >= len(operations), dict(statuses)
    return failures


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client) -> Shop:
    # limits generous enough for a fuzzer hammering one route from one address
    off = ",".join(f"{name}=off" for name in (
        "auth_email_start", "auth_email_verify", "email_code_per_address", "email_guess_per_address",
        "auth_wallet_nonce", "auth_wallet_verify", "wallet_new_account", "checkout", "cart", "search", "write"))
    return Shop(await make_client(tmp_path, dsn, aiohttp_client, cart_max_per_buyer=99, rate_limits=off))


async def test_fuzz_every_operation_as_customer_seller_and_admin(shop):
    seeded = await seed(shop)
    document = await (await shop.client.get(f"{API}/openapi.json")).json()
    failures = await asyncio.to_thread(fuzz, shop.base, document, seeded)
    assert not failures, f"{len(failures)} failing operation runs:\n" + "\n".join(failures)
