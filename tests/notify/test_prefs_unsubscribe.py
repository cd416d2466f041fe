"""Preferences over real HTTP and PostgreSQL, and the unsubscribe links: the GET page (a confirm form, nothing
turned off), the RFC 8058 one-click POST with the link of a real mail (then that kind is no longer mailed), `*`
(all optional kinds), a bad token (400, JSON or a page, never 500), and a transactional kind refused with a 422
naming it."""
from __future__ import annotations

import re

import asyncpg
import pytest

from live.auth.principal import SYSTEM, Principal
from live.notify.unsubscribe import UnsubscribeTokens
from tests.helpers import make_settings, owner_connection

PREFS = "/api/v1/me/notification-preferences"
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}
STREAM = {"stream_id": "s", "slug": "drop", "title": "Drop", "seller_name": "Shop", "seller_slug": "shop",
          "cover_url": None}


@pytest.fixture
def settings(tmp_path, mail_server):
    return make_settings(tmp_path, smtp_url=mail_server.url, public_url="https://shop.example")


@pytest.fixture
async def user(services, token_for):
    user_id, token = await token_for("pref-user")
    async with services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE users SET email = 'pref@example.com' WHERE id = $1::uuid", user_id)
    return user_id, {"Authorization": f"Bearer {token}"}


def by_kind(body: dict) -> dict:
    return {i["kind"]: i for i in body["items"]}


async def queue(services, kind: str, user_id: str, key: str) -> int:
    async with services.db.tx(SYSTEM) as conn:
        return await services.outbox.queue(conn, kind, [user_id], STREAM, key)


async def test_preferences_list_every_user_kind_and_refuse_a_transactional_one(client, user):
    user_id, auth = user
    resp = await client.get(PREFS, headers=auth)
    assert resp.status == 200
    body = await resp.json()
    items = by_kind(body)
    assert "auth.sign_in_code" not in items and "contact.ack" not in items  # mails to an address only
    assert items["order.confirmed"] == {"kind": "order.confirmed", "label": "Order confirmed", "transactional": True,
                                        "email": True, "push": True}
    assert items["follow.live_now"]["transactional"] is False and body["all_optional"] == {"email": True,
                                                                                           "push": True}

    resp = await client.put(PREFS, headers=auth, json={"items": [
        {"kind": "follow.live_now", "email": False}, {"kind": "order.shipped", "email": False},
        {"kind": "no.such_kind", "push": False}, {"kind": "follow.live_now", "push": False}]})
    assert resp.status == 422
    err = (await resp.json())["error"]
    assert err["code"] == "validation_failed"
    assert err["details"] == [
        {"field": "items.1.kind", "message": "order.shipped is transactional and cannot be turned off"},
        {"field": "items.2.kind", "message": "unknown notification kind 'no.such_kind'"},
        {"field": "items.3.kind", "message": "follow.live_now is given twice"}]
    assert by_kind(await (await client.get(PREFS, headers=auth)).json())["follow.live_now"]["email"] is True

    resp = await client.put(PREFS, headers=auth, json={"items": [
        {"kind": "follow.live_now", "email": False}, {"kind": "seller.stock_low", "push": False},
        {"kind": "order.shipped", "email": True}]})
    assert resp.status == 200
    items = by_kind(await resp.json())
    assert (items["follow.live_now"]["email"], items["follow.live_now"]["push"]) == (False, True)
    assert (items["seller.stock_low"]["email"], items["seller.stock_low"]["push"]) == (True, False)

    for bad in ({"items": []}, {"items": [{"kind": "x"}]}, {"items": [{"kind": "*", "email": "no"}]},
                {"items": [{"kind": "*"}] * 100}, {"other": 1}):
        resp = await client.put(PREFS, headers=auth, json=bad)
        assert resp.status in (400, 422), bad
    assert (await client.get(PREFS)).status == 401


async def test_one_click_unsubscribe_with_the_link_of_a_real_mail(client, services, user, mail_server, dsn):
    user_id, auth = user
    assert await queue(services, "follow.live_now", user_id, "live:1") == 1
    await services.jobs.drain()
    [msg] = await mail_server.wait(1)
    link = msg["List-Unsubscribe"][1:-1]
    assert link.startswith("https://shop.example/unsubscribe?t=")
    path = link.removeprefix("https://shop.example")

    page = await client.get(path, headers={"Accept": "text/html"})  # opening the link changes nothing
    html = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert "“A seller you follow is live” emails" in html and 'name="List-Unsubscribe" value="One-Click"' in html
    assert f'action="{path}"' in html
    assert by_kind(await (await client.get(PREFS, headers=auth)).json())["follow.live_now"]["email"] is True

    for _ in range(2):  # what a mail provider posts (RFC 8058); twice is the same
        resp = await client.post(path, data="List-Unsubscribe=One-Click", headers=ONE_CLICK)
        assert resp.status == 200 and await resp.json() == {"unsubscribed": "“A seller you follow is live” emails"}
    items = by_kind(await (await client.get(PREFS, headers=auth)).json())
    assert items["follow.live_now"]["email"] is False and items["follow.reminder"]["email"] is True
    assert await queue(services, "follow.live_now", user_id, "live:2") == 0
    assert await queue(services, "follow.reminder", user_id, "reminder:1") == 1
    metrics = await (await client.get("/metrics")).text()
    assert re.search(r'live_emails_total\{outcome="sent",worker="\d+"\} 1\.0', metrics), metrics[-3000:]
    assert re.search(r'live_smtp_connections_total\{worker="\d+"\} 1\.0', metrics)
    async with owner_connection(dsn) as owner:
        assert await owner.fetchval("SELECT count(*) FROM notification_prefs WHERE user_id = $1::uuid",
                                    user_id) == 1


