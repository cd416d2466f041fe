"""Queries on LiveKit webhook events (`livekit_events`, one row per event id), each stream's media status
(`stream_media`), its LiveKit ingress (`livekit_ingresses`) and the recordings LiveKit's egress makes
(`recordings` rows of source `livekit_egress`). All run as SYSTEM (the first three are privileged-only)."""
from __future__ import annotations

from typing import Any

import asyncpg


async def store_event(conn: asyncpg.Connection, event_id: str, event: str, room: str | None, identity: str | None,
                      livestream_id: str | None, payload: dict[str, Any]) -> bool:
    """Store an event once: True when this call stored it, False when its id was already stored (a retry)."""
    row = await conn.fetchval(
        """INSERT INTO livekit_events (event_id, event, room, identity, livestream_id, payload)
           VALUES ($1, $2, $3, $4, $5::uuid, $6) ON CONFLICT (event_id) DO NOTHING RETURNING true""",
        event_id, event, room, identity, livestream_id, payload)
    return bool(row)


async def stream_for_room(conn: asyncpg.Connection, room: str) -> asyncpg.Record | None:
    """The stream whose LiveKit room is `room` (its livekit_room, or `live-<slug>` when it has none), with its
    seller's user id (the identity that publishes)."""
    return await conn.fetchrow(
        """SELECT l.id::text AS id, s.user_id::text AS seller_user_id FROM livestreams l
           JOIN sellers s ON s.id = l.seller_id
           WHERE l.livekit_room = $1
              OR (l.livekit_room IS NULL AND left($1, 5) = 'live-' AND l.slug = substr($1, 6))
           LIMIT 1""", room)


async def apply(conn: asyncpg.Connection, livestream_id: str, event: str, *, room_active: bool | None = None,
                participants: int = 0, tracks: int = 0, reset_tracks: bool = False,
                reset_all: bool = False) -> tuple[int, int]:
    """Change a stream's media status by deltas (`participants`, `tracks`, never below 0), or reset it. Returns
    the seller's published tracks before and after (the row is locked first: concurrent events queue up)."""
    was = await conn.fetchval(
        "SELECT publisher_tracks FROM stream_media WHERE livestream_id = $1::uuid FOR UPDATE", livestream_id)
    now = await conn.fetchval(
        """INSERT INTO stream_media (livestream_id, room_active, participants, publisher_tracks, last_event)
           VALUES ($1::uuid, coalesce($3, true), greatest($4, 0), greatest($5, 0), $2)
           ON CONFLICT (livestream_id) DO UPDATE SET
             room_active = CASE WHEN $7 THEN false ELSE coalesce($3, stream_media.room_active) END,
             participants = CASE WHEN $7 THEN 0 ELSE greatest(stream_media.participants + $4, 0) END,
             publisher_tracks = CASE WHEN $6 OR $7 THEN 0
                                     ELSE greatest(stream_media.publisher_tracks + $5, 0) END,
             last_event = $2, updated_at = now()
           RETURNING publisher_tracks""",
        livestream_id, event, room_active, participants, tracks, reset_tracks, reset_all)
    return was or 0, now


