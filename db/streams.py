"""Queries on livestreams, their products and spotlights, moderators, bans and mutes."""
from __future__ import annotations

import asyncpg

from db.pool import update_columns
from live.ids import is_uuid

STREAM_COLS = """s.id::text AS id, s.slug, s.title, s.description, s.status, s.scheduled_at, s.started_at,
    s.ended_at, s.livekit_room, s.thumbnail_url, s.cover_url, s.spotlight_product_id::text AS spotlight_product_id,
    s.peak_viewers, s.blocked_words, s.slow_mode_seconds, s.created_at,
    s.seller_id::text AS seller_id, se.user_id::text AS seller_user_id, se.display_name AS seller_name,
    se.slug AS seller_slug"""
_FROM = "FROM livestreams s JOIN sellers se ON se.id = s.seller_id"
async def get(conn: asyncpg.Connection, id_or_slug: str) -> asyncpg.Record | None:
    if is_uuid(id_or_slug):
        return await conn.fetchrow(f"SELECT {STREAM_COLS} {_FROM} WHERE s.id = $1::uuid", id_or_slug)
    return await conn.fetchrow(f"SELECT {STREAM_COLS} {_FROM} WHERE s.slug = $1", id_or_slug)


async def list_by_status(conn: asyncpg.Connection, status: str, limit: int, seller_id: str | None = None):
    order = {"live": "s.started_at DESC", "scheduled": "s.scheduled_at ASC NULLS LAST",
             "ended": "s.ended_at DESC"}[status]
    return await conn.fetch(
        f"""SELECT {STREAM_COLS} {_FROM} WHERE s.status = $1 AND ($3::uuid IS NULL OR s.seller_id = $3::uuid)
            ORDER BY {order} LIMIT $2""", status, limit, seller_id)


async def create(conn: asyncpg.Connection, seller_id: str, fields: dict) -> asyncpg.Record:
    row = await conn.fetchrow(
        """INSERT INTO livestreams (seller_id, slug, title, description, scheduled_at, thumbnail_url, livekit_room,
                                    blocked_words)
           VALUES ($1::uuid, $2, $3, $4, $5, $6, 'live-' || $2, coalesce($7::text[], '{}')) RETURNING id::text""",
        seller_id, fields["slug"], fields["title"], fields.get("description"), fields.get("scheduled_at"),
        fields.get("thumbnail_url"), fields.get("blocked_words"))
    return await get(conn, row["id"])


async def update(conn: asyncpg.Connection, stream_id: str, fields: dict) -> asyncpg.Record | None:
    await update_columns(conn, "livestreams", stream_id, fields, (
        "title", "description", "scheduled_at", "thumbnail_url", "blocked_words", "slow_mode_seconds"))
    return await get(conn, stream_id)


async def set_status(conn: asyncpg.Connection, stream_id: str, status: str) -> asyncpg.Record | None:
    if status == "live":
        await conn.execute("""UPDATE livestreams SET status = 'live', started_at = coalesce(started_at, now()),
                              ended_at = NULL WHERE id = $1::uuid""", stream_id)
    elif status == "ended":
        await conn.execute("""UPDATE livestreams SET status = 'ended', started_at = coalesce(started_at, now()),
                              ended_at = now(), spotlight_product_id = NULL WHERE id = $1::uuid""", stream_id)
    return await get(conn, stream_id)


async def set_spotlight(conn: asyncpg.Connection, stream_id: str, product_id: str | None) -> None:
    await conn.execute("UPDATE livestreams SET spotlight_product_id = $2::uuid WHERE id = $1::uuid",
                       stream_id, product_id)
    if product_id is not None:
        await conn.execute("""UPDATE livestream_products SET highlighted_at = now()
                              WHERE livestream_id = $1::uuid AND product_id = $2::uuid""", stream_id, product_id)