async def test_unsubscribe_from_all_optional_kinds_keeps_transactional_ones(client, services, user):
    user_id, auth = user
    await client.put(PREFS, headers=auth, json={"items": [{"kind": "seller.stock_low", "email": True}]})
    path = services.outbox.tokens.path(user_id, "*")
    resp = await client.post(path, data="List-Unsubscribe=One-Click", headers={**ONE_CLICK, "Accept": "text/html"})
    assert resp.status == 200 and "no more all optional emails" in await resp.text()
    body = await (await client.get(PREFS, headers=auth)).json()
    items = by_kind(body)
    assert body["all_optional"]["email"] is False
    assert not any(i["email"] for i in items.values() if not i["transactional"])
    assert all(i["email"] for i in items.values() if i["transactional"])
    assert await queue(services, "seller.stock_low", user_id, "low:1") == 0
    async with services.db.tx(SYSTEM) as conn:
        assert await services.outbox.queue(conn, "order.canceled", [user_id], {
            "order_id": "o", "number": "LV-1", "reason": "r"}, "cancel:1") == 1
    # one kind turned back on wins over the '*'
    await client.put(PREFS, headers=auth, json={"items": [{"kind": "follow.reminder", "email": True}]})
    assert await queue(services, "follow.reminder", user_id, "reminder:2") == 1


async def test_a_bad_token_is_a_clear_400(client, services, user):
    user_id, _ = user
    good = services.outbox.tokens.token(user_id, "follow.live_now")
    body, mac = good.split(".")
    transactional = services.outbox.tokens.token(user_id, "order.shipped")
    for token in ("", "abc", good[:-2] + ("AA" if not good.endswith("AA") else "BB"), f"{body}.", f".{mac}",
                  body + "x." + mac, "%%%.%%%", "a" * 500, transactional, good + ".x"):
        resp = await client.post(f"/unsubscribe?t={token}", data="List-Unsubscribe=One-Click", headers=ONE_CLICK)
        assert resp.status == 400, token
        err = (await resp.json())["error"]
        assert err["code"] == "invalid" and "link" in err["message"]
        page = await client.get(f"/unsubscribe?t={token}", headers={"Accept": "text/html"})
        assert page.status == 400 and "This link does not work" in await page.text()
    assert (await client.post("/unsubscribe", headers=ONE_CLICK)).status == 400
    resp = await client.post(f"/unsubscribe?t={good}", data="x" * 5000, headers=ONE_CLICK)
    assert resp.status == 413
    forged = UnsubscribeTokens("another-secret-" + "y" * 40).token(user_id, "follow.live_now")
    assert (await client.post(f"/unsubscribe?t={forged}", headers=ONE_CLICK)).status == 400


async def test_a_token_of_a_deleted_user_answers_done(client, services):
    path = services.outbox.tokens.path("00000000-0000-4000-8000-000000000001", "follow.live_now")
    resp = await client.post(path, data="List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert resp.status == 200


async def test_row_level_security_a_user_sees_and_writes_only_their_own_preferences(services, token_for):
    a, _ = await token_for("pref-a")
    b, _ = await token_for("pref-b")
    async with services.db.tx(SYSTEM) as conn:
        await conn.execute("INSERT INTO notification_prefs (user_id, kind, email) VALUES ($1::uuid, '*', false), "
                           "($2::uuid, '*', false)", a, b)
    async with services.db.tx(Principal(a, "customer")) as conn:
        assert [str(r["user_id"]) for r in await conn.fetch("SELECT user_id FROM notification_prefs")] == [a]
        assert await conn.fetchval("UPDATE notification_prefs SET email = true WHERE user_id = $1::uuid "
                                   "RETURNING 1", b) is None
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with services.db.tx(Principal(a, "customer")) as conn:
            await conn.execute("INSERT INTO notification_prefs (user_id, kind, email) VALUES ($1::uuid, "
                               "'follow.live_now', false)", b)
