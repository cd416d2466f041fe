"""Queries on the contact form's messages (`contacts`, migrations 0001 and 0026): stored by live/contact.py as
system, listed, read and marked answered by admins (RLS: contacts_privileged)."""
from __future__ import annotations

from datetime import datetime

import asyncpg

_SUMMARY = """c.id::text AS id, c.name, c.email, c.subject, left(c.message, $PREVIEW) AS preview, c.status,
              c.created_at, c.read_at, c.answered_at, c.answered_by::text AS answered_by, a.name AS answered_by_name"""
PREVIEW_CHARS = 160  # the list shows this much of each message
_LIST = _SUMMARY.replace("$PREVIEW", str(PREVIEW_CHARS))
_ONE = """c.id::text AS id, c.name, c.email, c.subject, c.message, c.status, c.ip, c.user_agent, c.created_at,
          c.read_at, c.read_by::text AS read_by, c.answered_at, c.answered_by::text AS answered_by,
          a.name AS answered_by_name"""


async def insert(conn: asyncpg.Connection, *, name: str, email: str, subject: str, message: str, status: str,
                 ip: str | None, user_agent: str | None) -> str:
    return await conn.fetchval(
        "INSERT INTO contacts (name, email, subject, message, status, ip, user_agent) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id::text", name, email, subject, message, status, ip,
        user_agent)


async def listing(conn: asyncpg.Connection, status: str | None, before: tuple[datetime, str] | None,
                  limit: int) -> list[dict]:
    """Newest first. `status` None: every status but spam. `before`: (created_at, id) of the last row of the
    previous page."""
    rows = await conn.fetch(
        f"""SELECT {_LIST} FROM contacts c LEFT JOIN users a ON a.id = c.answered_by
            WHERE (CASE WHEN $1::text IS NULL THEN c.status <> 'spam' ELSE c.status = $1 END)
              AND ($2::timestamptz IS NULL OR (c.created_at, c.id) < ($2, $3::uuid))
            ORDER BY c.created_at DESC, c.id DESC LIMIT $4""",
        status, before[0] if before else None, before[1] if before else None, limit)
    return [dict(r) for r in rows]


async def get(conn: asyncpg.Connection, contact_id: str, *, lock: bool = False) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT {_ONE} FROM contacts c LEFT JOIN users a ON a.id = c.answered_by WHERE c.id = $1::uuid"
        + (" FOR UPDATE OF c" if lock else ""), contact_id)
    return dict(row) if row is not None else None


async def mark_read(conn: asyncpg.Connection, contact_id: str, reader: str) -> None:
    """A new message becomes read (by whom, when); any other status is kept."""
    await conn.execute("UPDATE contacts SET status = 'read', read_at = now(), read_by = $2::uuid "
                       "WHERE id = $1::uuid AND status = 'new'", contact_id, reader)


async def mark_answered(conn: asyncpg.Connection, contact_id: str, admin: str) -> None:
    await conn.execute(
        "UPDATE contacts SET status = 'answered', answered_at = now(), answered_by = $2::uuid, "
        "read_at = coalesce(read_at, now()), read_by = coalesce(read_by, $2::uuid) WHERE id = $1::uuid",
        contact_id, admin)
