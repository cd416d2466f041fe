"""Queries on in-app notifications (migration 0024): one event's rows written for many users in one statement
(`add`, through the SECURITY DEFINER function `notifications_add`), read and marked delivered by the
`notify.deliver` job, listed, counted and marked read by their user (row-level security: a user sees only theirs).
"""
from __future__ import annotations

from typing import Sequence

import asyncpg

from db.pool import warm

UNREAD_MAX = 1000  # the unread count stops counting here (a badge says "1000"; the list still pages them all)

_ITEM = """id, kind, data, created_at, read_at"""


async def add(conn: asyncpg.Connection, kind: str, key: str, data: dict, user_ids: Sequence[str],
              email_user_ids: Sequence[str] | None) -> tuple[int, int]:
    """One row per user (unknown users skipped, a (user, key) already there kept): the number of new rows, and
    the id of the transaction that wrote them."""
    row = await conn.fetchrow(
        "SELECT notifications_add($1, $2, $3::jsonb, $4::uuid[], $5::uuid[]) AS added, txid_current() AS tx",
        kind, key, data, list(user_ids), None if email_user_ids is None else list(email_user_ids))
    return row["added"], row["tx"]


async def claim(conn: asyncpg.Connection, key: str, limit: int) -> list[asyncpg.Record]:
    """Mark the event's rows not yet delivered as delivered (at most `limit`, oldest first) and return them: id,
    user_id, email, created_at. One statement; the rows stay locked until the transaction ends, so a second run of
    the job waits, then finds them delivered. The caller's rollback (a channel failed) unmarks them."""
    return await conn.fetch(
        """UPDATE notifications SET delivered_at = now()
           WHERE id IN (SELECT id FROM notifications WHERE key = $1 AND delivered_at IS NULL
                        ORDER BY id LIMIT $2 FOR UPDATE)
           RETURNING id, user_id::text AS user_id, email, created_at""", key, limit)


EVENT_SQL = "SELECT kind, data FROM notifications WHERE id = $1"


async def event(conn: asyncpg.Connection, notification_id: int) -> asyncpg.Record | None:
    """The kind and data of the event of one of its rows (every row of a key has the same), by primary key: a
    claimed row's id (the key alone has no index on delivered rows)."""
    return await conn.fetchrow(EVENT_SQL, notification_id)


_UNREAD_MANY = warm(
    """SELECT u AS user_id, (SELECT count(*) FROM (SELECT 1 FROM notifications n
                                                     WHERE n.user_id = u::uuid AND n.read_at IS NULL
                                                     LIMIT $2) c) AS n
       FROM unnest($1::text[]) AS u""", [], UNREAD_MAX)


async def unread_counts(conn: asyncpg.Connection, user_ids: Sequence[str]) -> dict[str, int]:
    """Unread count of each user (each at most UNREAD_MAX), in one statement."""
    rows = await conn.fetch(_UNREAD_MANY, list(user_ids), UNREAD_MAX)
    return {r["user_id"]: r["n"] for r in rows}


async def unread_count(conn: asyncpg.Connection, user_id: str) -> int:
    return await conn.fetchval(
        """SELECT count(*) FROM (SELECT 1 FROM notifications WHERE user_id = $1::uuid AND read_at IS NULL
                                 LIMIT $2) c""", user_id, UNREAD_MAX)


async def page(conn: asyncpg.Connection, user_id: str, *, limit: int, before_id: int | None,
               unread_only: bool) -> list[asyncpg.Record]:
    """A user's notifications, newest first, those with an id below `before_id` (the cursor); unread only on ask."""
    return await conn.fetch(
        f"""SELECT {_ITEM} FROM notifications
            WHERE user_id = $1::uuid AND ($2::bigint IS NULL OR id < $2) AND (NOT $3 OR read_at IS NULL)
            ORDER BY id DESC LIMIT $4""", user_id, before_id, unread_only, limit)


async def mark_read(conn: asyncpg.Connection, user_id: str, ids: Sequence[int]) -> int:
    """Mark the user's notifications of these ids read (others' ids and read ones are left): how many changed."""
    status = await conn.execute(
        """UPDATE notifications SET read_at = now()
           WHERE user_id = $1::uuid AND id = ANY($2::bigint[]) AND read_at IS NULL""", user_id, list(ids))
    return int(status.rsplit(" ", 1)[-1])


