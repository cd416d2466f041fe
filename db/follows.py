"""Queries on follows (a viewer following a seller), the sellers' public profiles, and the set-based reads the
follower notifications use (every follower, and the ones under the email cap, each one statement)."""
from __future__ import annotations

from datetime import datetime

import asyncpg

from db import streams as streams_db
from db.prefs import allowed_sql
from live.ids import is_uuid

_STREAMS = "FROM livestreams s JOIN sellers se ON se.id = s.seller_id"  # the aliases of streams_db.STREAM_COLS
SELLER_COLS = "s.id::text AS id, s.user_id::text AS user_id, s.display_name, s.slug, s.bio, s.created_at"


async def seller(conn: asyncpg.Connection, id_or_slug: str) -> asyncpg.Record | None:
    """A seller by id or slug."""
    if is_uuid(id_or_slug):
        return await conn.fetchrow(f"SELECT {SELLER_COLS} FROM sellers s WHERE s.id = $1::uuid", id_or_slug)
    return await conn.fetchrow(f"SELECT {SELLER_COLS} FROM sellers s WHERE s.slug = $1", id_or_slug)


async def lock_follower(conn: asyncpg.Connection, user_id: str) -> None:
    """Serialize one user's follows (held to the end of the transaction), so the per-user cap holds under
    concurrent requests."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('follows:' || $1::text, 0))", user_id)


async def count_of_follower(conn: asyncpg.Connection, user_id: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM follows WHERE follower_id = $1::uuid", user_id)


async def follow(conn: asyncpg.Connection, seller_id: str, user_id: str) -> bool:
    """True when the follow is new (following twice adds nothing)."""
    return await conn.fetchval(
        """INSERT INTO follows (seller_id, follower_id) VALUES ($1::uuid, $2::uuid)
           ON CONFLICT (seller_id, follower_id) DO NOTHING RETURNING true""", seller_id, user_id) is not None


async def unfollow(conn: asyncpg.Connection, seller_id: str, user_id: str) -> bool:
    """True when there was a follow to remove."""
    return await conn.fetchval(
        "DELETE FROM follows WHERE seller_id = $1::uuid AND follower_id = $2::uuid RETURNING true",
        seller_id, user_id) is not None


async def is_following(conn: asyncpg.Connection, seller_id: str, user_id: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM follows WHERE seller_id = $1::uuid AND follower_id = $2::uuid)",
        seller_id, user_id)


async def follower_count(conn: asyncpg.Connection, seller_id: str) -> int:
    """The seller's followers (app_follower_count: a count anyone may read; the rows stay private)."""
    return await conn.fetchval("SELECT app_follower_count($1::uuid)", seller_id)


async def of_follower(conn: asyncpg.Connection, user_id: str, before: tuple[datetime, str] | None,
                      limit: int) -> list[asyncpg.Record]:
    """The sellers a user follows, newest follow first; `before` is the (created_at, seller_id) of the last row of
    the previous page. Each with whether the seller is live now."""
    since, after = before or (None, None)
    return await conn.fetch(
        """SELECT f.seller_id::text AS seller_id, f.created_at, s.display_name, s.slug,
                  EXISTS (SELECT 1 FROM livestreams l WHERE l.seller_id = f.seller_id AND l.status = 'live') AS live
           FROM follows f JOIN sellers s ON s.id = f.seller_id
           WHERE f.follower_id = $1::uuid
             AND ($2::timestamptz IS NULL OR (f.created_at, f.seller_id) < ($2::timestamptz, $3::uuid))
           ORDER BY f.created_at DESC, f.seller_id DESC LIMIT $4""", user_id, since, after, limit)


async def follower_ids(conn: asyncpg.Connection, seller_id: str) -> list[str]:
    """Every follower of the seller (the in-app audience of a "live now" or a reminder): one index scan."""
    rows = await conn.fetch("SELECT follower_id::text FROM follows WHERE seller_id = $1::uuid", seller_id)
    return [r[0] for r in rows]


async def claim_email(conn: asyncpg.Connection, seller_id: str, kind: str, interval_seconds: float) -> list[str]:
    """The followers who may be emailed `kind` about the seller now (not emailed about it for `interval_seconds`,
    with an email address, and not having turned that email off), marked emailed in the same statement: at most
    one email per seller per follower per interval, whatever the kind. Runs in the notifying transaction, so a
    rollback unmarks them."""
    rows = await conn.fetch(
        f"""UPDATE follows f SET emailed_at = now()
            FROM users u
            WHERE f.seller_id = $1::uuid AND u.id = f.follower_id AND u.email IS NOT NULL
              AND (f.emailed_at IS NULL OR f.emailed_at < now() - make_interval(secs => $2))
              AND {allowed_sql("email", "$3", "f.follower_id")}
            RETURNING f.follower_id::text""", seller_id, float(interval_seconds), kind)
    return [r[0] for r in rows]


async def seller_streams(conn: asyncpg.Connection, seller_id: str, upcoming: int) -> list[asyncpg.Record]:
    """The seller's live streams (newest first) then up to `upcoming` scheduled ones (soonest first, unscheduled
    last) for the public profile; the columns of db/streams.py's `get`."""
    return await conn.fetch(
        f"""(SELECT {streams_db.STREAM_COLS} {_STREAMS}
             WHERE s.seller_id = $1::uuid AND s.status = 'live' ORDER BY s.started_at DESC LIMIT 5)
            UNION ALL
            (SELECT {streams_db.STREAM_COLS} {_STREAMS}
             WHERE s.seller_id = $1::uuid AND s.status = 'scheduled'
             ORDER BY s.scheduled_at ASC NULLS LAST, s.id LIMIT $2)""", seller_id, upcoming)


async def set_cover(conn: asyncpg.Connection, stream_id: str, cover_url: str) -> asyncpg.Record | None:
    """Set the stream's cover; the row before (its `cover_url`, read under the row lock) when it changed, None when
    it was that already or the stream is gone."""
    return await conn.fetchrow(
        """UPDATE livestreams l SET cover_url = $2, updated_at = now()
           FROM (SELECT id, cover_url FROM livestreams WHERE id = $1::uuid FOR UPDATE) old
           WHERE l.id = old.id AND old.cover_url IS DISTINCT FROM $2
           RETURNING old.cover_url""", stream_id, cover_url)
