"""Queries on `recordings` (one row per recorded segment: the embedded media server's files, LiveKit's egresses)
and `stream_spotlights` (every spotlight change), for the recorder and the replays (migrations/0029_recordings.sql).
Writes run as SYSTEM (the table is privileged-only for writes); reads as anyone."""
from __future__ import annotations

from datetime import datetime

import asyncpg

from live.ids import is_uuid


async def start(conn: asyncpg.Connection, stream_id: str, file_name: str, content_type: str) -> str:
    """A segment of the embedded server being recorded now (status `recording`): its id."""
    return await conn.fetchval(
        """INSERT INTO recordings (livestream_id, source, file_name, content_type)
           VALUES ($1::uuid, 'embedded', $2, $3) RETURNING id::text""", stream_id, file_name, content_type)


async def finish(conn: asyncpg.Connection, recording_id: str, *, ok: bool, started_at: datetime | None,
                 ended_at: datetime, duration_ms: int | None, size: int | None, width: int | None,
                 height: int | None, error: str | None) -> None:
    """The segment is complete (`ready`, with what it holds) or `failed` (with why)."""
    await conn.execute(
        """UPDATE recordings SET status = CASE WHEN $2 THEN 'ready' ELSE 'failed' END,
                  started_at = coalesce($3, started_at), ended_at = $4, duration_ms = $5, bytes = $6, width = $7,
                  height = $8, error = $9
           WHERE id = $1::uuid""",
        recording_id, ok, started_at, ended_at, duration_ms, size, width, height, error)


async def embedded_recording(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The embedded server's rows still `recording` (on some worker, or left so by one that stopped)."""
    return await conn.fetch(
        """SELECT id::text, file_name, started_at FROM recordings
           WHERE source = 'embedded' AND status = 'recording' AND file_name IS NOT NULL ORDER BY started_at""")


async def settle_stale(conn: asyncpg.Connection, recording_id: str, *, ok: bool, duration_ms: int | None,
                       size: int | None, width: int | None, height: int | None, error: str | None) -> int:
    """Finish a row left `recording` by a worker that stopped (only while it still says so): 1, else 0."""
    status = await conn.execute(
        """UPDATE recordings SET status = CASE WHEN $2 THEN 'ready' ELSE 'failed' END, ended_at = now(),
                  duration_ms = $3, bytes = $4, width = $5, height = $6, error = $7
           WHERE id = $1::uuid AND status = 'recording'""",
        recording_id, ok, duration_ms, size, width, height, error)
    return int(status.split()[-1])


async def stream_id(conn: asyncpg.Connection, id_or_slug: str) -> str | None:
    """The id of a stream named by its id or slug, None when there is none."""
    if is_uuid(id_or_slug):
        return await conn.fetchval("SELECT id::text FROM livestreams WHERE id = $1::uuid", id_or_slug)
    return await conn.fetchval("SELECT id::text FROM livestreams WHERE slug = $1", id_or_slug)


async def is_banned(conn: asyncpg.Connection, stream_id: str, user_id: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM stream_bans WHERE livestream_id = $1::uuid AND user_id = $2::uuid)",
        stream_id, user_id)


async def for_stream(conn: asyncpg.Connection, stream_id: str, limit: int) -> list[asyncpg.Record]:
    """The stream's segments, oldest first (at most `limit`)."""
    return await conn.fetch(
        """SELECT id::text, source, status, file_name, location, content_type, started_at, ended_at, duration_ms,
                  bytes, width, height FROM recordings
           WHERE livestream_id = $1::uuid ORDER BY started_at, id LIMIT $2""", stream_id, limit)


async def spotlights(conn: asyncpg.Connection, stream_id: str, limit: int) -> list[asyncpg.Record]:
    """The stream's spotlight changes, oldest first (at most `limit`), with each product's title (NULL for a
    cleared spotlight, or a product the caller may not see)."""
    return await conn.fetch(
        """SELECT h.product_id::text AS product_id, p.title, h.at FROM stream_spotlights h
           LEFT JOIN products p ON p.id = h.product_id
           WHERE h.livestream_id = $1::uuid ORDER BY h.at, h.id LIMIT $2""", stream_id, limit)
