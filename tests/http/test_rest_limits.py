"""REST rate limits (issue 11): per user when signed in, per client address otherwise; 429 with Retry-After and
the usual error body; a refused request changes nothing; limits set by RATE_LIMITS; the client address from
TRUSTED_PROXY_HEADER only when configured; counts shared by two workers through Redis. Wallet sign-in: nonces
and new accounts per client address. Real HTTP on real sockets, a real PostgreSQL and a real Redis."""
from __future__ import annotations

import base58
import nacl.signing
import pytest

from live.app import create_app
from live.appkeys import SERVICES
from live.config import ConfigError, load_settings
from tests.auth.helpers import auth, error_of, make_account
from tests.helpers import make_settings


@pytest.fixture
def dsn(module_dsn):
    """One migrated database for the module (as the authentication tests share theirs), instead of conftest's
    per-test one."""
    return module_dsn

API = "/api/v1"


async def serve(tmp_path, dsn, aiohttp_client, name: str = "app", **settings):
    return await aiohttp_client(create_app(make_settings(tmp_path / name, **settings), dsn, run_migrations=False))


async def refused(resp) -> int:
    """The Retry-After (seconds) of a 429 with the usual error body."""
    err = await error_of(resp, 429)
    assert err["code"] == "rate_limited"
    retry = int(resp.headers["Retry-After"])
    assert retry >= 1
    return retry


async def test_cart_writes_are_limited_per_user_and_a_refused_one_changes_nothing(tmp_path, dsn, aiohttp_client):
    client = await serve(tmp_path, dsn, aiohttp_client, rate_limits="cart=2/60")
    services = client.app[SERVICES]
    _, buyer = await make_account(services, "lim-buyer")
    _, other = await make_account(services, "lim-other")
    missing = {"variant_id": "00000000-0000-0000-0000-000000000000", "qty": 1}
    for _ in range(2):  # allowed (and answered by the route: no such variant)
        resp = await client.post(f"{API}/me/cart/items", json=missing, headers=auth(buyer))
        assert resp.status != 429, await resp.text()
    retry = await refused(await client.post(f"{API}/me/cart/items", json=missing, headers=auth(buyer)))
    assert retry <= 31  # one comes back every 60 / 2 s
    await refused(await client.delete(f"{API}/me/cart/items/{missing['variant_id']}", headers=auth(buyer)))
    # another user is not affected, and reads are not limited
    assert (await client.post(f"{API}/me/cart/items", json=missing, headers=auth(other))).status != 429
    assert (await client.get(f"{API}/me/cart", headers=auth(buyer))).status == 200


async def test_checkout_limit_and_the_default_write_limit(tmp_path, dsn, aiohttp_client):
    client = await serve(tmp_path, dsn, aiohttp_client, rate_limits="checkout=1/60, write=1/60")
    services = client.app[SERVICES]
    _, buyer = await make_account(services, "lim-checkout")
    first = await client.post(f"{API}/checkout", json={}, headers=auth(buyer))
    assert first.status != 429
    retry = await refused(await client.post(f"{API}/checkout", json={}, headers=auth(buyer)))
    assert 55 <= retry <= 60
    # PATCH /me has no entry of its own: the `write` limit
    assert (await client.patch(f"{API}/me", json={"name": "lim-1"}, headers=auth(buyer))).status == 200
    await refused(await client.patch(f"{API}/me", json={"name": "lim-2"}, headers=auth(buyer)))
    me = await (await client.get(f"{API}/me", headers=auth(buyer))).json()
    assert me["name"] == "lim-1"  # the refused PATCH changed nothing


async def test_search_is_limited_per_client_address_and_a_forged_header_does_not_help(tmp_path, dsn, aiohttp_client):
    client = await serve(tmp_path, dsn, aiohttp_client, rate_limits="search=2/60")
    for i in range(2):
        assert (await client.get(f"{API}/products", params={"q": "x"})).status == 200
    # no TRUSTED_PROXY_HEADER: X-Forwarded-For is ignored, the peer address counts
    await refused(await client.get(f"{API}/products", headers={"X-Forwarded-For": "203.0.113.9"}))