async def streams_spotlighting(conn: asyncpg.Connection, variant_id: str) -> list[tuple[str, str]]:
    """(stream id, product id) of every stream not ended whose spotlighted product has this variant (for stock
    updates when several workers share the rooms)."""
    rows = await conn.fetch(
        """SELECT l.id::text, l.spotlight_product_id::text FROM livestreams l
           JOIN product_variants v ON v.product_id = l.spotlight_product_id
           WHERE v.id = $1::uuid AND l.status <> 'ended'""", variant_id)
    return [(r[0], r[1]) for r in rows]


async def raise_peak(conn: asyncpg.Connection, stream_id: str, viewers: int) -> None:
    await conn.execute("UPDATE livestreams SET peak_viewers = $2 WHERE id = $1::uuid AND peak_viewers < $2",
                       stream_id, viewers)


async def reaction_totals(conn: asyncpg.Connection, stream_id: str) -> dict[str, int]:
    return await conn.fetchval("SELECT reaction_totals FROM livestreams WHERE id = $1::uuid", stream_id) or {}


async def save_reaction_totals(conn: asyncpg.Connection, stream_id: str, totals: dict[str, int]) -> None:
    """Store cumulative reaction totals, never lowering a kind already stored (several workers write them, each
    with the totals it last saw)."""
    await conn.execute(
        """UPDATE livestreams s SET reaction_totals = s.reaction_totals || coalesce((
               SELECT jsonb_object_agg(e.key, greatest(e.value::bigint,
                                                       coalesce((s.reaction_totals ->> e.key)::bigint, 0)))
               FROM jsonb_each_text($2::jsonb) AS e), '{}')
           WHERE s.id = $1::uuid""", stream_id, totals)


async def count_owned_products(conn: asyncpg.Connection, seller_id: str, product_ids: list[str]) -> int:
    """How many of these (distinct) products belong to the seller."""
    return await conn.fetchval("SELECT count(*) FROM products WHERE id = ANY($1::uuid[]) AND seller_id = $2::uuid",
                               product_ids, seller_id)


async def attach_products(conn: asyncpg.Connection, stream_id: str, product_ids: list[str]) -> None:
    await conn.execute(
        """INSERT INTO livestream_products (livestream_id, product_id, position)
           SELECT $1::uuid, p, o::int FROM unnest($2::uuid[]) WITH ORDINALITY AS t(p, o)
           ON CONFLICT (livestream_id, product_id) DO UPDATE SET position = excluded.position""",
        stream_id, product_ids)


async def attach_product(conn: asyncpg.Connection, stream_id: str, product_id: str) -> None:
    await conn.execute(
        """INSERT INTO livestream_products (livestream_id, product_id, position)
           SELECT $1::uuid, $2::uuid, coalesce(max(position), 0) + 1 FROM livestream_products
           WHERE livestream_id = $1::uuid
           ON CONFLICT (livestream_id, product_id) DO NOTHING""", stream_id, product_id)


async def product_ids(conn: asyncpg.Connection, stream_id: str) -> list[str]:
    rows = await conn.fetch("""SELECT product_id::text FROM livestream_products WHERE livestream_id = $1::uuid
                               ORDER BY position""", stream_id)
    return [r[0] for r in rows]


PRODUCT_JSON = """json_build_object(
    'id', p.id, 'title', p.title, 'description', p.description, 'image_urls', p.image_urls, 'status', p.status,
    'seller_id', p.seller_id,
    'variants', coalesce((SELECT json_agg(json_build_object(
        'id', v.id, 'sku', v.sku, 'color', v.color, 'size', v.size, 'price_minor', v.price_minor,
        'currency', v.currency, 'available', v.on_hand - v.reserved - v.sold) ORDER BY v.sku)
        FROM product_variants v WHERE v.product_id = p.id), '[]'::json))"""


