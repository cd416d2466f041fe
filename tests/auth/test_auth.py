"""Authentication over real HTTP: JWT bearer tokens on /me, role checks in the route registry, and the profile
(PATCH /me). The tests of this module share one migrated database (see tests/auth/conftest.py)."""
from __future__ import annotations

import time

import jwt
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from tests.auth.helpers import ME, auth, error_of
from tests.helpers import SECRET, make_settings


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, rate_limits="cart=off")  # the fuzz test below sends hundreds of cart requests


# ---------------------------------------------------------------- JWT on /me


async def test_me_without_token_is_401(client):
    err = await error_of(await client.get(ME), 401)
    assert err["code"] == "unauthorized"


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer ", "abc", "Basic dXNlcjpwYXNz"])
async def test_me_with_malformed_header_is_401(client, header):
    err = await error_of(await client.get(ME, headers={"Authorization": header}), 401)
    assert err["code"] == "unauthorized"


async def test_me_with_bad_signature_is_401(client, token_for):
    user_id, good = await token_for("mallory")
    claims = jwt.decode(good, SECRET, algorithms=["HS256"], issuer="live")
    forged = jwt.encode(claims, "another-secret-" + "z" * 40, algorithm="HS256")
    err = await error_of(await client.get(ME, headers=auth(forged)), 401)
    assert err["code"] == "unauthorized"
    # tampering with the payload of a genuine token breaks the signature too
    head, _, sig = good.split(".")
    tampered_claims = dict(claims, role="admin")
    tampered = jwt.encode(tampered_claims, "irrelevant-" + "k" * 40, algorithm="HS256").split(".")[1]
    err = await error_of(await client.get(ME, headers=auth(f"{head}.{tampered}.{sig}")), 401)
    assert err["code"] == "unauthorized"


async def test_me_with_unsigned_alg_none_token_is_401(client, token_for):
    user_id, _ = await token_for("nobody")
    unsigned = jwt.encode({"sub": user_id, "role": "admin", "iss": "live", "exp": int(time.time()) + 600},
                          None, algorithm="none")
    await error_of(await client.get(ME, headers=auth(unsigned)), 401)


async def test_me_with_expired_token_is_401(client, services, token_for):
    user_id, _ = await token_for("late")
    expired = services.tokens.issue(user_id, "customer", "late", ttl=-10)
    err = await error_of(await client.get(ME, headers=auth(expired)), 401)
    assert err["code"] == "unauthorized"
    assert "expired" in err["message"]


async def test_me_with_unknown_role_claim_is_401(client, token_for):
    user_id, _ = await token_for("weird")
    now = int(time.time())
    token = jwt.encode({"sub": user_id, "role": "superuser", "iss": "live", "iat": now, "exp": now + 600},
                       SECRET, algorithm="HS256")
    await error_of(await client.get(ME, headers=auth(token)), 401)


async def test_me_with_valid_token_returns_the_user(client, token_for):
    user_id, token = await token_for("carol")
    resp = await client.get(ME, headers=auth(token))
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == user_id
    assert body["name"] == "carol"
    assert body["role"] == "customer"


async def test_me_with_lowercase_bearer_scheme_works(client, token_for):
    user_id, token = await token_for("dave")
    resp = await client.get(ME, headers={"Authorization": f"bearer {token}"})
    assert resp.status == 200
    assert (await resp.json())["id"] == user_id


# ---------------------------------------------------------------- role checks in the registry


SELLER_ONLY = "/api/v1/seller/orders"


async def test_wrong_role_is_403_and_right_role_is_200(client, token_for):
    _, customer = await token_for("role-customer")
    err = await error_of(await client.get(SELLER_ONLY, headers=auth(customer)), 403)
    assert err["code"] == "forbidden"
    assert "seller" in err["message"]
    _, seller = await token_for("role-seller", "seller")
    resp = await client.get(SELLER_ONLY, headers=auth(seller))
    assert resp.status == 200, await resp.text()


async def test_role_route_without_token_is_401_not_403(client, services, token_for):
    err = await error_of(await client.get(SELLER_ONLY), 401)
    assert err["code"] == "unauthorized"
    user_id, _ = await token_for("role-late", "seller")
    expired = services.tokens.issue(user_id, "seller", "s", ttl=-10)
    await error_of(await client.get(SELLER_ONLY, headers=auth(expired)), 401)


# ---------------------------------------------------------------- PATCH /me


async def test_patch_me_changes_the_name(client, token_for):
    user_id, token = await token_for("erin")
    resp = await client.patch(ME, json={"name": "Erin Example", "avatar_url": "https://img.example/e.png"},
                              headers=auth(token))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["name"] == "Erin Example"
    assert body["avatar_url"] == "https://img.example/e.png"
    again = await (await client.get(ME, headers=auth(token))).json()
    assert again["id"] == user_id
    assert again["name"] == "Erin Example"


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "x" * 81}, {"role": "admin"},
                                  {"avatar_url": "javascript:alert(1)"}, {"name": 42}])
async def test_patch_me_invalid_body_is_422(client, token_for, body):
    _, token = await token_for("frank")
    err = await error_of(await client.patch(ME, json=body, headers=auth(token)), 422)
    assert err["code"] == "validation_failed"
    me = await (await client.get(ME, headers=auth(token))).json()
    assert me["name"] == "frank"
    assert me["role"] == "customer"


async def test_patch_me_non_json_body_is_400(client, token_for):
    _, token = await token_for("gina")
    resp = await client.patch(ME, data=b"name=gina2", headers={**auth(token), "Content-Type": "application/json"})
    err = await error_of(resp, 400)
    assert err["code"] == "invalid"
    err = await error_of(await client.patch(ME, data=b"", headers=auth(token)), 400)
    assert err["code"] == "invalid"


async def test_patch_me_requires_a_token(client):
    await error_of(await client.patch(ME, json={"name": "x"}), 401)


# ---------------------------------------------------------------- fuzz: any token is a clear 401, never a 500

CLAIM = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(),
                  st.text(max_size=60), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@pytest.mark.parametrize("path", [ME, "/api/v1/me/cart/items"])
async def test_signed_tokens_with_any_claims_and_garbage_headers_get_401(client, path):
    """Tokens signed with the real secret but with claims of any type (sub, role, iat, exp, name), and header
    values of any printable text: each request is a 401 with the error body (or 200 for a well-formed token
    of a real user, which these never name)."""
    seen = []

    @examples(max_examples=120, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(claims=st.fixed_dictionaries({"iss": st.just("live")}, optional={
        "sub": CLAIM, "role": st.one_of(CLAIM, st.sampled_from(["customer", "seller", "admin"])),
        "iat": CLAIM, "exp": st.one_of(CLAIM, st.just(int(time.time()) + 600)), "name": CLAIM}),
           raw=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200))
    def cases(claims, raw):
        seen.append((jwt.encode(claims, SECRET, algorithm="HS256"), raw))

    cases()
    assert len(seen) >= 100
    for token, raw in seen:
        for header in (f"Bearer {token}", raw):
            method = "GET" if path == ME else "POST"
            resp = await client.request(method, path, json={"variant_id": "x", "qty": 1},
                                        headers={"Authorization": header})
            err = await error_of(resp, 401)
            assert err["code"] == "unauthorized", (header, err)
