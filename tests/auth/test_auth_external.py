"""Tokens of an external identity provider (JWT_JWKS_URL, e.g. Supabase Auth), with a real JWKS served over HTTP
and RS256 keys: the user is created on first sight, and sign-out and suspension apply to those tokens as to ours."""
from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from live.app import create_app
from live.appkeys import SERVICES
from tests.auth.helpers import ME, auth, error_of, make_account
from tests.helpers import make_settings

ISSUER = "https://idp.example/auth/v1"


@pytest.fixture
async def idp(aiohttp_server):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", use="sig", alg="RS256")
    app = web.Application()
    async def jwks(_request):
        return web.json_response({"keys": [jwk]})

    app.router.add_get("/jwks.json", jwks)
    server = await aiohttp_server(app)

    def token(sub: str, *, iat: float | None = None) -> str:
        now = time.time() if iat is None else iat
        return jwt.encode({"sub": sub, "iss": ISSUER, "iat": round(now, 3), "exp": int(now) + 600,
                           "email": f"{sub[:8]}@idp.example"}, key, algorithm="RS256", headers={"kid": "k1"})
    return str(server.make_url("/jwks.json")), token


async def test_external_tokens_follow_sign_out_and_suspension(tmp_path, dsn, idp, aiohttp_client):
    jwks_url, token = idp
    client = await aiohttp_client(create_app(make_settings(tmp_path, jwt_jwks_url=jwks_url,
                                                           jwt_external_issuer=ISSUER), dsn, run_migrations=False))
    services = client.app[SERVICES]
    sub = str(uuid.uuid4())
    first = token(sub)
    resp = await client.get(ME, headers=auth(first))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["id"] == sub  # created with the provider's id

    assert (await client.post("/api/v1/auth/sign-out", headers=auth(first))).status == 204
    err = await error_of(await client.get(ME, headers=auth(first)), 401)
    assert "revoked" in err["message"]
    second = token(sub)
    assert (await client.get(ME, headers=auth(second))).status == 200

    _, admin = await make_account(services, "ext-admin", "admin")
    resp = await client.post(f"/api/v1/admin/users/{sub}/suspend", json={}, headers=auth(admin))
    assert resp.status == 200, await resp.text()
    err = await error_of(await client.get(ME, headers=auth(token(sub))), 403)
    assert err["code"] == "suspended"