async def mark_all_read(conn: asyncpg.Connection, user_id: str) -> int:
    status = await conn.execute(
        "UPDATE notifications SET read_at = now() WHERE user_id = $1::uuid AND read_at IS NULL", user_id)
    return int(status.rsplit(" ", 1)[-1])


# ---- what the domain events' notifications say (live/notify/events.py), read in the event's transaction ----

async def order_facts(conn: asyncpg.Connection, order_ids: Sequence[str], status: str) -> list[asyncpg.Record]:
    """Each order's number, total, buyer (id, name) and seller's user; `seq`: how many times it has moved to
    `status` (the event key's last part: a second label after a void is a new event, a replay is not); the live
    outbound shipment's carrier and tracking."""
    return await conn.fetch(
        """SELECT o.id::text AS order_id, o.number, o.total_minor, o.currency, o.user_id::text AS buyer_id,
                  u.name AS buyer_name, s.user_id::text AS seller_user_id,
                  (SELECT count(*) FROM order_status_history h WHERE h.order_id = o.id AND h.to_status = $2) AS seq,
                  sh.carrier, sh.tracking_number, sh.tracking_url
           FROM orders o JOIN sellers s ON s.id = o.seller_id JOIN users u ON u.id = o.user_id
           LEFT JOIN LATERAL (SELECT x.carrier, x.tracking_number, x.tracking_url FROM shipments x
                              WHERE x.order_id = o.id AND x.kind = 'outbound'
                                AND x.status NOT IN ('voided', 'voiding', 'purchase_failed')
                              ORDER BY x.created_at DESC LIMIT 1) sh ON true
           WHERE o.id = ANY($1::uuid[]) ORDER BY o.number""", list(order_ids), status)


async def shipment_order(conn: asyncpg.Connection, shipment_id: str) -> asyncpg.Record | None:
    """The order of a shipment (kind, order id, number, the seller's user)."""
    return await conn.fetchrow(
        """SELECT x.kind, o.id::text AS order_id, o.number, s.user_id::text AS seller_user_id
           FROM shipments x JOIN orders o ON o.id = x.order_id JOIN sellers s ON s.id = o.seller_id
           WHERE x.id = $1::uuid""", shipment_id)


async def payment_sellers(conn: asyncpg.Connection, payment_id: str) -> list[asyncpg.Record]:
    """The orders of a payment (id, number) and their sellers' users."""
    return await conn.fetch(
        """SELECT o.id::text AS order_id, o.number, s.user_id::text AS seller_user_id
           FROM payment_orders po JOIN orders o ON o.id = po.order_id JOIN sellers s ON s.id = o.seller_id
           WHERE po.payment_id = $1::uuid ORDER BY o.number""", payment_id)


async def return_facts(conn: asyncpg.Connection, return_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT r.id::text AS return_id, r.user_id::text AS buyer_id, r.refund_minor, r.currency,
                  o.id::text AS order_id, o.number
           FROM returns r JOIN orders o ON o.id = r.order_id WHERE r.id = $1::uuid""", return_id)


async def settled_refunds(conn: asyncpg.Connection, payment_id: str) -> list[asyncpg.Record]:
    """The payment's settled refunds of canceled orders (not of returns: those have their own notice)."""
    return await conn.fetch(
        """SELECT r.id::text AS refund_id, r.amount_minor, r.currency, o.id::text AS order_id, o.number,
                  o.user_id::text AS buyer_id
           FROM payment_refunds r JOIN orders o ON o.id = r.order_id
           WHERE r.payment_id = $1::uuid AND r.status = 'succeeded' AND r.return_id IS NULL""", payment_id)


async def set_stock_low_threshold(conn: asyncpg.Connection, value: int) -> None:
    """The threshold the database's stock_low trigger uses (STOCK_LOW_THRESHOLD; 0: off)."""
    await conn.execute("UPDATE notify_settings SET value = $1 WHERE name = 'stock_low_threshold' "
                       "AND value IS DISTINCT FROM $1", value)