async def test_behind_a_trusted_proxy_each_client_address_has_its_own_limit(tmp_path, dsn, aiohttp_client):
    client = await serve(tmp_path, dsn, aiohttp_client, rate_limits="search=1/60",
                         trusted_proxy_header="X-Forwarded-For")

    def origin(ip):
        return {"X-Forwarded-For": f"10.9.9.9, {ip}"}  # the rightmost entry: what the proxy saw
    assert (await client.get(f"{API}/products", headers=origin("203.0.113.1"))).status == 200
    await refused(await client.get(f"{API}/products", headers=origin("203.0.113.1")))
    assert (await client.get(f"{API}/products", headers=origin("203.0.113.2"))).status == 200
    # IPv6 clients count by their /64
    assert (await client.get(f"{API}/products", headers=origin("2001:db8:1:2::1"))).status == 200
    await refused(await client.get(f"{API}/products", headers=origin("2001:db8:1:2::ffff")))


async def test_sign_in_routes_are_limited_per_client_address(tmp_path, dsn, aiohttp_client):
    client = await serve(tmp_path, dsn, aiohttp_client, rate_limits="auth_email_start=2/3600,auth_wallet_nonce=1/600")
    for i in range(2):
        resp = await client.post(f"{API}/auth/email/start", json={"email": f"lim{i}@example.com"})
        assert resp.status == 202, await resp.text()
    retry = await refused(await client.post(f"{API}/auth/email/start", json={"email": "lim9@example.com"}))
    assert retry > 60
    address = base58.b58encode(bytes(nacl.signing.SigningKey.generate().verify_key)).decode()
    assert (await client.post(f"{API}/auth/wallet/nonce", json={"address": address})).status == 200
    await refused(await client.post(f"{API}/auth/wallet/nonce", json={"address": address}))


async def wallet_sign_in(client, key: nacl.signing.SigningKey):
    address = base58.b58encode(bytes(key.verify_key)).decode()
    challenge = await (await client.post(f"{API}/auth/wallet/nonce", json={"address": address})).json()
    signature = base58.b58encode(key.sign(challenge["message"].encode()).signature).decode()
    return await client.post(f"{API}/auth/wallet/verify",
                             json={"address": address, "nonce": challenge["nonce"], "signature": signature})


async def test_wallet_sign_in_creates_few_accounts_per_client_address(tmp_path, dsn, aiohttp_client):
    client = await serve(tmp_path, dsn, aiohttp_client, rate_limits="wallet_new_account=2/3600")
    keys = [nacl.signing.SigningKey.generate() for _ in range(3)]
    for key in keys[:2]:
        resp = await wallet_sign_in(client, key)
        assert resp.status == 200, await resp.text()
    await refused(await wallet_sign_in(client, keys[2]))
    address = base58.b58encode(bytes(keys[2].verify_key)).decode()
    count = await client.app[SERVICES].db.pool.fetchval(
        "SELECT count(*) FROM users WHERE wallet_address = $1", address)
    assert count == 0  # no account was made
    assert (await wallet_sign_in(client, keys[0])).status == 200  # an existing account still signs in


async def test_limits_are_shared_by_workers_through_redis(tmp_path, dsn, aiohttp_client, redis_url):
    one, two = [await serve(tmp_path, dsn, aiohttp_client, name, redis_url=redis_url, rate_limits="search=2/60")
                for name in ("w1", "w2")]
    assert (await one.get(f"{API}/products")).status == 200
    assert (await two.get(f"{API}/products")).status == 200
    await refused(await one.get(f"{API}/products"))
    await refused(await two.get(f"{API}/products"))


@pytest.mark.parametrize("value", ["checkout", "checkout=1", "checkout=0/60", "checkout=a/b", "nosuch=1/60",
                                   "checkout=5/0"])
def test_a_bad_rate_limits_setting_stops_the_start_naming_it(value):
    with pytest.raises(ConfigError, match="RATE_LIMITS"):
        load_settings({"RATE_LIMITS": value, "JWT_SECRET": "s" * 40})


def test_rate_limits_setting_accepts_overrides_and_off():
    settings = load_settings({"RATE_LIMITS": "checkout=5/30, search=off", "JWT_SECRET": "s" * 40,
                              "TRUSTED_PROXY_HEADER": "X-Real-IP"})
    assert settings.rate_limits and settings.trusted_proxy_header == "X-Real-IP"
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HEADER"):
        load_settings({"TRUSTED_PROXY_HEADER": "X Forwarded", "JWT_SECRET": "s" * 40})


async def test_limited_operations_document_429(client):
    paths = (await (await client.get(f"{API}/openapi.json")).json())["paths"]
    assert "429" in paths[f"{API}/checkout"]["post"]["responses"]
    assert "429" in paths[f"{API}/me"]["patch"]["responses"]  # the default write limit
    assert "429" in paths[f"{API}/products"]["get"]["responses"]
    assert "429" not in paths[f"{API}/me"]["get"]["responses"]
