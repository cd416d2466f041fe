"""Queries on chat messages. Inserts are batched by live.chat.writer; ids come from the table's sequence."""
from __future__ import annotations

import asyncpg

MSG_COLS = """m.id, m.seq, m.livestream_id::text AS stream_id, m.text, m.created_at,
    json_build_object('id', u.id, 'name', u.name, 'role', u.role) AS user"""


async def reserve_ids(conn: asyncpg.Connection, n: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT nextval(pg_get_serial_sequence('chat_messages', 'id')) FROM generate_series(1, $1)", n)
    return [r[0] for r in rows]


async def insert_many(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """rows: (id, stream_id, user_id, text, seq, created_at, deleted)"""
    await conn.executemany(
        """INSERT INTO chat_messages (id, livestream_id, user_id, text, seq, created_at, deleted_at)
           OVERRIDING SYSTEM VALUE VALUES ($1, $2::uuid, $3::uuid, $4, $5, $6, CASE WHEN $7 THEN now() END)
           ON CONFLICT (id) DO NOTHING""", rows)


async def recent(conn: asyncpg.Connection, stream_id: str, limit: int, before: int | None = None):
    """The stream's messages in the order they were said (their time; ids are handed out in blocks per worker,
    so with several workers they do not give the order), oldest first; `before` pages back from a message id."""
    rows = await conn.fetch(
        f"""SELECT {MSG_COLS} FROM chat_messages m JOIN users u ON u.id = m.user_id
            WHERE m.livestream_id = $1::uuid AND m.deleted_at IS NULL
              AND ($3::bigint IS NULL
                   OR (m.created_at, m.id) < (SELECT b.created_at, b.id FROM chat_messages b WHERE b.id = $3))
            ORDER BY m.created_at DESC, m.id DESC LIMIT $2""", stream_id, limit, before)
    return list(reversed(rows))


async def mark_deleted(conn: asyncpg.Connection, stream_id: str, message_id: int, by: str) -> bool:
    status = await conn.execute(
        """UPDATE chat_messages SET deleted_at = now(), deleted_by = $3::uuid
           WHERE id = $2 AND livestream_id = $1::uuid AND deleted_at IS NULL""", stream_id, message_id, by)
    return status.endswith(" 1")
