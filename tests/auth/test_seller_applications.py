"""Becoming a seller (issue 16): a customer applies, an admin approves (role seller, a shop, audited, notified, in
one transaction) or refuses with a note; one pending application at most, decided once; admins list them pending
first with cursor pages. Real HTTP against the real database; RLS checked as the app's role."""
from __future__ import annotations

import json

import asyncpg
import pytest

from live.appkeys import SERVICES
from live.auth.principal import Principal
from live.cursors import encode_cursor
from tests.auth.helpers import auth, error_of, make_account
from tests.helpers import owner_connection

MINE = "/api/v1/me/seller-application"
ADMIN = "/api/v1/admin/seller-applications"
SELLER_ONLY = "/api/v1/seller/orders"


async def apply(client, token: str, **body) -> dict:
    resp = await client.post(MINE, json={"shop_name": "Ada's mugs", "about": "Hand-thrown mugs", **body},
                             headers=auth(token))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_apply_then_approved_makes_a_seller_with_a_shop_audited_and_notified(client, services, dsn):
    admin_id, admin_token = await make_account(services, "sa-admin-1", "admin")
    user_id, token = await make_account(services, "sa-applicant-1")
    await error_of(await client.get(MINE, headers=auth(token)), 404)  # never applied
    app = await apply(client, token, shop_name="  Ada's mugs  ")
    assert app["status"] == "pending" and app["shop_name"] == "Ada's mugs" and app["about"] == "Hand-thrown mugs"
    assert app["user"] == {"id": user_id, "email": None, "name": "sa-applicant-1"}
    assert app["decided_at"] is None and app["decided_by"] is None and app["note"] is None
    assert (await (await client.get(MINE, headers=auth(token))).json()) == app
    err = await error_of(await client.post(MINE, json={"shop_name": "Again"}, headers=auth(token)), 409)
    assert err["code"] == "conflict"  # one pending at most
    await error_of(await client.get(SELLER_ONLY, headers=auth(token)), 403)

    resp = await client.post(f"{ADMIN}/{app['id']}/approve", json={"note": "Welcome"}, headers=auth(admin_token))
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert done["status"] == "approved" and done["decided_by"] == admin_id and done["note"] == "Welcome"
    assert done["decided_at"] is not None
    assert (await client.get(SELLER_ONLY, headers=auth(token))).status == 200  # the same token, at once
    me = await (await client.get("/api/v1/me", headers=auth(token))).json()
    assert me["role"] == "seller"
    assert (await (await client.get(MINE, headers=auth(token))).json())["status"] == "approved"
    err = await error_of(await client.post(f"{ADMIN}/{app['id']}/approve", json={}, headers=auth(admin_token)), 409)
    assert err["code"] == "conflict"  # decided once
    await error_of(await client.post(f"{ADMIN}/{app['id']}/refuse", json={"note": "no"}, headers=auth(admin_token)),
                   409)
    await error_of(await client.post(MINE, json={"shop_name": "More"}, headers=auth(token)), 409)  # a seller now

    async with owner_connection(dsn) as owner:
        shop = await owner.fetchrow("SELECT display_name, slug FROM sellers WHERE user_id = $1::uuid", user_id)
        assert shop["display_name"] == "Ada's mugs" and shop["slug"].startswith("ada-s-mugs-")
        rows = await owner.fetch("SELECT actor_id::text, action, entity_id, data FROM audit_log "
                                 "WHERE entity_id IN ($1, $2) ORDER BY id", user_id, app["id"])
        notes = await owner.fetch("SELECT kind, data FROM notifications WHERE user_id = $1::uuid", user_id)
    audit = [(r["actor_id"], r["action"], json.loads(r["data"])) for r in rows]
    assert [a[:2] for a in audit] == [(admin_id, "user.role"), (admin_id, "seller_application.approve")]
    assert audit[0][2]["before"] == {"role": "customer"} and audit[0][2]["after"] == {"role": "seller"}
    assert [n["kind"] for n in notes] == ["account.seller_approved"]
    assert json.loads(notes[0]["data"])["shop"] == "Ada's mugs"


