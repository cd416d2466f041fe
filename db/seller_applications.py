"""Queries on the applications to become a seller (`seller_applications`, migration 0031): inserted by their user
(RLS: seller_applications_own_insert), listed and decided by admins (seller_applications_privileged)."""
from __future__ import annotations

from datetime import datetime

import asyncpg

_COLS = """a.id::text AS id, a.user_id::text AS user_id, u.email AS user_email, u.name AS user_name, a.shop_name,
           a.about, a.status, a.created_at, a.decided_at, a.decided_by::text AS decided_by, a.note"""


async def insert(conn: asyncpg.Connection, user_id: str, shop_name: str, about: str) -> str:
    """A pending application; asyncpg.UniqueViolationError when the user has one pending already."""
    return await conn.fetchval(
        "INSERT INTO seller_applications (user_id, shop_name, about) VALUES ($1::uuid, $2, $3) RETURNING id::text",
        user_id, shop_name, about)


async def get(conn: asyncpg.Connection, application_id: str, *, lock: bool = False) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT {_COLS} FROM seller_applications a JOIN users u ON u.id = a.user_id WHERE a.id = $1::uuid"
        + (" FOR UPDATE OF a" if lock else ""), application_id)
    return dict(row) if row is not None else None


async def latest_of(conn: asyncpg.Connection, user_id: str) -> dict | None:
    row = await conn.fetchrow(
        f"""SELECT {_COLS} FROM seller_applications a JOIN users u ON u.id = a.user_id WHERE a.user_id = $1::uuid
            ORDER BY a.created_at DESC, a.id DESC LIMIT 1""", user_id)
    return dict(row) if row is not None else None


async def has_pending(conn: asyncpg.Connection, user_id: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM seller_applications WHERE user_id = $1::uuid AND status = 'pending')", user_id)


async def listing(conn: asyncpg.Connection, status: str | None, after: tuple[int, datetime, str] | None,
                  limit: int) -> list[dict]:
    """`status` None: every application, pending ones first, each group newest first; else that status, newest
    first. `after`: (rank, created_at, id) of the previous page's last row (rank 0 pending, 1 decided)."""
    rows = await conn.fetch(
        f"""SELECT {_COLS}, (a.status <> 'pending')::int AS rank
            FROM seller_applications a JOIN users u ON u.id = a.user_id
            WHERE ($1::text IS NULL OR a.status = $1)
              AND ($2::int IS NULL
                   OR (a.status <> 'pending')::int > $2
                   OR ((a.status <> 'pending')::int = $2 AND (a.created_at, a.id) < ($3::timestamptz, $4::uuid)))
            ORDER BY (a.status <> 'pending'), a.created_at DESC, a.id DESC LIMIT $5""",
        status, after[0] if after else None, after[1] if after else None, after[2] if after else None, limit)
    return [dict(r) for r in rows]


async def decide(conn: asyncpg.Connection, application_id: str, status: str, admin_id: str,
                 note: str | None) -> None:
    await conn.execute(
        """UPDATE seller_applications SET status = $2, decided_at = now(), decided_by = $3::uuid, note = $4
           WHERE id = $1::uuid AND status = 'pending'""", application_id, status, admin_id, note)


async def name_shop(conn: asyncpg.Connection, seller_id: str, display_name: str) -> None:
    """An approved applicant's kept shop (they were a seller before) takes the name they applied with."""
    await conn.execute("UPDATE sellers SET display_name = $2 WHERE id = $1::uuid", seller_id, display_name)
