"""Queries on orders, their lines, status history and shipments."""
from __future__ import annotations

from datetime import datetime

import asyncpg

from db import shipments as shipments_db
from db.shipments import SHIPMENT_JSON

ORDER_JSON = f"""jsonb_build_object(
    'id', o.id, 'number', o.number, 'status', o.status, 'user_id', o.user_id,
    'seller', jsonb_build_object('id', s.id, 'name', s.display_name),
    'livestream_id', o.livestream_id,
    'subtotal_minor', o.subtotal_minor, 'discount_minor', o.discount_minor, 'shipping_minor', o.shipping_minor,
    'total_minor', o.total_minor, 'currency', o.currency,
    'shipping_rate', CASE WHEN jsonb_typeof(o.shipping_rate) = 'object' THEN jsonb_build_object(
        'carrier', o.shipping_rate->'carrier', 'service', o.shipping_rate->'service',
        'service_name', o.shipping_rate->'service_name', 'estimated_days', o.shipping_rate->'estimated_days',
        'amount_minor', o.shipping_rate->'amount_minor', 'currency', o.shipping_rate->'currency',
        'free_shipping', coalesce(o.shipping_rate->'free_shipping', 'false'::jsonb)) END,
    'coupon_code', (SELECT c.code FROM coupons c WHERE c.id = o.coupon_id),
    'shipping_address', o.shipping_address, 'created_at', o.created_at, 'updated_at', o.updated_at,
    'refund', (SELECT jsonb_build_object('status', r.status, 'amount_minor', r.amount_minor, 'currency', r.currency,
        'requested_at', r.created_at, 'refunded_at', r.succeeded_at) FROM payment_refunds r
        WHERE r.order_id = o.id AND r.return_id IS NULL),
    'items', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'id', i.id, 'product_id', i.product_id, 'variant_id', i.variant_id, 'title', i.title, 'sku', i.sku,
        'quantity', i.quantity, 'unit_price_minor', i.unit_price_minor, 'currency', i.currency,
        'line_total_minor', i.unit_price_minor * i.quantity, 'livestream_id', i.livestream_id) ORDER BY i.sku)
        FROM order_items i WHERE i.order_id = o.id), '[]'::jsonb),
    'shipment', (SELECT {SHIPMENT_JSON} FROM shipments sh WHERE sh.order_id = o.id AND sh.kind = 'outbound'
        ORDER BY (sh.status IN ('voided', 'purchase_failed')), sh.created_at DESC LIMIT 1))"""
_FROM = "FROM orders o JOIN sellers s ON s.id = o.seller_id"


# ---- creating orders ----

async def insert_order(conn: asyncpg.Connection, *, user_id: str, seller_id: str, livestream_id: str | None,
                       subtotal: int, discount: int, total: int, currency: str, coupon_id: str | None,
                       address: dict, checkout_key: str, status: str) -> str:
    return await conn.fetchval(
        """INSERT INTO orders (user_id, seller_id, livestream_id, status, subtotal_minor, discount_minor,
                               shipping_minor, total_minor, currency, coupon_id, shipping_address, checkout_key)
           VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, 0, $7, $8, $9::uuid, $10, $11) RETURNING id::text""",
        user_id, seller_id, livestream_id, status, subtotal, discount, total, currency, coupon_id, address,
        checkout_key)


async def insert_items(conn: asyncpg.Connection, order_id: str, lines: list) -> None:
    await conn.executemany(
        """INSERT INTO order_items (order_id, product_id, variant_id, title, sku, quantity, unit_price_minor,
                                    currency, livestream_id)
           VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7, $8, $9::uuid)""",
        [(order_id, ln["product_id"], ln["variant_id"], ln["title"], ln["sku"], ln["quantity"], ln["price_minor"],
          ln["currency"], ln["livestream_id"]) for ln in lines])


async def add_history(conn: asyncpg.Connection, order_ids: list[str], from_status: str | None, to_status: str,
                      actor_id: str | None, actor_kind: str, reason: str | None) -> None:
    await conn.execute(
        """INSERT INTO order_status_history (order_id, from_status, to_status, actor_id, actor_kind, reason)
           SELECT o, $2, $3, $4::uuid, $5, $6 FROM unnest($1::uuid[]) AS o""",
        order_ids, from_status, to_status, actor_id, actor_kind, reason)