async def test_a_former_seller_approved_again_gets_their_kept_shop_named_as_applied(client, services, dsn):
    """The admin's role change and the approval make a seller the same way (live/auth/users.grant_seller): a seller
    demoted to customer keeps their shop (id, slug); approved again, it takes the name of the new application."""
    admin_id, admin_token = await make_account(services, "sa-admin-4", "admin")
    user_id, token = await make_account(services, "sa-former-4")
    role = f"/api/v1/admin/users/{user_id}/role"
    assert (await client.put(role, json={"role": "seller"}, headers=auth(admin_token))).status == 200
    async with owner_connection(dsn) as owner:
        kept = await owner.fetchrow("SELECT id, display_name, slug FROM sellers WHERE user_id = $1::uuid", user_id)
    assert kept["display_name"] == "sa-former-4"  # the admin's grant: named after the user
    assert (await client.put(role, json={"role": "customer"}, headers=auth(admin_token))).status == 200
    app = await apply(client, token, shop_name="Ada's cups")
    resp = await client.post(f"{ADMIN}/{app['id']}/approve", json={}, headers=auth(admin_token))
    assert resp.status == 200, await resp.text()
    assert (await (await client.get("/api/v1/me", headers=auth(token))).json())["role"] == "seller"
    async with owner_connection(dsn) as owner:
        shop = await owner.fetchrow("SELECT id, display_name, slug FROM sellers WHERE user_id = $1::uuid", user_id)
        rows = await owner.fetch("SELECT action, data FROM audit_log WHERE entity_id IN ($1, $2) ORDER BY id",
                                 user_id, app["id"])
    assert shop["id"] == kept["id"] and shop["slug"] == kept["slug"] and shop["display_name"] == "Ada's cups"
    audit = [(r["action"], json.loads(r["data"])) for r in rows]
    assert [a[0] for a in audit] == ["user.role"] * 3 + ["seller_application.approve"]
    assert [(a[1]["before"], a[1]["after"]) for a in audit[:3]] == [
        ({"role": "customer"}, {"role": "seller"}), ({"role": "seller"}, {"role": "customer"}),
        ({"role": "customer"}, {"role": "seller"})]
    assert audit[2][1]["seller_application"] == app["id"] and "seller_application" not in audit[0][1]
    assert audit[3][1]["shop"] == {"before": "sa-former-4", "after": "Ada's cups"}


async def test_refused_with_a_note_then_apply_again_and_the_admins_list(client, services, dsn):
    admin_id, admin_token = await make_account(services, "sa-admin-2", "admin")
    _, first = await make_account(services, "sa-applicant-2a")
    _, second = await make_account(services, "sa-applicant-2b")
    _, third = await make_account(services, "sa-applicant-2c")
    a = await apply(client, first, shop_name="First shop")
    b = await apply(client, second, shop_name="Second shop", about="")
    for body in ({}, {"note": ""}, {"note": "x" * 501}, {"note": "no", "x": 1}):
        err = await error_of(await client.post(f"{ADMIN}/{a['id']}/refuse", json=body, headers=auth(admin_token)),
                             422)
        assert err["details"][0]["field"] in ("note", "x")
    resp = await client.post(f"{ADMIN}/{a['id']}/refuse", json={"note": "Tell us more"}, headers=auth(admin_token))
    assert resp.status == 200, await resp.text()
    refused = await resp.json()
    assert refused["status"] == "refused" and refused["note"] == "Tell us more"
    mine = await (await client.get(MINE, headers=auth(first))).json()
    assert mine["status"] == "refused" and mine["note"] == "Tell us more"
    again = await apply(client, first, shop_name="First shop, again")  # refused: may apply again
    c = await apply(client, third, shop_name="Third shop")

    # every application, pending first then newest first, in pages of 2
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        resp = await client.get(ADMIN, params=params, headers=auth(admin_token))
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ours = [x["id"] for x in seen if x["id"] in (a["id"], b["id"], c["id"], again["id"])]
    assert ours == [c["id"], again["id"], b["id"], a["id"]]
    statuses = [x["status"] for x in seen]
    assert statuses == sorted(statuses, key=lambda s: s != "pending")
    refused_only = await (await client.get(ADMIN, params={"status": "refused"}, headers=auth(admin_token))).json()
    assert a["id"] in [x["id"] for x in refused_only["items"]]
    assert {x["status"] for x in refused_only["items"]} == {"refused"}
    assert refused_only["items"][0]["user"]["name"]
    forged = [encode_cursor(rank, "2026-01-01T00:00:00+00:00", a["id"]) for rank in (3_000_000_000, 2, -1)]
    for bad in ({"status": "maybe"}, {"limit": "0"}, {"limit": "101"}, {"cursor": "not-a-cursor"},
                *({"cursor": f} for f in forged)):
        err = await error_of(await client.get(ADMIN, params=bad, headers=auth(admin_token)), 400)
        assert "cursor" not in bad or err["details"][0]["field"] == "cursor"

    async with owner_connection(dsn) as owner:
        kinds = await owner.fetch("SELECT kind FROM notifications n JOIN seller_applications s "
                                  "ON s.user_id = n.user_id WHERE s.id = $1::uuid", a["id"])
    assert [k["kind"] for k in kinds] == ["account.seller_refused"]
    await error_of(await client.post(f"{ADMIN}/not-a-uuid/approve", json={}, headers=auth(admin_token)), 404)
    await error_of(await client.post(f"{ADMIN}/00000000-0000-0000-0000-000000000000/approve", json={},
                                     headers=auth(admin_token)), 404)


