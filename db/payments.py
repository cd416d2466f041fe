"""Queries on payments and the orders each one pays, and the payments flagged for a human."""
from __future__ import annotations

from datetime import datetime

import asyncpg

from db.pool import update_columns

OPEN = ("requires_action", "processing")  # a payment the buyer may still complete


async def insert_payment(conn: asyncpg.Connection, *, payment_id: str, user_id: str, provider: str, amount: int,
                         currency: str, status: str, order_ids: list[str]) -> None:
    await conn.execute(
        """INSERT INTO payments (id, user_id, provider, status, amount_minor, currency, idempotency_key)
           VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, 'payment-' || $1)""",
        payment_id, user_id, provider, status, amount, currency)
    await conn.execute("""INSERT INTO payment_orders (payment_id, order_id)
                          SELECT $1::uuid, o FROM unnest($2::uuid[]) AS o""", payment_id, order_ids)


PAYMENT_COLS = """p.id::text AS id, p.user_id::text AS user_id, p.provider, p.provider_ref, p.status,
    p.amount_minor, p.currency, p.client_secret, p.authorization_url, p.idempotency_key, p.issue, p.issue_details,
    p.refund_due_minor, p.start_error, p.created_at, p.updated_at"""


async def payment(conn: asyncpg.Connection, payment_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {PAYMENT_COLS} FROM payments p WHERE p.id = $1::uuid"
                               + (" FOR UPDATE" if lock else ""), payment_id)


async def payment_by_ref(conn: asyncpg.Connection, provider: str, ref: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PAYMENT_COLS} FROM payments p WHERE p.provider = $1 AND p.provider_ref = $2 FOR UPDATE",
        provider, ref)


async def payment_of_order(conn: asyncpg.Connection, order_id: str) -> str | None:
    return await conn.fetchval("SELECT payment_id::text FROM payment_orders WHERE order_id = $1::uuid LIMIT 1",
                               order_id)


async def set_payment(conn: asyncpg.Connection, payment_id: str, **fields) -> None:
    await update_columns(conn, "payments", payment_id, fields, fields)  # the callers name the columns


async def record_start(conn: asyncpg.Connection, payment_id: str, provider_ref: str, client_secret: str | None,
                       authorization_url: str | None, status: str) -> None:
    """The provider accepted the payment. A webhook may have been applied already (found by payment id):
    its status stands."""
    await conn.execute(
        """UPDATE payments SET provider_ref = coalesce(provider_ref, $2), client_secret = $3,
                               authorization_url = $4, start_error = NULL,
                               status = CASE WHEN status IN ('requires_action', 'processing') THEN $5 ELSE status END
           WHERE id = $1::uuid""", payment_id, provider_ref, client_secret, authorization_url, status)


async def payment_orders(conn: asyncpg.Connection, payment_id: str) -> list[asyncpg.Record]:
    """The payment's orders, locked in id order."""
    return await conn.fetch(
        """SELECT o.id::text AS id, o.status, o.total_minor, o.coupon_id::text AS coupon_id
           FROM orders o JOIN payment_orders po ON po.order_id = o.id
           WHERE po.payment_id = $1::uuid ORDER BY o.id FOR UPDATE OF o""", payment_id)


async def stale_unpaid(conn: asyncpg.Connection, seconds: int, limit: int) -> list[str]:
    rows = await conn.fetch(
        """SELECT DISTINCT po.payment_id::text FROM orders o JOIN payment_orders po ON po.order_id = o.id
           WHERE o.status = 'pending_payment' AND o.created_at < now() - make_interval(secs => $1)
           LIMIT $2""", seconds, limit)
    return [r[0] for r in rows]


async def lock_unless_locked(conn: asyncpg.Connection, payment_id: str) -> asyncpg.Record | None:
    """The payment (id, status), locked; None when another transaction holds it (a webhook is working on it)."""
    return await conn.fetchrow(
        "SELECT id::text AS id, status FROM payments WHERE id = $1::uuid FOR UPDATE SKIP LOCKED", payment_id)


async def flagged_payments(conn: asyncpg.Connection, issue: str | None, before: tuple[datetime, str] | None,
                           limit: int) -> list[dict]:
    """Payments with an open issue (amount_mismatch, paid_after_cancel, refund_due) or a failed refund (listed
    with refund_due), newest first, each with its orders and refunds; no client secret."""
    rows = await conn.fetch(
        """SELECT p.id::text AS id, p.user_id::text AS user_id, p.provider, p.provider_ref, p.status, p.amount_minor,
                  p.currency, p.issue, p.issue_details, p.refund_due_minor, p.created_at, p.updated_at,
                  coalesce((SELECT jsonb_agg(jsonb_build_object('id', o.id, 'number', o.number, 'status', o.status,
                                'total_minor', o.total_minor, 'seller_id', o.seller_id) ORDER BY o.number)
                            FROM payment_orders po JOIN orders o ON o.id = po.order_id
                            WHERE po.payment_id = p.id), '[]'::jsonb) AS orders,
                  coalesce((SELECT jsonb_agg(jsonb_build_object('id', r.id, 'order_id', r.order_id, 'status', r.status,
                                'amount_minor', r.amount_minor, 'currency', r.currency, 'attempts', r.attempts,
                                'error', r.error, 'provider_ref', r.provider_ref, 'requested_at', r.created_at,
                                'refunded_at', r.succeeded_at) ORDER BY r.created_at)
                            FROM payment_refunds r WHERE r.payment_id = p.id), '[]'::jsonb) AS refunds
           FROM payments p
           WHERE (p.issue = $1 OR ($1::text IS NULL AND p.issue IS NOT NULL)
                  OR (($1::text IS NULL OR $1 = 'refund_due')
                      AND p.id IN (SELECT r.payment_id FROM payment_refunds r WHERE r.status = 'failed')))
             AND ($2::timestamptz IS NULL OR (p.created_at, p.id) < ($2, $3::uuid))
           ORDER BY p.created_at DESC, p.id DESC LIMIT $4""",
        issue, before[0] if before else None, before[1] if before else None, limit)
    return [dict(r) for r in rows]
