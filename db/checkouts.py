"""Queries on checkout requests: the Idempotency-Key replay records of POST /checkout."""
from __future__ import annotations

import asyncpg


async def claim_checkout(conn: asyncpg.Connection, user_id: str, key: str, request_hash: str) -> bool:
    """True when this request is the first with its key (the row is ours until the transaction ends; a
    concurrent duplicate waits on it)."""
    return bool(await conn.fetchval(
        """INSERT INTO checkout_requests (user_id, key, request_hash) VALUES ($1::uuid, $2, $3)
           ON CONFLICT (user_id, key) DO NOTHING RETURNING true""", user_id, key, request_hash))


async def checkout_request(conn: asyncpg.Connection, user_id: str, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT request_hash, status, response, now() - updated_at AS age FROM checkout_requests
           WHERE user_id = $1::uuid AND key = $2""", user_id, key)


async def store_checkout(conn: asyncpg.Connection, user_id: str, key: str, status: str, response: dict) -> None:
    await conn.execute("""UPDATE checkout_requests SET status = $3, response = $4
                          WHERE user_id = $1::uuid AND key = $2""", user_id, key, status, response)


async def purge_checkouts(conn: asyncpg.Connection, older_than_seconds: int, limit: int = 1000) -> int:
    """Forget idempotency keys older than the window (their checkouts stay; only the replay record goes)."""
    status = await conn.execute(
        """DELETE FROM checkout_requests WHERE (user_id, key) IN (
               SELECT user_id, key FROM checkout_requests
               WHERE created_at < now() - make_interval(secs => $1) AND status <> 'processing' LIMIT $2)""",
        older_than_seconds, limit)
    return int(status.split()[-1])
