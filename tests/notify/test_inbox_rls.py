"""Row-level security of notifications (migration 0024), as the app's role: a user's query without a WHERE clause
sees only their own rows and can mark only those read; nobody but the system inserts directly (events go through
notifications_add); the system sees all."""
from __future__ import annotations

import asyncpg
import pytest

from live.auth.principal import SYSTEM, Principal
from live.notify import notify
from tests.rooms.harness import make_user


async def test_a_user_sees_and_marks_only_their_own(db):
    async with db.tx(SYSTEM) as conn:
        alice = (await make_user(conn, "alice"))["id"]
        bob = (await make_user(conn, "bob"))["id"]
        data = {"order_id": "o", "number": "LV-1", "reason": "r"}
        await notify(conn, "order.canceled", [alice, bob], data, "order.canceled:o:1")
        await notify(conn, "order.canceled", [bob], data, "order.canceled:p:1")
    as_alice = Principal(alice, "customer")
    async with db.tx(as_alice) as conn:
        assert [str(r["user_id"]) for r in await conn.fetch("SELECT user_id FROM notifications")] == [alice]
        assert await conn.execute("UPDATE notifications SET read_at = now()") == "UPDATE 1"
    async with db.tx(as_alice) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # only read_at and delivered_at may be changed
            await conn.execute("UPDATE notifications SET data = '{}'::jsonb")
    async with db.tx(as_alice) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # a row for someone else, written directly
            await conn.execute("INSERT INTO notifications (user_id, kind, key) VALUES ($1::uuid, 'order.canceled', "
                               "'forged')", bob)
    async with db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT user_id::text, read_at IS NOT NULL AS read FROM notifications ORDER BY id")
    assert sorted((r["user_id"], r["read"]) for r in rows) == sorted([(alice, True), (bob, False), (bob, False)])
