"""Queries on the email outbox: mail written in the caller's transaction, then taken in batches (SKIP LOCKED, so
several workers share the queue) and marked sent or failed."""
from __future__ import annotations

import asyncpg


async def enqueue(conn: asyncpg.Connection, to: str, subject: str, body: str) -> None:
    await conn.execute("INSERT INTO email_outbox (to_address, subject, body) VALUES ($1, $2, $3)", to, subject, body)


async def take_due(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Up to `limit` unsent mails with fewer than 5 attempts, oldest first, locked (others' locked ones skipped)."""
    return await conn.fetch(
        """SELECT id, to_address, subject, body FROM email_outbox
           WHERE sent_at IS NULL AND attempts < 5 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""", limit)


async def mark_sent(conn: asyncpg.Connection, mail_id: int) -> None:
    await conn.execute("UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = $1", mail_id)


async def mark_failed(conn: asyncpg.Connection, mail_id: int, error: str) -> None:
    await conn.execute("UPDATE email_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                       mail_id, error)
