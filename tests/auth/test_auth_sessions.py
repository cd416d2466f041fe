"""Tokens that stop working (issue 11, item 10): unknown users, sign-out (a per-user "tokens valid after" time),
role changes that apply at once, over real HTTP and real Socket.IO clients; across two workers through Redis."""
from __future__ import annotations

import asyncio
import uuid

from live.app import create_app
from live.appkeys import SERVICES
from live.auth import sessions
from tests.auth.helpers import ME, auth, error_of, make_account, owner_execute, socket_for, socket_refusal
from tests.helpers import make_settings

ORDERS = "/api/v1/me/orders"
ADDRESSES = "/api/v1/me/addresses"
ADDRESS = {"name": "Ann Example", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
           "country": "US"}


async def test_token_of_an_unknown_user_is_401_on_reads_and_writes(client, services):
    ghost = services.tokens.issue(str(uuid.uuid4()), "customer", "ghost")
    for method, path, body in (("GET", ME, None), ("GET", ORDERS, None), ("POST", ADDRESSES, ADDRESS),
                               ("PATCH", ME, {"name": "boo"})):
        err = await error_of(await client.request(method, path, json=body, headers=auth(ghost)), 401)
        assert err["code"] == "unauthorized"


async def test_token_of_a_deleted_user_stops_working(client, services, dsn, monkeypatch):
    monkeypatch.setattr(sessions, "KNOWN_SECONDS", 0.0)  # what a worker remembers of a user lasts no time
    user_id, token = await make_account(services, "sess-deleted")
    assert (await client.get(ME, headers=auth(token))).status == 200
    await owner_execute(dsn, "DELETE FROM users WHERE id = $1::uuid", user_id)
    await error_of(await client.get(ORDERS, headers=auth(token)), 401)


async def test_sign_out_revokes_every_earlier_token_and_a_new_sign_in_works(client, services):
    user_id, token = await make_account(services, "sess-out")
    other_device = services.tokens.issue(user_id, "customer", "sess-out")
    assert (await client.get(ME, headers=auth(token))).status == 200
    resp = await client.post("/api/v1/auth/sign-out", headers=auth(token))
    assert resp.status == 204, await resp.text()
    for t in (token, other_device):
        err = await error_of(await client.get(ME, headers=auth(t)), 401)
        assert "revoked" in err["message"]
        await error_of(await client.post(ADDRESSES, json=ADDRESS, headers=auth(t)), 401)
    fresh = services.tokens.issue(user_id, "customer", "sess-out")  # signing in again
    assert (await client.get(ME, headers=auth(fresh))).status == 200
    await error_of(await client.post("/api/v1/auth/sign-out"), 401)


async def test_sign_out_cuts_open_sockets_and_refuses_the_old_token(client, services):
    user_id, token = await make_account(services, "sess-socket")
    viewer = await socket_for(client, token)
    try:
        await client.post("/api/v1/auth/sign-out", headers=auth(token))
        await asyncio.wait_for(viewer.cut.wait(), 10)  # a guard against hanging, not a timing assertion
        refused = await socket_refusal(client, token)
        assert refused["code"] == "unauthorized" and "revoked" in refused["message"]
    finally:
        await viewer.close()


async def test_role_change_by_hand_applies_to_the_old_token_after_the_poll(client, services, dsn):
    user_id, token = await make_account(services, "sess-role")
    seller_only = "/api/v1/seller/orders"
    await error_of(await client.get(seller_only, headers=auth(token)), 403)
    await owner_execute(dsn, "UPDATE users SET role = 'seller' WHERE id = $1::uuid", user_id)
    await services.auth.poll()  # what every worker does each AUTH_REFRESH_SECONDS
    resp = await client.get(seller_only, headers=auth(token))
    assert resp.status == 200, await resp.text()
    assert (await (await client.get(ME, headers=auth(token))).json())["role"] == "seller"


async def test_an_old_sign_out_does_not_refuse_tokens_issued_after_it(client, services, dsn):
    user_id, _ = await make_account(services, "sess-old")
    await owner_execute(dsn, "UPDATE users SET tokens_valid_after = now() - interval '1 hour' WHERE id = $1::uuid",
                        user_id)
    await services.auth.poll()
    token = services.tokens.issue(user_id, "customer", "sess-old")
    assert (await client.get(ME, headers=auth(token))).status == 200


async def test_sign_out_on_one_worker_applies_on_another_at_once(tmp_path, dsn, redis_url, aiohttp_client):
    # polling every 300 s: only the Redis message can tell the second worker in time
    apps = [create_app(make_settings(tmp_path / name, redis_url=redis_url, auth_refresh_seconds=300), dsn,
                       run_migrations=False) for name in ("w1", "w2")]
    one, two = [await aiohttp_client(app) for app in apps]
    user_id, token = await make_account(one.app[SERVICES], "sess-two-workers")
    assert (await two.get(ME, headers=auth(token))).status == 200
    viewer = await socket_for(two, token)
    try:
        assert (await one.post("/api/v1/auth/sign-out", headers=auth(token))).status == 204
        await asyncio.wait_for(viewer.cut.wait(), 10)  # worker two cut the socket on the message
        await error_of(await two.get(ME, headers=auth(token)), 401)
    finally:
        await viewer.close()
