"""The OpenAPI document is valid and matches the routes the app really serves, both ways."""
from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from live.http.api import API

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def dsn(module_dsn):
    """The tests of this module only read: they share one migrated database."""
    return module_dsn


@pytest.fixture
async def document(client) -> dict:
    resp = await client.get(f"{API}/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    return await resp.json()


def registered_operations(app) -> set[tuple[str, str]]:
    ops = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or not resource.canonical.startswith(API + "/"):
            continue
        ops.add((route.method.upper(), resource.canonical))
    # aiohttp adds HEAD next to GET by itself; such a HEAD is not an operation of its own
    return {(m, p) for m, p in ops if not (m == "HEAD" and ("GET", p) in ops)}


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items()
            for method in item if method in METHODS}


async def test_document_is_valid_openapi(document):
    validate(document)
    assert document["openapi"].startswith("3.")
    assert document["paths"]


async def test_every_registered_route_is_documented_and_vice_versa(client, document):
    registered = registered_operations(client.app)
    documented = documented_operations(document)
    assert ("GET", f"{API}/me") in registered  # the comparison is over something
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "documented operations that are not routes"


async def test_operation_ids_are_unique(document):
    ids = [op["operationId"] for item in document["paths"].values() for m, op in item.items() if m in METHODS]
    assert len(ids) == len(set(ids))


async def test_documented_security_matches_behaviour(client, document):
    """Operations documented as requiring a bearer token answer 401 without one; the others do not."""
    checked = 0
    for path, item in document["paths"].items():
        if "{" in path:
            continue
        for method, op in item.items():
            if method not in METHODS:
                continue
            resp = await client.request(method.upper(), path, json={} if method in ("post", "put", "patch") else None)
            requires_token = op.get("security") == [{"bearerAuth": []}]
            if requires_token:
                assert resp.status == 401, f"{method} {path}"
                assert "401" in op["responses"]
            else:
                assert resp.status != 401, f"{method} {path}"
            checked += 1
    assert checked >= 5


async def test_request_bodies_and_errors_are_described(document):
    email_start = document["paths"][f"{API}/auth/email/start"]["post"]
    assert "requestBody" in email_start
    assert {"202", "422"} <= set(email_start["responses"])
    me = document["paths"][f"{API}/me"]["get"]
    ref = me["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    user_schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"id", "name", "role"} <= set(user_schema["properties"])
    err_ref = me["responses"]["401"]["content"]["application/json"]["schema"]["$ref"]
    assert err_ref == "#/components/schemas/Error"


async def test_the_hardening_answers_are_declared(document):
    """Every operation may answer 400 (a NUL byte in any parameter); every body may be too large (413); a token
    that is sent must be valid even where signing in is optional (401)."""
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            assert "400" in op["responses"], (method, path)
            if "requestBody" in op:
                assert {"413", "422"} <= set(op["responses"]), (method, path)
            if "security" in op:
                assert "401" in op["responses"], (method, path)
    product = document["paths"][f"{API}/products/{{id}}"]
    assert "401" in product["get"]["responses"]  # auth optional
    # a PATCH field of a NOT NULL column is not nullable in the document either, a nullable one is
    patch = document["components"]["schemas"]["ProductPatch"]["properties"]
    assert patch["title"]["type"] == "string" and "default" not in patch["title"]
    assert {"type": "null"} in patch["description"]["anyOf"]
