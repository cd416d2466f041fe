"""The audit log of moderation and stream control: every ban, mute, moderator grant/revoke, slow-mode change,
REST update, start and end writes one row, in the transaction of the change (a refused change leaves none).
Real Socket.IO clients and REST over real sockets, real PostgreSQL."""
from __future__ import annotations

from tests.rooms.harness import SELLER, err


async def audit_rows(live, after_id: int = 0) -> list[dict]:
    from live.auth.principal import SYSTEM

    async with live.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch(
            """SELECT id, actor_id::text AS actor_id, action, entity, entity_id, data FROM audit_log
               WHERE action LIKE 'stream.%' AND id > $1 ORDER BY id""", after_id)
    return [dict(r) for r in rows]


async def last_id(live) -> int:
    rows = await audit_rows(live)
    return rows[-1]["id"] if rows else 0


async def test_socket_moderation_is_audited(live):
    seller = await live.seller()
    mod = await live.viewer("audited-mod")
    target = await live.viewer("audited-target")
    stream_id = seller.joined["stream"]["id"]
    start = await last_id(live)
    assert (await seller.call("moderator:add", {"stream_id": "demo", "user_id": mod.user_id}))["ok"]
    ack = await mod.call("user:mute", {"stream_id": "demo", "user_id": target.user_id, "seconds": 90})
    assert ack["ok"]
    assert (await mod.call("chat:slowmode", {"stream_id": "demo", "seconds": 15}))["ok"]
    assert (await mod.call("user:ban", {"stream_id": "demo", "user_id": target.user_id, "reason": "spam"}))["ok"]
    assert (await seller.call("moderator:remove", {"stream_id": "demo", "user_id": mod.user_id}))["ok"]
    rows = await audit_rows(live, start)
    assert [(r["action"], r["actor_id"]) for r in rows] == [
        ("stream.moderator", seller.user_id), ("stream.mute", mod.user_id), ("stream.slow_mode", mod.user_id),
        ("stream.ban", mod.user_id), ("stream.moderator", seller.user_id)]
    assert all(r["entity"] == "livestream" and r["entity_id"] == stream_id for r in rows)
    granted, muted, slow, banned, revoked = (r["data"] for r in rows)
    assert granted == {"user_id": mod.user_id, "before": {"moderator": False}, "after": {"moderator": True}}
    assert revoked == {"user_id": mod.user_id, "before": {"moderator": True}, "after": {"moderator": False}}
    assert muted["user_id"] == target.user_id and muted["before"] == {"muted_until": None}
    assert muted["after"] == {"muted_until": ack["until"], "seconds": 90}
    assert slow == {"before": {"slow_mode_seconds": 0}, "after": {"slow_mode_seconds": 15}}
    assert banned == {"user_id": target.user_id, "before": {"banned": False},
                      "after": {"banned": True, "reason": "spam"}}


async def test_refused_moderation_writes_no_audit_row(live):
    seller = await live.seller()
    plain = await live.viewer("not-a-mod")
    start = await last_id(live)
    nobody = "00000000-0000-4000-8000-000000000002"
    # the change fails inside its transaction (unknown user): the audit row goes with it
    for event, extra in (("user:mute", {"seconds": 30}), ("user:ban", {}), ("moderator:add", {})):
        assert err(await seller.call(event, {"stream_id": "demo", "user_id": nobody, **extra})) == "not_found"
    # refused before any change
    assert err(await plain.call("chat:slowmode", {"stream_id": "demo", "seconds": 5})) == "forbidden"
    assert err(await plain.call("user:ban", {"stream_id": "demo", "user_id": seller.user_id})) == "forbidden"
    assert await audit_rows(live, start) == []


async def test_rest_update_start_and_end_are_audited(live):
    seller_id, token = await live.user(SELLER, "seller")
    status, created = await live.api("POST", "/livestreams", token, {"title": "Audited show", "slug": "audited"})
    assert status == 201
    start = await last_id(live)
    status, body = await live.api("PATCH", "/livestreams/audited", token,
                                  {"title": "Audited show", "description": "now with words", "slow_mode_seconds": 10})
    assert status == 200, body
    assert (await live.api("PATCH", "/livestreams/audited", token, {"title": "Audited show"}))[0] == 200  # no change
    assert (await live.api("POST", "/livestreams/audited/start", token))[0] == 200
    assert (await live.api("POST", "/livestreams/audited/end", token))[0] == 200
    rows = await audit_rows(live, start)
    assert [r["action"] for r in rows] == ["stream.update", "stream.slow_mode", "stream.start", "stream.end"]
    assert all(r["actor_id"] == seller_id and r["entity_id"] == created["id"] for r in rows)
    update, slow, started, ended = (r["data"] for r in rows)
    assert update == {"before": {"description": None, "slow_mode_seconds": 0},
                      "after": {"description": "now with words", "slow_mode_seconds": 10}}  # only what changed
    assert slow == {"before": {"slow_mode_seconds": 0}, "after": {"slow_mode_seconds": 10}}
    assert started["before"] == {"status": "scheduled", "started_at": None}
    assert started["after"]["status"] == "live" and started["after"]["started_at"]
    assert ended["before"] == {"status": "live", "ended_at": None}
    assert ended["after"]["status"] == "ended" and ended["after"]["ended_at"]
    # the socket's stream:start/stream:end go through the same service
    seller = await live.seller()
    start = await last_id(live)
    assert err(await seller.call("stream:end", {"stream_id": "demo"})) is None
    rows = await audit_rows(live, start)
    assert [(r["action"], r["actor_id"]) for r in rows] == [("stream.end", seller_id)]
    assert rows[0]["data"]["before"]["status"] == "live" and rows[0]["data"]["after"]["status"] == "ended"