async def status(conn: asyncpg.Connection, livestream_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT room_active, participants, publisher_tracks, last_event, updated_at FROM stream_media
           WHERE livestream_id = $1::uuid""", livestream_id)


# ---- ingresses (livekit_ingresses: one per stream) ----

_INGRESS = "ingress_id, input, url, stream_key, status, error"


async def ingress_of(conn: asyncpg.Connection, livestream_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_INGRESS} FROM livekit_ingresses WHERE livestream_id = $1::uuid",
                               livestream_id)


async def add_ingress(conn: asyncpg.Connection, livestream_id: str, ingress_id: str, kind: str, url: str,
                      stream_key: str, created_by: str | None) -> bool:
    """Keep a new ingress as the stream's: False when the stream already has one (the caller's is extra)."""
    row = await conn.fetchval(
        """INSERT INTO livekit_ingresses (livestream_id, ingress_id, input, url, stream_key, created_by)
           VALUES ($1::uuid, $2, $3, $4, $5, $6::uuid) ON CONFLICT (livestream_id) DO NOTHING RETURNING true""",
        livestream_id, ingress_id, kind, url, stream_key, created_by)
    return bool(row)


async def drop_ingress(conn: asyncpg.Connection, livestream_id: str, ingress_id: str) -> None:
    await conn.execute("DELETE FROM livekit_ingresses WHERE livestream_id = $1::uuid AND ingress_id = $2",
                       livestream_id, ingress_id)


async def take_ended_ingress(conn: asyncpg.Connection, livestream_id: str) -> str | None:
    """Forget the ingress of a stream that has ended; its id (None: the stream is not ended or has none)."""
    return await conn.fetchval(
        """DELETE FROM livekit_ingresses i USING livestreams l
           WHERE i.livestream_id = $1::uuid AND l.id = i.livestream_id AND l.status = 'ended'
           RETURNING i.ingress_id""", livestream_id)


async def take_ingress_on_end(conn: asyncpg.Connection, livestream_id: str) -> str | None:
    """In the transaction that ends a stream, run as its seller or an admin (live/rooms/node.py set_status, after
    its own authorization): forget the stream's ingress, its id. `livekit_ingresses` is privileged-only (it holds
    stream keys), so this one statement runs as `system` and the caller's role is set back right after (both
    settings are local to the transaction; a failure aborts it)."""
    was = await conn.fetchval("SELECT current_setting('app.role', true)")
    await conn.execute("SELECT set_config('app.role', 'system', true)")
    ingress_id = await take_ended_ingress(conn, livestream_id)
    await conn.execute("SELECT set_config('app.role', $1, true)", was or "")
    return ingress_id


async def stream_ended_locked(conn: asyncpg.Connection, livestream_id: str) -> bool:
    """Whether the stream has ended, its row share-locked to the end of the transaction: an end running at once
    (which updates the row, then takes the ingress) waits for this transaction, or this one for the end."""
    return bool(await conn.fetchval(
        "SELECT status = 'ended' FROM livestreams WHERE id = $1::uuid FOR SHARE", livestream_id))


async def ingress_state(conn: asyncpg.Connection, ingress_id: str, status: str, error: str | None) -> None:
    """An ingress webhook's state (an ingress that is no stream's changes nothing)."""
    await conn.execute(
        "UPDATE livekit_ingresses SET status = $2, error = $3, updated_at = now() WHERE ingress_id = $1",
        ingress_id, status[:64], error[:1000] if error else None)


# ---- LiveKit egress recordings (`recordings` rows of source livekit_egress, one per egress id) ----

async def add_egress(conn: asyncpg.Connection, livestream_id: str, egress_id: str) -> bool:
    """The row of an egress just started (status recording); False when a webhook already wrote it."""
    row = await conn.fetchval(
        """INSERT INTO recordings (livestream_id, source, egress_id, content_type)
           VALUES ($1::uuid, 'livekit_egress', $2, 'video/mp4') ON CONFLICT (egress_id) DO NOTHING RETURNING true""",
        livestream_id, egress_id)
    return bool(row)


async def egress_update(conn: asyncpg.Connection, livestream_id: str, egress_id: str, status: str, *,
                        started_at=None, ended_at=None, duration_ms: int | None = None, size: int | None = None,
                        location: str | None = None, error: str | None = None) -> str:
    """Apply an egress webhook to its row (made here if the start job has not written it yet). A row that is
    ready or failed stays so (a late `egress_updated` does not bring it back to recording). Returns the status."""
    return await conn.fetchval(
        """INSERT INTO recordings (livestream_id, source, egress_id, content_type, status, started_at, ended_at,
                                   duration_ms, bytes, location, error)
           VALUES ($1::uuid, 'livekit_egress', $2, 'video/mp4', $3, coalesce($4, now()), $5, $6, $7, $8, $9)
           ON CONFLICT (egress_id) DO UPDATE SET
             status = CASE WHEN recordings.status = 'recording' THEN $3 ELSE recordings.status END,
             started_at = coalesce($4, recordings.started_at),
             ended_at = coalesce($5, recordings.ended_at),
             duration_ms = coalesce($6, recordings.duration_ms),
             bytes = coalesce($7, recordings.bytes),
             location = coalesce($8, recordings.location),
             error = coalesce($9, recordings.error)
           RETURNING status""",
        livestream_id, egress_id, status, started_at, ended_at, duration_ms, size, location, error)


async def egresses_recording(conn: asyncpg.Connection, livestream_id: str) -> list[str]:
    """The egress ids of the stream's LiveKit recordings still `recording`."""
    rows = await conn.fetch(
        """SELECT egress_id FROM recordings WHERE livestream_id = $1::uuid AND source = 'livekit_egress'
             AND status = 'recording' ORDER BY started_at LIMIT 100""", livestream_id)
    return [r["egress_id"] for r in rows]


async def is_live(conn: asyncpg.Connection, livestream_id: str) -> bool:
    return bool(await conn.fetchval("SELECT status = 'live' FROM livestreams WHERE id = $1::uuid", livestream_id))
