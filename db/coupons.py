"""Queries on coupons: lookup by code, one use taken or given back, and the sellers' own."""
from __future__ import annotations

import asyncpg

from db.pool import update_columns

COUPON_COLS = """id::text AS id, seller_id::text AS seller_id, code, kind, value, currency, starts_at, ends_at,
    usage_limit, used_count, min_subtotal_minor, active, created_at"""


async def coupons_by_code(conn: asyncpg.Connection, code: str, seller_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {COUPON_COLS} FROM coupons
            WHERE upper(code) = upper($1) AND (seller_id IS NULL OR seller_id = ANY($2::uuid[]))""",
        code, seller_ids)


async def take_coupon(conn: asyncpg.Connection, coupon_id: str) -> bool:
    """One use of the coupon, atomically: false when its usage limit is reached (or it just ended)."""
    return bool(await conn.fetchval(
        """UPDATE coupons SET used_count = used_count + 1
           WHERE id = $1::uuid AND active AND (usage_limit IS NULL OR used_count < usage_limit)
             AND (starts_at IS NULL OR starts_at <= now()) AND (ends_at IS NULL OR ends_at > now())
           RETURNING true""", coupon_id))


async def insert_coupon(conn: asyncpg.Connection, seller_id: str | None, c: dict) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO coupons (seller_id, code, kind, value, currency, starts_at, ends_at, usage_limit,
                                 min_subtotal_minor, active)
            VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COUPON_COLS}""",
        seller_id, c["code"], c["kind"], c["value"], c.get("currency"), c.get("starts_at"), c.get("ends_at"),
        c.get("usage_limit"), c.get("min_subtotal_minor", 0), c.get("active", True))


async def coupon(conn: asyncpg.Connection, coupon_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COUPON_COLS} FROM coupons WHERE id = $1::uuid", coupon_id)


async def update_coupon(conn: asyncpg.Connection, coupon_id: str, fields: dict) -> asyncpg.Record | None:
    await update_columns(conn, "coupons", coupon_id, fields,
                         ("active", "starts_at", "ends_at", "usage_limit", "min_subtotal_minor"))
    return await conn.fetchrow(f"SELECT {COUPON_COLS} FROM coupons WHERE id = $1::uuid", coupon_id)


async def seller_coupons(conn: asyncpg.Connection, seller_id: str | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {COUPON_COLS} FROM coupons WHERE seller_id IS NOT DISTINCT FROM $1::uuid
            ORDER BY created_at DESC""", seller_id)


async def release_coupons(conn: asyncpg.Connection, coupon_ids: set[str]) -> None:
    for coupon_id in sorted(coupon_ids):
        await conn.execute("UPDATE coupons SET used_count = used_count - 1 WHERE id = $1::uuid AND used_count > 0",
                           coupon_id)
