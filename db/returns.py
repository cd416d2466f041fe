"""Queries on returns, their items and status history (migrations/0019_returns.sql).

Locks, in the order every payment transaction takes them: the order's payment (a receipt, which refunds), the
order, its return, then the variants (a restock)."""
from __future__ import annotations

from datetime import datetime

import asyncpg

OPEN = ("requested", "approved", "in_transit", "delivered")  # at most one per order (returns_one_open_key)
COUNTED = ("requested", "approved", "in_transit", "delivered", "received", "refunded")  # units taken back

RETURN_JSON = """jsonb_build_object(
    'id', r.id, 'order_id', r.order_id, 'order_number', o.number, 'status', r.status, 'user_id', r.user_id,
    'seller', jsonb_build_object('id', s.id, 'name', s.display_name),
    'reason', r.reason, 'note', r.note, 'decision_note', r.decision_note,
    'refund_minor', r.refund_minor, 'currency', r.currency,
    'items', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'order_item_id', ri.order_item_id, 'variant_id', i.variant_id, 'title', i.title, 'sku', i.sku,
        'quantity', ri.quantity, 'restocked', ri.restocked, 'unit_price_minor', i.unit_price_minor) ORDER BY i.sku)
        FROM return_items ri JOIN order_items i ON i.id = ri.order_item_id WHERE ri.return_id = r.id), '[]'::jsonb),
    'label', (SELECT jsonb_build_object('shipment_id', sh.id, 'status', sh.status, 'carrier', sh.carrier,
        'tracking_number', sh.tracking_number, 'tracking_url', sh.tracking_url, 'label_url', sh.label_url)
        FROM shipments sh WHERE sh.id = r.return_label_id),
    'refund', (SELECT jsonb_build_object('id', pr.id, 'status', pr.status, 'amount_minor', pr.amount_minor,
        'currency', pr.currency, 'requested_at', pr.created_at, 'refunded_at', pr.succeeded_at)
        FROM payment_refunds pr WHERE pr.return_id = r.id),
    'created_at', r.created_at, 'updated_at', r.updated_at, 'decided_at', r.decided_at,
    'received_at', r.received_at)"""
_FROM = "FROM returns r JOIN orders o ON o.id = r.order_id JOIN sellers s ON s.id = r.seller_id"


# ---- the order a return is about ----