async def test_validation_auth_and_roles(client, services):
    _, customer = await make_account(services, "sa-applicant-3")
    _, seller = await make_account(services, "sa-seller-3", "seller")
    _, admin = await make_account(services, "sa-admin-3", "admin")
    for body, field in (({"shop_name": "A"}, "shop_name"), ({"shop_name": "x" * 81}, "shop_name"),
                        ({"shop_name": "  A  "}, "shop_name"), ({"shop_name": "two\nlines"}, "shop_name"),
                        ({}, "shop_name"), ({"shop_name": None}, "shop_name"),
                        ({"shop_name": "Good", "about": "x" * 2001}, "about"),
                        ({"shop_name": "Good", "extra": 1}, "extra")):
        err = await error_of(await client.post(MINE, json=body, headers=auth(customer)), 422)
        assert err["code"] == "validation_failed" and [d["field"] for d in err["details"]] == [field]
    await error_of(await client.post(MINE, data=b"", headers=auth(customer)), 400)
    await error_of(await client.post(MINE, json={"shop_name": "Good"}), 401)
    await error_of(await client.get(MINE), 401)
    for token in (seller, admin):  # nothing to apply for
        assert (await error_of(await client.post(MINE, json={"shop_name": "Good"}, headers=auth(token)),
                               409))["code"] == "conflict"
    await error_of(await client.get(ADMIN), 401)
    for token in (customer, seller):
        await error_of(await client.get(ADMIN, headers=auth(token)), 403)
        await error_of(await client.post(f"{ADMIN}/00000000-0000-0000-0000-000000000000/approve", json={},
                                         headers=auth(token)), 403)
        await error_of(await client.post(f"{ADMIN}/00000000-0000-0000-0000-000000000000/refuse",
                                         json={"note": "n"}, headers=auth(token)), 403)


async def test_rls_a_user_sees_only_their_own_and_cannot_decide(client, services):
    alice_id, alice = await make_account(services, "sa-rls-alice")
    bob_id, _ = await make_account(services, "sa-rls-bob")
    app = await apply(client, alice)
    db = client.app[SERVICES].db
    bob = Principal(user_id=bob_id, role="customer")
    me = Principal(user_id=alice_id, role="customer")
    async with db.tx(bob) as conn:
        assert await conn.fetchval("SELECT count(*) FROM seller_applications WHERE id = $1::uuid", app["id"]) == 0
    async with db.tx(me) as conn:
        assert await conn.fetchval("SELECT count(*) FROM seller_applications WHERE id = $1::uuid", app["id"]) == 1
        assert await conn.execute("UPDATE seller_applications SET status = 'approved', decided_at = now() "
                                  "WHERE id = $1::uuid", app["id"]) == "UPDATE 0"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # RLS: not for someone else, nor decided
        async with db.tx(bob) as conn:
            await conn.execute("INSERT INTO seller_applications (user_id, shop_name) VALUES ($1::uuid, 'Mine')",
                               alice_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tx(bob) as conn:
            await conn.execute("INSERT INTO seller_applications (user_id, shop_name, status, decided_at) "
                               "VALUES ($1::uuid, 'Mine', 'approved', now())", bob_id)
