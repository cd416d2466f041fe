"""The in-app notifications over REST (real app, real PostgreSQL): newest first in cursor pages, the unread
count and filter, marking read by ids or all, another user's notifications invisible and unmarkable, and bad
input answered 4xx."""
from __future__ import annotations

from live.auth.principal import SYSTEM
from live.notify import notify


async def emit(services, user_id: str, n: int, prefix: str = "e") -> None:
    async with services.db.tx(SYSTEM) as conn:
        for i in range(n):
            await notify(conn, "order.canceled", [user_id],
                         {"order_id": f"00000000-0000-0000-0000-{i:012d}", "number": 1000 + i, "reason": "test"},
                         f"{prefix}:{user_id}:{i}")


async def get(client, token, **query):
    resp = await client.get("/api/v1/me/notifications", params={k: str(v) for k, v in query.items()},
                            headers={"Authorization": f"Bearer {token}"})
    return resp.status, await resp.json()


async def mark(client, token, body):
    resp = await client.post("/api/v1/me/notifications/read", json=body, headers={"Authorization": f"Bearer {token}"})
    return resp.status, await resp.json()


async def test_pages_unread_and_marking_read(client, services, token_for):
    alice, a_token = await token_for("alice")
    bob, b_token = await token_for("bob")
    await emit(services, alice, 25)
    await emit(services, bob, 1)
    seen, cursor = [], None
    while True:
        status, page = await get(client, a_token, limit=10, **({"cursor": cursor} if cursor else {}))
        assert status == 200 and page["unread"] == 25
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 25 and [n["id"] for n in seen] == sorted((n["id"] for n in seen), reverse=True)
    newest = seen[0]
    assert (newest["kind"], newest["title"], newest["url"], newest["read_at"]) == (
        "order.canceled", "Order 1024 was canceled", "/account/orders/00000000-0000-0000-0000-000000000024", None)
    assert newest["data"]["reason"] == "test" and newest["created_at"]
    status, default = await get(client, a_token)
    assert status == 200 and len(default["items"]) == 20
    # bob's list is his one notification; alice cannot mark it read
    status, bobs = await get(client, b_token)
    assert status == 200 and bobs["unread"] == 1 and len(bobs["items"]) == 1
    bob_id = bobs["items"][0]["id"]
    assert bob_id not in {n["id"] for n in seen}
    status, out = await mark(client, a_token, {"ids": [seen[0]["id"], seen[1]["id"], seen[2]["id"], bob_id]})
    assert (status, out) == (200, {"unread": 22})
    assert (await get(client, b_token))[1]["unread"] == 1
    status, unread = await get(client, a_token, unread="true", limit=100)
    assert len(unread["items"]) == 22 and seen[0]["id"] not in {n["id"] for n in unread["items"]}
    status, first = await get(client, a_token, limit=1)
    assert first["items"][0]["read_at"] is not None
    # marking again changes nothing; all at once
    assert await mark(client, a_token, {"ids": [seen[0]["id"]]}) == (200, {"unread": 22})
    assert await mark(client, a_token, {"all": True}) == (200, {"unread": 0})
    assert (await get(client, b_token))[1]["unread"] == 1


async def test_bad_input_is_refused_and_strangers_need_a_token(client, token_for):
    _, token = await token_for("carol")
    assert (await client.get("/api/v1/me/notifications")).status == 401
    assert (await client.post("/api/v1/me/notifications/read", json={"all": True})).status == 401
    for query in ({"limit": 0}, {"limit": 101}, {"cursor": "not-a-cursor"}, {"cursor": "WyJ4Il0"}):
        status, body = await get(client, token, **query)
        assert status == 400 and body["error"]["code"] == "invalid", query
    for body in ({}, {"ids": []}, {"ids": list(range(1, 102))}, {"ids": [0]}, {"ids": ["x"]}, {"all": True, "x": 1},
                 {"ids": [2**63]}):
        status, out = await mark(client, token, body)
        assert status == 422 and out["error"]["code"] == "validation_failed", body
    status, page = await get(client, token)
    assert (status, page) == (200, {"items": [], "next_cursor": None, "unread": 0})
