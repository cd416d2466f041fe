"""Web Push keys and subscriptions over REST, against real PostgreSQL and the app on a real port: the VAPID key
generated once in development and kept (0600) across a restart, configured keys checked at start, production
without keys refused with a clear error, the browser's PushSubscription JSON validated field by field, at most
PUSH_MAX_SUBSCRIPTIONS per user, an endpoint moving to the user who subscribed last, delete by endpoint."""
from __future__ import annotations

import stat
import subprocess
import sys

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from live.app import create_app
from live.appkeys import SERVICES
from live.auth.principal import SYSTEM, Principal
from live.config import ConfigError
from live.notify import vapid
from tests.helpers import make_settings
from tests.notify.webpush_fake import Browser, b64url
from tests.rooms.harness import make_user

PROD = {"live_env": "production", "livekit_api_key": "lk-production", "livekit_api_secret": "lk-secret-" + "y" * 30}
URL = "/api/v1/me/push-subscriptions"


def key_pair() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    return private, Browser("x", key=key).p256dh


@pytest.fixture
def push_app(tmp_path, dsn, aiohttp_client):
    """make(**settings) -> (client, services, auth(name) -> (user_id, headers))."""
    async def make(**overrides):
        client = await aiohttp_client(create_app(make_settings(tmp_path, **overrides), dsn, run_migrations=False))
        services = client.app[SERVICES]

        async def auth(name: str):
            async with services.db.tx(SYSTEM) as conn:
                user = await make_user(conn, name)
            return str(user["id"]), {"Authorization": f"Bearer {services.token_for(user)}"}
        return client, services, auth
    return make


async def test_development_key_is_generated_once_kept_0600_and_survives_a_restart(push_app, tmp_path):
    client, _, _ = await push_app()
    resp = await client.get("/api/v1/push/key")
    assert resp.status == 200
    first = (await resp.json())["public_key"]
    raw = vapid.unb64url(first)
    assert len(raw) == 65 and raw[0] == 4
    path = tmp_path / "data" / vapid.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    restarted, _, _ = await push_app()  # the next start (a new app on the same data dir) reads the same file
    assert (await (await restarted.get("/api/v1/push/key")).json())["public_key"] == first
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left
    other = vapid.load(make_settings(tmp_path / "elsewhere"))  # another data dir: another key
    assert other is not None and other.public_key != first


def test_workers_starting_together_agree_on_one_development_key(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    settings = make_settings(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: vapid.load(settings).public_key, range(16)))
    assert len(set(keys)) == 1
    assert sorted(p.name for p in (tmp_path / "data").iterdir() if "vapid" in p.name) == [vapid.KEY_FILE]


async def test_configured_keys_are_used_and_checked(tmp_path):
    private, public = key_pair()
    keys = vapid.load(make_settings(tmp_path, vapid_private_key=private, vapid_subject="mailto:ops@shop.example"))
    assert keys is not None and keys.public_key == public and keys.subject == "mailto:ops@shop.example"
    assert "vapid t=" in keys.headers("https://fcm.googleapis.com")["Authorization"]
    odd = vapid.load(make_settings(tmp_path, vapid_private_key=private, email_from="shop"))  # no address in it
    assert odd is not None and odd.subject == "mailto:no-reply@localhost"
    assert not (tmp_path / "data" / vapid.KEY_FILE).exists()
    assert make_settings(tmp_path, vapid_private_key=private, vapid_public_key=public).vapid_public_key == public
    _, other_public = key_pair()
    bad = [({"vapid_private_key": private, "vapid_public_key": other_public}, "VAPID_PUBLIC_KEY: does not belong"),
           ({"vapid_public_key": public}, "VAPID_PRIVATE_KEY: is required"),
           ({"vapid_private_key": "not a key"}, "VAPID_PRIVATE_KEY must be a base64url P-256 private key"),
           ({"vapid_private_key": b64url(b"\0" * 32)}, "VAPID_PRIVATE_KEY: is not a valid P-256 private key"),
           ({"vapid_public_key": b64url(b"\5" * 65), "vapid_private_key": private}, "VAPID_PUBLIC_KEY must be"),
           ({"vapid_subject": "ops@shop.example"}, "VAPID_SUBJECT must be a mailto: address or an https:// origin"),
           ({"vapid_subject": "https://shop.example/contact"}, "VAPID_SUBJECT must be"),  # the signer refuses paths
           ({**PROD, "vapid_private_key": private}, "VAPID_SUBJECT: is required"),
           ({"push_endpoint_hosts": "fcm.googleapis.com, not a host"}, "PUSH_ENDPOINT_HOSTS"),
           ({"push_max_subscriptions": 0}, "PUSH_MAX_SUBSCRIPTIONS must be between 1 and 100")]
    for overrides, message in bad:
        with pytest.raises(ConfigError, match=message):
            make_settings(tmp_path, **overrides)


