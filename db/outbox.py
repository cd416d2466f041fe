"""Queries on the email outbox: a mail written in the caller's transaction (live/outbox.py `enqueue` adds the
`email.send` job that delivers it), read by that job, then marked sent or failed."""
from __future__ import annotations

import asyncpg


async def insert(conn: asyncpg.Connection, to: str, subject: str, body: str) -> int:
    return await conn.fetchval(
        "INSERT INTO email_outbox (to_address, subject, body) VALUES ($1, $2, $3) RETURNING id", to, subject, body)


async def get(conn: asyncpg.Connection, mail_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, to_address, subject, body, sent_at, attempts FROM email_outbox WHERE id = $1", mail_id)


async def mark_sent(conn: asyncpg.Connection, mail_id: int) -> None:
    await conn.execute("UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = $1 "
                       "AND sent_at IS NULL", mail_id)


async def mark_failed(conn: asyncpg.Connection, mail_id: int, error: str) -> None:
    await conn.execute("UPDATE email_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                       mail_id, error)