async def products_json(conn: asyncpg.Connection, product_ids: list[str]) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT {PRODUCT_JSON} AS product FROM unnest($1::uuid[]) WITH ORDINALITY AS t(pid, o)
            JOIN products p ON p.id = t.pid ORDER BY t.o""", product_ids)
    return [r["product"] for r in rows]


async def moderation_state(conn: asyncpg.Connection, stream_id: str) -> dict:
    mods = await conn.fetch("SELECT user_id::text FROM stream_moderators WHERE livestream_id = $1::uuid", stream_id)
    bans = await conn.fetch("SELECT user_id::text FROM stream_bans WHERE livestream_id = $1::uuid", stream_id)
    mutes = await conn.fetch("""SELECT user_id::text, extract(epoch FROM until) AS until FROM stream_mutes
                                WHERE livestream_id = $1::uuid AND until > now()""", stream_id)
    return {"moderators": {r[0] for r in mods}, "bans": {r[0] for r in bans},
            "mutes": {r[0]: float(r[1]) for r in mutes}}


async def set_moderator(conn: asyncpg.Connection, stream_id: str, user_id: str, by: str, on: bool) -> None:
    if on:
        await conn.execute("""INSERT INTO stream_moderators (livestream_id, user_id, added_by)
                              VALUES ($1::uuid, $2::uuid, $3::uuid) ON CONFLICT DO NOTHING""", stream_id, user_id, by)
    else:
        await conn.execute("DELETE FROM stream_moderators WHERE livestream_id = $1::uuid AND user_id = $2::uuid",
                           stream_id, user_id)


async def ban(conn: asyncpg.Connection, stream_id: str, user_id: str, by: str, reason: str | None) -> None:
    await conn.execute("""INSERT INTO stream_bans (livestream_id, user_id, banned_by, reason)
                          VALUES ($1::uuid, $2::uuid, $3::uuid, $4) ON CONFLICT DO NOTHING""",
                       stream_id, user_id, by, reason)


async def unban(conn: asyncpg.Connection, stream_id: str, user_id: str) -> bool:
    """Lift a ban; False when there was none."""
    return await conn.fetchval("""DELETE FROM stream_bans WHERE livestream_id = $1::uuid AND user_id = $2::uuid
                                  RETURNING true""", stream_id, user_id) is not None


async def bans(conn: asyncpg.Connection, stream_id: str, before: tuple | None, limit: int) -> list[dict]:
    """The stream's bans newest first, with the banned user's and the banner's names; `before` is the
    (created_at, user_id) of the last row of the previous page."""
    since, after_user = before or (None, None)
    rows = await conn.fetch(
        """SELECT b.user_id::text AS user_id, u.name AS user_name, b.reason, b.banned_by::text AS banned_by,
                  bu.name AS banned_by_name, b.created_at
           FROM stream_bans b JOIN users u ON u.id = b.user_id LEFT JOIN users bu ON bu.id = b.banned_by
           WHERE b.livestream_id = $1::uuid
             AND ($2::timestamptz IS NULL OR (b.created_at, b.user_id) < ($2::timestamptz, $3::uuid))
           ORDER BY b.created_at DESC, b.user_id DESC LIMIT $4""", stream_id, since, after_user, limit)
    return [{"user": {"id": r["user_id"], "name": r["user_name"]}, "reason": r["reason"],
             "banned_by": {"id": r["banned_by"], "name": r["banned_by_name"]} if r["banned_by"] else None,
             "created_at": r["created_at"]} for r in rows]


async def mute(conn: asyncpg.Connection, stream_id: str, user_id: str, by: str, seconds: int) -> None:
    await conn.execute(
        """INSERT INTO stream_mutes (livestream_id, user_id, muted_by, until)
           VALUES ($1::uuid, $2::uuid, $3::uuid, now() + make_interval(secs => $4))
           ON CONFLICT (livestream_id, user_id) DO UPDATE SET until = excluded.until, muted_by = excluded.muted_by""",
        stream_id, user_id, by, seconds)
