"""Queries on the browsers' Web Push subscriptions (migrations/0027_web_push.sql), and the set-based read the push
channel uses inside a notification's deliver transaction (every subscription of thousands of users whose
preferences allow push for the kind, one statement)."""
from __future__ import annotations

import asyncpg

from db.prefs import allowed_sql

COLS = "id, user_id::text AS user_id, endpoint, p256dh, auth, created_at, last_ok_at, failures"


async def subscribe(conn: asyncpg.Connection, user_id: str, endpoint: str, p256dh: str, auth: str,
                    keep: int) -> asyncpg.Record:
    """Store the browser's subscription for the user (system: an endpoint another user had becomes this one's, as
    the browser is now theirs), then keep only the user's `keep` newest. Serialized per user (the cap holds under
    concurrent requests)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('push:' || $1::text, 0))", user_id)
    # another user's row of this endpoint is deleted, not taken over: its id (in their queued push.send jobs) must
    # never reach this user's browser
    await conn.execute("DELETE FROM push_subscriptions WHERE endpoint = $2 AND user_id <> $1::uuid", user_id, endpoint)
    row = await conn.fetchrow(
        f"""INSERT INTO push_subscriptions AS s (user_id, endpoint, p256dh, auth)
            VALUES ($1::uuid, $2, $3, $4)
            ON CONFLICT (endpoint) DO UPDATE
            SET user_id = EXCLUDED.user_id, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, created_at = now(),
                failures = 0
            RETURNING {COLS}""", user_id, endpoint, p256dh, auth)
    await conn.execute(
        """DELETE FROM push_subscriptions WHERE user_id = $1::uuid AND id NOT IN (
               SELECT id FROM push_subscriptions WHERE user_id = $1::uuid
               ORDER BY created_at DESC, id DESC LIMIT $2)""",
        user_id, keep)
    return row


async def unsubscribe(conn: asyncpg.Connection, user_id: str, endpoint: str) -> bool:
    """True when the user had a subscription with that endpoint (now deleted)."""
    return await conn.fetchval(
        "DELETE FROM push_subscriptions WHERE user_id = $1::uuid AND endpoint = $2 RETURNING true",
        user_id, endpoint) is not None


async def for_users(conn: asyncpg.Connection, kind: str, user_ids: list[str], *, transactional: bool) -> list[int]:
    """Ids of the subscriptions of `user_ids` that may get a push of `kind`: every one for a transactional kind,
    else those of the users whose preferences allow push for it (notification_prefs.push, '*' included)."""
    allowed = "true" if transactional else allowed_sql("push", "$2", "s.user_id")
    rows = await conn.fetch(
        f"""SELECT s.id FROM push_subscriptions s
            WHERE s.user_id = ANY($1::uuid[]) AND ({allowed}) ORDER BY s.id""",
        list(user_ids), *(() if transactional else (kind,)))
    return [r[0] for r in rows]


async def get_many(conn: asyncpg.Connection, ids: list[int]) -> list[asyncpg.Record]:
    """The subscriptions of `ids` that still exist."""
    return await conn.fetch(f"SELECT {COLS} FROM push_subscriptions WHERE id = ANY($1::bigint[]) ORDER BY id",
                            list(ids))


async def record(conn: asyncpg.Connection, *, ok: list[int], gone: list[int], refused: list[int],
                 max_failures: int) -> int:
    """After a round of pushes: the accepted ones `last_ok_at` now and no failures; the gone ones (404/410)
    deleted; the refused ones one failure more, deleted at `max_failures`. Returns how many were deleted."""
    if ok:
        await conn.execute(
            "UPDATE push_subscriptions SET last_ok_at = now(), failures = 0 WHERE id = ANY($1::bigint[])", ok)
    deleted = 0
    if refused:
        deleted += await conn.fetchval(
            """WITH d AS (DELETE FROM push_subscriptions WHERE id = ANY($1::bigint[]) AND failures + 1 >= $2
                          RETURNING 1)
               SELECT count(*) FROM d""", refused, max_failures)
        await conn.execute(
            "UPDATE push_subscriptions SET failures = failures + 1 WHERE id = ANY($1::bigint[])", refused)
    if gone:
        deleted += await conn.fetchval(
            """WITH d AS (DELETE FROM push_subscriptions WHERE id = ANY($1::bigint[]) RETURNING 1)
               SELECT count(*) FROM d""", gone)
    return deleted
