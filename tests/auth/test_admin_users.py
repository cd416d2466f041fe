"""Admin REST for users (issue 11): list and look up users, grant and revoke seller, suspend and lift a
suspension; each change audited in its own transaction; a suspension cuts the user's tokens and sockets at once.
Real HTTP, real Socket.IO clients, the audit rows read back from PostgreSQL."""
from __future__ import annotations

import asyncio
import json

import pytest

from live.appkeys import GATEWAY
from tests.auth.helpers import ME, auth, error_of, make_account, socket_for, socket_refusal
from tests.helpers import owner_connection

USERS = "/api/v1/admin/users"


@pytest.fixture
async def admin(services):
    return await make_account(services, "adm-root", "admin")


async def audit_rows(dsn: str, user_id: str) -> list[dict]:
    async with owner_connection(dsn) as owner:
        rows = await owner.fetch("SELECT actor_id::text, action, entity, data FROM audit_log WHERE entity_id = $1 "
                                 "ORDER BY id", user_id)
    return [{**dict(r), "data": json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]} for r in rows]


async def test_admin_routes_need_an_admin(client, services):
    _, customer = await make_account(services, "adm-nobody")
    _, seller = await make_account(services, "adm-seller-x", "seller")
    for token in (customer, seller):
        err = await error_of(await client.get(USERS, headers=auth(token)), 403)
        assert err["code"] == "forbidden"
    await error_of(await client.get(USERS), 401)


async def test_list_and_find_users(client, services, admin):
    _, token = admin
    wanted, _ = await make_account(services, "adm-findme-zq")
    resp = await client.get(USERS, params={"q": "FINDME-ZQ"}, headers=auth(token))
    assert resp.status == 200, await resp.text()
    items = (await resp.json())["items"]
    assert [u["id"] for u in items] == [wanted]
    assert items[0]["suspended"] is False and items[0]["role"] == "customer"
    resp = await client.get(USERS, params={"role": "admin", "limit": "5"}, headers=auth(token))
    assert admin[0] in [u["id"] for u in (await resp.json())["items"]]
    one = await client.get(f"{USERS}/{wanted}", headers=auth(token))
    assert (await one.json())["name"] == "adm-findme-zq"
    for bad in ({"limit": "0"}, {"limit": "101"}, {"role": "root"}, {"offset": "-1"}, {"suspended": "maybe"},
                {"q": "a\x00b"}, {"q": "x" * 255}, {"limit": "1e309"}):
        await error_of(await client.get(USERS, params=bad, headers=auth(token)), 400)
    await error_of(await client.get(f"{USERS}/not-a-uuid", headers=auth(token)), 404)
    await error_of(await client.get(f"{USERS}/00000000-0000-0000-0000-000000000000", headers=auth(token)), 404)


async def test_grant_and_revoke_seller_audited_and_applied_at_once(client, services, admin, dsn):
    admin_id, admin_token = admin
    user_id, token = await make_account(services, "adm-becomes-seller")
    seller_only = "/api/v1/seller/orders"
    await error_of(await client.get(seller_only, headers=auth(token)), 403)
    viewer = await socket_for(client, token)
    gateway = client.app[GATEWAY]

    def socket_roles():
        return [c.principal.role for c in gateway.conns.values() if c.principal.user_id == user_id]
    assert socket_roles() == ["customer"]

    resp = await client.put(f"{USERS}/{user_id}/role", json={"role": "seller"}, headers=auth(admin_token))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["role"] == "seller"
    assert (await client.get(seller_only, headers=auth(token))).status == 200  # the same token, at once
    assert socket_roles() == ["seller"] and not viewer.cut.is_set()  # the open socket too, still connected
    await viewer.close()
    async with owner_connection(dsn) as owner:
        assert await owner.fetchval("SELECT count(*) FROM sellers WHERE user_id = $1::uuid", user_id) == 1

    await client.put(f"{USERS}/{user_id}/role", json={"role": "seller"}, headers=auth(admin_token))  # no change
    resp = await client.put(f"{USERS}/{user_id}/role", json={"role": "customer"}, headers=auth(admin_token))
    assert (await resp.json())["role"] == "customer"
    await error_of(await client.get(seller_only, headers=auth(token)), 403)

    rows = await audit_rows(dsn, user_id)
    assert [(r["action"], r["actor_id"], r["entity"]) for r in rows] == [("user.role", admin_id, "user")] * 2
    assert rows[0]["data"]["before"] == {"role": "customer"} and rows[0]["data"]["after"] == {"role": "seller"}
    assert rows[1]["data"]["before"] == {"role": "seller"} and rows[1]["data"]["after"] == {"role": "customer"}


