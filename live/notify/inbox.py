"""A user's in-app notifications over REST: newest first in keyset pages (an opaque cursor, live/cursors.py),
optionally unread only, with the unread count; marked read by ids or all at once. Each user reads and marks
only their own (the service filters by the caller, and row-level security holds it in the database)."""
from __future__ import annotations

from typing import Sequence

from db import Database
from db import notifications as notifications_db
from live.auth import policy
from live.auth.principal import Principal
from live.cursors import decode_cursor, encode_cursor
from live.notify.notices import item

PAGE_DEFAULT = 20
PAGE_MAX = 100
MARK_MAX = 100  # ids in one mark-read request
UNREAD_MAX = notifications_db.UNREAD_MAX


class Inbox:
    def __init__(self, db: Database):
        self._db = db

    async def page(self, principal: Principal, *, limit: int = PAGE_DEFAULT, cursor: str | None = None,
                   unread: bool = False) -> dict:
        """`{items, next_cursor, unread}`: up to `limit` (1..PAGE_MAX) notifications older than the cursor's."""
        user_id = policy.signed_in(principal).user_id
        limit = max(1, min(limit, PAGE_MAX))
        before = decode_cursor(cursor, "bigint")[0] if cursor else None
        async with self._db.tx(principal) as conn:
            rows = await notifications_db.page(conn, user_id, limit=limit + 1, before_id=before,
                                               unread_only=unread)
            count = await notifications_db.unread_count(conn, user_id)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [item(r, r["kind"], r["data"]) for r in rows],
                "next_cursor": encode_cursor(rows[-1]["id"]) if more else None, "unread": count}

    async def mark_read(self, principal: Principal, *, ids: Sequence[int] = (), everything: bool = False) -> dict:
        """Mark the caller's notifications of `ids` (at most MARK_MAX; others' and unknown ids are ignored) or all
        of them read: `{unread}` after."""
        user_id = policy.signed_in(principal).user_id
        async with self._db.tx(principal) as conn:
            if everything:
                await notifications_db.mark_all_read(conn, user_id)
            elif ids:
                await notifications_db.mark_read(conn, user_id, list(ids)[:MARK_MAX])
            return {"unread": await notifications_db.unread_count(conn, user_id)}