async def lock_order(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    """The order, locked, with what a return needs: its parties, amounts, the buyer's address, and when it was
    delivered (the outbound shipment's delivered_at, else the order history's last move to delivered: shipped by
    hand)."""
    return await conn.fetchrow(
        """SELECT o.id::text AS id, o.status, o.user_id::text AS user_id, o.seller_id::text AS seller_id,
                  s.user_id::text AS seller_user_id, o.subtotal_minor, o.discount_minor, o.shipping_minor,
                  o.total_minor, o.currency, o.shipping_address,
                  coalesce((SELECT max(sh.delivered_at) FROM shipments sh
                            WHERE sh.order_id = o.id AND sh.kind = 'outbound' AND sh.status = 'delivered'),
                           (SELECT max(h.created_at) FROM order_status_history h
                            WHERE h.order_id = o.id AND h.to_status = 'delivered')) AS delivered_at
           FROM orders o JOIN sellers s ON s.id = o.seller_id
           WHERE o.id = $1::uuid FOR UPDATE OF o""", order_id)


async def order_items(conn: asyncpg.Connection, order_id: str) -> list[asyncpg.Record]:
    """The order's lines with how many units returns already take back (those not refused or canceled)."""
    return await conn.fetch(
        """SELECT i.id::text AS id, i.variant_id::text AS variant_id, i.quantity, i.unit_price_minor,
                  coalesce((SELECT sum(ri.quantity) FROM return_items ri JOIN returns r ON r.id = ri.return_id
                            WHERE ri.order_item_id = i.id AND r.status = ANY($2::text[])), 0)::int AS returned
           FROM order_items i WHERE i.order_id = $1::uuid""", order_id, list(COUNTED))


async def open_return(conn: asyncpg.Connection, order_id: str) -> str | None:
    return await conn.fetchval("SELECT id::text FROM returns WHERE order_id = $1::uuid AND status = ANY($2::text[])",
                               order_id, list(OPEN))


# ---- writing ----

async def insert(conn: asyncpg.Connection, *, order_id: str, user_id: str, seller_id: str, reason: str,
                 note: str | None, currency: str, items: list[tuple[str, int]]) -> str:
    return_id = await conn.fetchval(
        """INSERT INTO returns (order_id, user_id, seller_id, reason, note, currency)
           VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6) RETURNING id::text""",
        order_id, user_id, seller_id, reason, note, currency)
    await conn.execute(
        """INSERT INTO return_items (return_id, order_item_id, quantity)
           SELECT $1::uuid, i, q FROM unnest($2::uuid[], $3::int[]) AS t(i, q)""",
        return_id, [i for i, _ in items], [q for _, q in items])
    return return_id


async def add_history(conn: asyncpg.Connection, return_id: str, from_status: str | None, to_status: str,
                      actor_kind: str, actor_id: str | None, reason: str | None) -> None:
    await conn.execute(
        """INSERT INTO return_status_history (return_id, from_status, to_status, actor_kind, actor_id, reason)
           VALUES ($1::uuid, $2, $3, $4, $5::uuid, $6)""",
        return_id, from_status, to_status, actor_kind, actor_id, reason)


async def lock(conn: asyncpg.Connection, return_id: str) -> asyncpg.Record | None:
    """The return, locked, with its order's parties (take the order's lock first: `order_of`, `lock_order`)."""
    return await conn.fetchrow(
        """SELECT r.id::text AS id, r.order_id::text AS order_id, r.status, r.user_id::text AS user_id,
                  r.seller_id::text AS seller_id, s.user_id::text AS seller_user_id, r.currency,
                  r.return_label_id::text AS return_label_id,
                  (SELECT sh.status FROM shipments sh WHERE sh.id = r.return_label_id) AS label_status
           FROM returns r JOIN sellers s ON s.id = r.seller_id WHERE r.id = $1::uuid FOR UPDATE OF r""", return_id)


async def parties(conn: asyncpg.Connection, return_id: str) -> asyncpg.Record | None:
    """The return's buyer (user_id) and its seller's user (seller_user_id), unlocked."""
    return await conn.fetchrow(
        """SELECT r.user_id::text AS user_id, s.user_id::text AS seller_user_id
           FROM returns r JOIN sellers s ON s.id = r.seller_id WHERE r.id = $1::uuid""", return_id)


async def order_of(conn: asyncpg.Connection, return_id: str) -> str | None:
    return await conn.fetchval("SELECT order_id::text FROM returns WHERE id = $1::uuid", return_id)


async def by_label(conn: asyncpg.Connection, shipment_id: str) -> asyncpg.Record | None:
    """The return whose label this shipment is, locked."""
    return await conn.fetchrow(
        """SELECT id::text AS id, order_id::text AS order_id, status FROM returns
           WHERE return_label_id = $1::uuid FOR UPDATE""", shipment_id)


async def update(conn: asyncpg.Connection, return_id: str, **fields) -> None:
    """Set columns of the return (names from the service, never from a client)."""
    cols = list(fields)
    sets = ", ".join(f"{c} = ${n}" for n, c in enumerate(cols, start=2))
    await conn.execute(f"UPDATE returns SET {sets} WHERE id = $1::uuid", return_id, *[fields[c] for c in cols])


async def items(conn: asyncpg.Connection, return_id: str) -> list[asyncpg.Record]:
    """The return's lines with the order line's variant, product and price (and the order's amounts to share the
    discount by)."""
    return await conn.fetch(
        """SELECT ri.order_item_id::text AS order_item_id, ri.quantity, i.variant_id::text AS variant_id,
                  i.product_id::text AS product_id, i.unit_price_minor
           FROM return_items ri JOIN order_items i ON i.id = ri.order_item_id
           WHERE ri.return_id = $1::uuid ORDER BY ri.order_item_id""", return_id)


async def set_restocked(conn: asyncpg.Connection, return_id: str, restock: list[tuple[str, int]]) -> None:
    await conn.execute(
        """UPDATE return_items ri SET restocked = t.q FROM unnest($2::uuid[], $3::int[]) AS t(i, q)
           WHERE ri.return_id = $1::uuid AND ri.order_item_id = t.i""",
        return_id, [i for i, _ in restock], [q for _, q in restock])


# ---- reading ----

async def return_json(conn: asyncpg.Connection, return_id: str) -> dict | None:
    return await conn.fetchval(f"SELECT {RETURN_JSON} {_FROM} WHERE r.id = $1::uuid", return_id)


async def history(conn: asyncpg.Connection, return_id: str) -> list[dict]:
    rows = await conn.fetch(
        """SELECT from_status AS "from", to_status AS "to", actor_kind, actor_id::text AS actor_id, reason,
                  created_at AS at
           FROM return_status_history WHERE return_id = $1::uuid ORDER BY id""", return_id)
    return [dict(r) for r in rows]


async def listing(conn: asyncpg.Connection, *, user_id: str | None = None, sellers_of: str | None = None,
                  status: str | None = None, before: tuple[datetime, str] | None = None,
                  limit: int = 20) -> list[asyncpg.Record]:
    """Returns newest first: a buyer's (user_id), the shops of a seller's user (sellers_of), or all the caller may
    see (neither: admins)."""
    return await conn.fetch(
        f"""SELECT {RETURN_JSON} AS j, r.created_at, r.id::text AS id {_FROM}
            WHERE ($1::uuid IS NULL OR r.user_id = $1::uuid)
              AND ($2::uuid IS NULL OR s.user_id = $2::uuid)
              AND ($3::text IS NULL OR r.status = $3)
              AND ($4::timestamptz IS NULL OR (r.created_at, r.id) < ($4, $5::uuid))
            ORDER BY r.created_at DESC, r.id DESC LIMIT $6""",
        user_id, sellers_of, status, before[0] if before else None, before[1] if before else None, limit)
