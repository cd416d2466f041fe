"""Queries behind a stream's seller analytics: its counters (reactions, chat, add-to-carts, orders, buyers) and
its revenue per currency."""
from __future__ import annotations

from collections.abc import Sequence

import asyncpg


async def stream_counters(conn: asyncpg.Connection, stream_id: str, paid_like: Sequence[str]) -> asyncpg.Record:
    """reactions (stored totals), chat_messages (not deleted), add_to_carts, add_to_cart_buyers, units_added
    (reservations attributed to the stream), orders (with a line from the stream), paid_orders and buyers (those
    in a paid_like status)."""
    return await conn.fetchrow(
        """SELECT
             (SELECT reaction_totals FROM livestreams WHERE id = $1::uuid) AS reactions,
             (SELECT count(*) FROM chat_messages WHERE livestream_id = $1::uuid AND deleted_at IS NULL)
                AS chat_messages,
             e.add_to_carts, e.add_to_cart_buyers, e.units_added,
             o.orders, o.paid_orders, o.buyers
           FROM (SELECT count(*) AS add_to_carts, count(DISTINCT actor_id) AS add_to_cart_buyers,
                        coalesce(sum(quantity), 0) AS units_added
                 FROM inventory_events WHERE livestream_id = $1::uuid AND kind = 'reservation') e,
                (SELECT count(DISTINCT o.id) AS orders,
                        count(DISTINCT o.id) FILTER (WHERE o.status = ANY($2::text[])) AS paid_orders,
                        count(DISTINCT o.user_id) FILTER (WHERE o.status = ANY($2::text[])) AS buyers
                 FROM orders o WHERE EXISTS (SELECT 1 FROM order_items i
                                             WHERE i.order_id = o.id AND i.livestream_id = $1::uuid)) o""",
        stream_id, paid_like)


async def stream_revenue(conn: asyncpg.Connection, stream_id: str, paid_like: Sequence[str]) -> list[asyncpg.Record]:
    """Per currency: the gross amount_minor and the units of the stream's lines in orders of a paid_like status."""
    return await conn.fetch(
        """SELECT i.currency, sum(i.quantity * i.unit_price_minor)::bigint AS amount_minor,
                  sum(i.quantity)::bigint AS units
           FROM order_items i JOIN orders o ON o.id = i.order_id
           WHERE i.livestream_id = $1::uuid AND o.status = ANY($2::text[])
           GROUP BY i.currency ORDER BY i.currency""", stream_id, paid_like)
