"""Queries on orders, their lines and status history, checkout requests, payments and coupons."""
from __future__ import annotations

from datetime import datetime

import asyncpg

from db.pool import update_columns

ORDER_JSON = """jsonb_build_object(
    'id', o.id, 'number', o.number, 'status', o.status, 'user_id', o.user_id,
    'seller', jsonb_build_object('id', s.id, 'name', s.display_name),
    'livestream_id', o.livestream_id,
    'subtotal_minor', o.subtotal_minor, 'discount_minor', o.discount_minor, 'shipping_minor', o.shipping_minor,
    'total_minor', o.total_minor, 'currency', o.currency,
    'coupon_code', (SELECT c.code FROM coupons c WHERE c.id = o.coupon_id),
    'shipping_address', o.shipping_address, 'created_at', o.created_at, 'updated_at', o.updated_at,
    'refund', (SELECT jsonb_build_object('status', r.status, 'amount_minor', r.amount_minor, 'currency', r.currency,
        'requested_at', r.created_at, 'refunded_at', r.succeeded_at) FROM payment_refunds r WHERE r.order_id = o.id),
    'items', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'id', i.id, 'product_id', i.product_id, 'variant_id', i.variant_id, 'title', i.title, 'sku', i.sku,
        'quantity', i.quantity, 'unit_price_minor', i.unit_price_minor, 'currency', i.currency,
        'line_total_minor', i.unit_price_minor * i.quantity, 'livestream_id', i.livestream_id) ORDER BY i.sku)
        FROM order_items i WHERE i.order_id = o.id), '[]'::jsonb))"""
_FROM = "FROM orders o JOIN sellers s ON s.id = o.seller_id"
OPEN_PAYMENT = ("requires_action", "processing")


# ---- checkout requests (idempotency) ----

async def claim_checkout(conn: asyncpg.Connection, user_id: str, key: str, request_hash: str) -> bool:
    """True when this request is the first with its key (the row is ours until the transaction ends; a
    concurrent duplicate waits on it)."""
    return bool(await conn.fetchval(
        """INSERT INTO checkout_requests (user_id, key, request_hash) VALUES ($1::uuid, $2, $3)
           ON CONFLICT (user_id, key) DO NOTHING RETURNING true""", user_id, key, request_hash))


async def checkout_request(conn: asyncpg.Connection, user_id: str, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT request_hash, status, response, now() - updated_at AS age FROM checkout_requests
           WHERE user_id = $1::uuid AND key = $2""", user_id, key)


async def store_checkout(conn: asyncpg.Connection, user_id: str, key: str, status: str, response: dict) -> None:
    await conn.execute("""UPDATE checkout_requests SET status = $3, response = $4
                          WHERE user_id = $1::uuid AND key = $2""", user_id, key, status, response)


async def purge_checkouts(conn: asyncpg.Connection, older_than_seconds: int, limit: int = 1000) -> int:
    """Forget idempotency keys older than the window (their checkouts stay; only the replay record goes)."""
    status = await conn.execute(
        """DELETE FROM checkout_requests WHERE (user_id, key) IN (
               SELECT user_id, key FROM checkout_requests
               WHERE created_at < now() - make_interval(secs => $1) AND status <> 'processing' LIMIT $2)""",
        older_than_seconds, limit)
    return int(status.split()[-1])


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


async def insert_payment(conn: asyncpg.Connection, *, payment_id: str, user_id: str, provider: str, amount: int,
                         currency: str, status: str, order_ids: list[str]) -> None:
    await conn.execute(
        """INSERT INTO payments (id, user_id, provider, status, amount_minor, currency, idempotency_key)
           VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, 'payment-' || $1)""",
        payment_id, user_id, provider, status, amount, currency)
    await conn.execute("""INSERT INTO payment_orders (payment_id, order_id)
                          SELECT $1::uuid, o FROM unnest($2::uuid[]) AS o""", payment_id, order_ids)


# ---- payments ----

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


async def release_coupons(conn: asyncpg.Connection, coupon_ids: set[str]) -> None:
    for coupon_id in sorted(coupon_ids):
        await conn.execute("UPDATE coupons SET used_count = used_count - 1 WHERE id = $1::uuid AND used_count > 0",
                           coupon_id)


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


async def shipments(conn: asyncpg.Connection, order_id: str) -> list[dict]:
    rows = await conn.fetch(
        """SELECT id::text AS id, carrier, service, tracking_number, label_url, status, created_at, updated_at
           FROM shipments WHERE order_id = $1::uuid ORDER BY created_at""", order_id)
    return [dict(r) for r in rows]


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


# ---- coupons ----

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


# ---- payments flagged for a human (admins) ----

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