async def test_bad_role_changes_are_refused_and_change_nothing(client, services, admin, dsn):
    admin_id, admin_token = admin
    user_id, _ = await make_account(services, "adm-bad-role")
    for body in ({"role": "root"}, {}, {"role": "seller", "x": 1}, {"role": None}):
        await error_of(await client.put(f"{USERS}/{user_id}/role", json=body, headers=auth(admin_token)), 422)
    err = await error_of(await client.put(f"{USERS}/{admin_id}/role", json={"role": "customer"},
                                          headers=auth(admin_token)), 409)
    assert err["code"] == "conflict"
    await error_of(await client.put(f"{USERS}/00000000-0000-0000-0000-000000000000/role", json={"role": "seller"},
                                    headers=auth(admin_token)), 404)
    assert await audit_rows(dsn, user_id) == [] and await audit_rows(dsn, admin_id) == []


async def test_suspension_cuts_tokens_and_sockets_at_once_and_is_audited(client, services, admin, dsn):
    admin_id, admin_token = admin
    user_id, token = await make_account(services, "adm-suspended")
    viewer = await socket_for(client, token)
    try:
        resp = await client.post(f"{USERS}/{user_id}/suspend", json={"reason": "spam"}, headers=auth(admin_token))
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["suspended"] is True and body["suspended_reason"] == "spam"
        await asyncio.wait_for(viewer.cut.wait(), 10)  # a guard against hanging, not a timing assertion
    finally:
        await viewer.close()
    err = await error_of(await client.get(ME, headers=auth(token)), 403)
    assert err["code"] == "suspended"
    assert (await socket_refusal(client, token))["code"] == "suspended"  # as REST says it
    # no new token either
    fresh = services.tokens.issue(user_id, "customer", "adm-suspended")
    await error_of(await client.get(ME, headers=auth(fresh)), 403)

    resp = await client.post(f"{USERS}/{user_id}/unsuspend", headers=auth(admin_token))
    assert resp.status == 200 and (await resp.json())["suspended"] is False
    await error_of(await client.get(ME, headers=auth(token)), 401)  # tokens from before stay void
    fresh = services.tokens.issue(user_id, "customer", "adm-suspended")
    assert (await client.get(ME, headers=auth(fresh))).status == 200

    rows = await audit_rows(dsn, user_id)
    assert [(r["action"], r["actor_id"]) for r in rows] == [("user.suspend", admin_id), ("user.unsuspend", admin_id)]
    assert rows[0]["data"]["after"] == {"suspended": True, "reason": "spam"}
    err = await error_of(await client.post(f"{USERS}/{admin_id}/suspend", json={}, headers=auth(admin_token)), 409)
    assert err["code"] == "conflict"


async def test_a_suspended_user_cannot_sign_in_by_email(client, services, admin, dsn):
    _, admin_token = admin
    email = "adm-susp@example.com"
    await client.post("/api/v1/auth/email/start", json={"email": email})
    code = await owner_fetch_code(dsn, email)
    user_id = await services_user_by_email(services, email)
    resp = await client.post(f"{USERS}/{user_id}/suspend", json={}, headers=auth(admin_token))
    assert resp.status == 200, await resp.text()
    err = await error_of(await client.post("/api/v1/auth/email/verify", json={"email": email, "code": code}), 403)
    assert err["code"] == "suspended"


async def owner_fetch_code(dsn: str, email: str) -> str:
    import re

    async with owner_connection(dsn) as owner:
        body = await owner.fetchval("SELECT coalesce(data->>'code', body) FROM email_outbox WHERE to_address = $1 "
                                    "ORDER BY id DESC LIMIT 1",
                                    email)
    return re.search(r"\b(\d{6})\b", body).group(1)


async def services_user_by_email(services, email: str) -> str:
    from db import users as users_db
    from live.auth.principal import SYSTEM

    async with services.db.tx(SYSTEM) as conn:
        return (await users_db.upsert_by_email(conn, email))["id"]


async def test_admin_routes_are_in_the_openapi_document(client):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    paths = doc["paths"]
    assert set(paths[USERS]) == {"get"}
    assert set(paths[USERS + "/{id}/role"]) == {"put"}
    assert set(paths[USERS + "/{id}/suspend"]) == {"post"} and set(paths[USERS + "/{id}/unsuspend"]) == {"post"}
    assert "403" in paths[USERS + "/{id}/role"]["put"]["responses"]
    assert "/api/v1/auth/sign-out" in paths


async def test_a_user_cannot_suspend_themselves_through_sql(services, dsn):
    from live.auth.principal import Principal

    user_id, _ = await make_account(services, "adm-sql")
    with pytest.raises(Exception, match="only admin/system may suspend"):
        async with services.db.tx(Principal(user_id, "customer")) as conn:
            await conn.execute("UPDATE users SET suspended_at = NULL, suspended_reason = 'x' WHERE id = $1::uuid",
                               user_id)
    async with owner_connection(dsn) as owner:
        assert await owner.fetchval("SELECT suspended_reason FROM users WHERE id = $1::uuid", user_id) is None