# ---- order state ----

async def lock_order(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT o.id::text AS id, o.status, o.user_id::text AS user_id, o.seller_id::text AS seller_id,
                  s.user_id::text AS seller_user_id, o.total_minor, o.coupon_id::text AS coupon_id
           FROM orders o JOIN sellers s ON s.id = o.seller_id WHERE o.id = $1::uuid FOR UPDATE OF o""", order_id)


async def set_status(conn: asyncpg.Connection, order_ids: list[str], status: str) -> None:
    await conn.execute("UPDATE orders SET status = $2 WHERE id = ANY($1::uuid[])", order_ids, status)


async def order_lines(conn: asyncpg.Connection, order_ids: list[str]) -> list[tuple[str, int]]:
    rows = await conn.fetch("SELECT variant_id::text, quantity FROM order_items WHERE order_id = ANY($1::uuid[])",
                            order_ids)
    return [(r[0], r[1]) for r in rows]


async def parties(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    """The order's buyer (user_id) and its seller's user (seller_user_id), unlocked."""
    return await conn.fetchrow(
        """SELECT o.user_id::text AS user_id, s.user_id::text AS seller_user_id
           FROM orders o JOIN sellers s ON s.id = o.seller_id WHERE o.id = $1::uuid""", order_id)


# ---- reading ----

async def orders_json(conn: asyncpg.Connection, order_ids: list[str]) -> list[tuple[dict, str]]:
    """(order, the seller's user id) for each order, by number."""
    rows = await conn.fetch(
        f"""SELECT {ORDER_JSON} AS j, s.user_id::text AS seller_user_id {_FROM}
            WHERE o.id = ANY($1::uuid[]) ORDER BY o.number""", order_ids)
    return [(r["j"], r["seller_user_id"]) for r in rows]


async def order_json(conn: asyncpg.Connection, order_id: str) -> dict | None:
    return await conn.fetchval(f"SELECT {ORDER_JSON} {_FROM} WHERE o.id = $1::uuid", order_id)


async def history(conn: asyncpg.Connection, order_id: str) -> list[dict]:
    rows = await conn.fetch(
        """SELECT from_status AS "from", to_status AS "to", actor_id::text AS actor_id, actor_kind, reason,
                  created_at AS at
           FROM order_status_history WHERE order_id = $1::uuid ORDER BY id""", order_id)
    return [dict(r) for r in rows]


async def shipments(conn: asyncpg.Connection, order_id: str, limit: int = 50) -> list[dict]:
    """The order's shipments with their tracking timelines and status histories (db/shipments.py)."""
    return await shipments_db.for_order(conn, order_id, limit=limit)


async def list_orders(conn: asyncpg.Connection, *, user_id: str | None = None, sellers_of: str | None = None,
                      status: str | None = None, stream_id: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, before: tuple[datetime, str] | None = None,
                      limit: int = 20) -> list[asyncpg.Record]:
    """Orders newest first. user_id: the buyer's; sellers_of: the shops of this user (None with neither: all
    the caller may see, i.e. everything for admins)."""
    return await conn.fetch(
        f"""SELECT {ORDER_JSON} AS j, o.created_at, o.id::text AS id {_FROM}
            WHERE ($1::uuid IS NULL OR o.user_id = $1::uuid)
              AND ($2::uuid IS NULL OR s.user_id = $2::uuid)
              AND ($3::text IS NULL OR o.status = $3)
              AND ($4::uuid IS NULL OR o.livestream_id = $4::uuid)
              AND ($5::timestamptz IS NULL OR o.created_at >= $5)
              AND ($6::timestamptz IS NULL OR o.created_at < $6)
              AND ($7::timestamptz IS NULL OR (o.created_at, o.id) < ($7, $8::uuid))
            ORDER BY o.created_at DESC, o.id DESC LIMIT $9""",
        user_id, sellers_of, status, stream_id, since, until, before[0] if before else None,
        before[1] if before else None, limit)