def test_python_m_live_notify_vapid_prints_a_pair_production_accepts(tmp_path):
    out = subprocess.run([sys.executable, "-m", "live.notify.vapid"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    env = dict(line.split("=", 1) for line in out.split())
    assert set(env) == {"VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY"}
    settings = make_settings(tmp_path, **PROD, vapid_private_key=env["VAPID_PRIVATE_KEY"],
                             vapid_public_key=env["VAPID_PUBLIC_KEY"], vapid_subject="mailto:ops@shop.example")
    keys = vapid.load(settings)
    assert keys is not None and keys.public_key == env["VAPID_PUBLIC_KEY"]


async def test_production_without_keys_says_push_is_off_and_writes_nothing(push_app, tmp_path):
    client, services, auth = await push_app(**PROD)
    assert services.push.enabled is False
    _, headers = await auth("pat")
    sub = Browser("b").subscription("https://fcm.googleapis.com/fcm/send")
    for method, url, body, hdrs in [("GET", "/api/v1/push/key", None, {}), ("POST", URL, sub, headers),
                                    ("DELETE", URL, {"endpoint": sub["endpoint"]}, headers)]:
        resp = await client.request(method, url, json=body, headers=hdrs)
        assert resp.status == 404, (method, url)
        error = (await resp.json())["error"]
        assert error["code"] == "push_disabled" and "VAPID" in error["message"]
    assert not (tmp_path / "data" / vapid.KEY_FILE).exists()
    async with services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT count(*) FROM push_subscriptions") == 0


async def test_production_with_keys_takes_only_https_push_services(push_app):
    private, public = key_pair()
    client, _, auth = await push_app(**PROD, vapid_private_key=private, vapid_subject="https://shop.example")
    assert (await (await client.get("/api/v1/push/key")).json()) == {"public_key": public}
    _, headers = await auth("pat")
    browser = Browser("b")
    for endpoint, message in [("http://fcm.googleapis.com/fcm/send/abc", "must be an https URL"),
                              ("https://127.0.0.1:8443/push/abc", "PUSH_ENDPOINT_HOSTS"),
                              ("https://evil.example/fcm.googleapis.com", "PUSH_ENDPOINT_HOSTS"),
                              ("https://user:pw@fcm.googleapis.com/x", "without credentials")]:
        resp = await client.post(URL, json={**browser.subscription(""), "endpoint": endpoint}, headers=headers)
        assert resp.status == 422, endpoint
        details = (await resp.json())["error"]["details"]
        assert [d["field"] for d in details] == ["endpoint"] and message in details[0]["message"], details
    for endpoint in ("https://fcm.googleapis.com/fcm/send/abc", "https://updates.push.services.mozilla.com/wpush/v2/x",
                     "https://web.push.apple.com/QGx"):
        resp = await client.post(URL, json={**browser.subscription(""), "endpoint": endpoint}, headers=headers)
        assert resp.status == 201, (endpoint, await resp.text())


async def test_bad_subscription_json_is_422_naming_the_field(push_app):
    client, services, auth = await push_app()
    _, headers = await auth("pat")
    good = Browser("b").subscription("http://127.0.0.1:9/x")
    cases = [({**good, "keys": {**good["keys"], "p256dh": b64url(b"\4" * 64)}}, "keys.p256dh"),
             ({**good, "keys": {**good["keys"], "p256dh": b64url(b"\4" + b"\1" * 64)}}, "keys.p256dh"),  # not on curve
             ({**good, "keys": {**good["keys"], "p256dh": "%%%"}}, "keys.p256dh"),
             ({**good, "keys": {**good["keys"], "auth": b64url(b"a" * 15)}}, "keys.auth"),
             ({**good, "keys": {"p256dh": good["keys"]["p256dh"]}}, "keys.auth"),
             ({"endpoint": good["endpoint"]}, "keys"),
             ({**good, "endpoint": "ftp://127.0.0.1/x"}, "endpoint"),
             ({**good, "endpoint": "not a url"}, "endpoint"),
             ({**good, "endpoint": "http://[::1]:9/x"}, "endpoint"),
             ({**good, "endpoint": "https://fcm.googleapis.com/" + "a" * 1000}, "endpoint"),
             ({**good, "endpoint": "https://push.example.net/x"}, "endpoint")]  # not a known push service
    for body, field in cases:
        resp = await client.post(URL, json=body, headers=headers)
        assert resp.status == 422, (body, await resp.text())
        error = (await resp.json())["error"]
        assert error["code"] == "validation_failed" and field in [d["field"] for d in error["details"]], error
    assert (await client.post(URL, json=good)).status == 401
    async with services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT count(*) FROM push_subscriptions") == 0
    resp = await client.post(URL, json=good, headers=headers)
    assert resp.status == 201
    out = await resp.json()
    assert out["endpoint"] == good["endpoint"] and isinstance(out["id"], int) and out["created_at"]


async def test_at_most_the_limit_per_user_oldest_dropped_and_endpoints_move(push_app):
    client, services, auth = await push_app(push_max_subscriptions=3)
    ann, ann_headers = await auth("ann")
    bob, bob_headers = await auth("bob")
    subs = [Browser(f"b{i}").subscription("http://127.0.0.1:9") for i in range(5)]
    for sub in subs:
        assert (await client.post(URL, json=sub, headers=ann_headers)).status == 201
    async with services.db.tx(Principal(ann, "customer")) as conn:  # RLS: her own rows only
        mine = [r["endpoint"] for r in await conn.fetch("SELECT endpoint FROM push_subscriptions ORDER BY id")]
    assert mine == [s["endpoint"] for s in subs[2:]]
    # the same browser signs in as bob and subscribes again: the endpoint is his now
    assert (await client.post(URL, json=subs[4], headers=bob_headers)).status == 201
    async with services.db.tx(Principal(bob, "customer")) as conn:
        assert await conn.fetchval("SELECT count(*) FROM push_subscriptions") == 1
    async with services.db.tx(Principal(ann, "customer")) as conn:
        assert await conn.fetchval("SELECT count(*) FROM push_subscriptions") == 2
        assert await conn.execute("DELETE FROM push_subscriptions WHERE user_id = $1::uuid", bob) == "DELETE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # a row for someone else
            await conn.execute("INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth) "
                               "VALUES ($1::uuid, 'https://fcm.googleapis.com/x', 'k', 'a')", bob)
    # ann cannot delete bob's; bob can, once
    resp = await client.delete(URL, json={"endpoint": subs[4]["endpoint"]}, headers=ann_headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    assert (await client.delete(URL, json={"endpoint": subs[4]["endpoint"]}, headers=bob_headers)).status == 204
    assert (await client.delete(URL, json={"endpoint": subs[4]["endpoint"]}, headers=bob_headers)).status == 404
    resp = await client.delete(URL, json={"endpoint": "x", "more": 1}, headers=bob_headers)
    assert resp.status == 422
    async with services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT count(*) FROM push_subscriptions") == 2
