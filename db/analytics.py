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


async def save_viewer_samples(conn: asyncpg.Connection, samples: Sequence[tuple[str, int]], slot_seconds: int) -> None:
    """One row per (stream, viewers) at the start of the current `slot_seconds` slot, all in one statement; a slot
    already written (another worker, or this one again) keeps the larger count."""
    await conn.execute(
        """INSERT INTO viewer_samples (livestream_id, at, viewers)
           SELECT s.id, to_timestamp(floor(extract(epoch FROM now()) / $3) * $3), s.viewers
           FROM unnest($1::uuid[], $2::int[]) AS s (id, viewers)
           WHERE EXISTS (SELECT 1 FROM livestreams l WHERE l.id = s.id)
           ON CONFLICT (livestream_id, at)
           DO UPDATE SET viewers = greatest(viewer_samples.viewers, EXCLUDED.viewers)""",
        [s for s, _ in samples], [n for _, n in samples], slot_seconds)


MAX_VIEWER_POINTS = 600


async def viewers_over_time(conn: asyncpg.Connection, stream_id: str,
                            max_points: int = MAX_VIEWER_POINTS) -> list[asyncpg.Record]:
    """The stream's viewer samples (one per 30 s slot while watched: 2,880 a day), at most `max_points` of them:
    the span from the first sample to the last is cut into equal buckets of whole seconds (date_bin from the first
    sample, width floor(span / max_points) + 1 s, hence at most max_points buckets), each giving its start and the
    largest count in it (a peak is never averaged away). A series that fits comes back unchanged (the samples are
    whole seconds apart: each is the start of its own bucket)."""
    return await conn.fetch(
        """WITH s AS (SELECT at, viewers FROM viewer_samples WHERE livestream_id = $1::uuid),
                b AS (SELECT min(at) AS origin,
                             make_interval(secs => floor(extract(epoch FROM max(at) - min(at)) / $2) + 1) AS width
                      FROM s)
           SELECT date_bin(b.width, s.at, b.origin) AS at, max(s.viewers) AS viewers
           FROM s, b GROUP BY 1 ORDER BY 1""", stream_id, max_points)


MAX_SALES_POINTS = 600


async def sales_over_time(conn: asyncpg.Connection, stream_id: str, paid_like: Sequence[str],
                          max_points: int = MAX_SALES_POINTS) -> list[asyncpg.Record]:
    """Per minute the order was placed, and per currency: the paid orders with lines from the stream, their
    units and gross amount (the stream's lines only, as stream_revenue). At most `max_points` minutes: when the
    sales span more (orders placed long after the show still count), the span from the first sale's minute is cut
    into equal buckets of floor(span in minutes / max_points) + 1 minutes (date_bin), each the sum of its sales
    and `at` its start; a span that fits comes back minute by minute. Every row says its bucket's `minutes`."""
    return await conn.fetch(
        """WITH s AS (SELECT date_trunc('minute', o.created_at) AS at, i.currency, o.id AS order_id, i.quantity,
                             i.unit_price_minor
                      FROM order_items i JOIN orders o ON o.id = i.order_id
                      WHERE i.livestream_id = $1::uuid AND o.status = ANY($2::text[])),
                b AS (SELECT min(at) AS origin,
                             make_interval(mins => floor(extract(epoch FROM max(at) - min(at)) / 60 / $3)::int + 1)
                               AS width
                      FROM s)
           SELECT date_bin(b.width, s.at, b.origin) AS at, s.currency, count(DISTINCT s.order_id)::int AS orders,
                  sum(s.quantity)::bigint AS units, sum(s.quantity * s.unit_price_minor)::bigint AS amount_minor,
                  extract(epoch FROM b.width)::int / 60 AS minutes
           FROM s, b GROUP BY 1, 2, b.width ORDER BY 1, 2""", stream_id, paid_like, max_points)


async def top_products(conn: asyncpg.Connection, stream_id: str, paid_like: Sequence[str],
                       limit: int = 10) -> list[asyncpg.Record]:
    """The products most sold from the stream (units of its lines in paid orders), per currency, with the title of
    the newest line (order lines snapshot it)."""
    return await conn.fetch(
        """SELECT i.product_id::text AS product_id, i.currency,
                  (array_agg(i.title ORDER BY o.created_at DESC))[1] AS title,
                  sum(i.quantity)::bigint AS units, sum(i.quantity * i.unit_price_minor)::bigint AS amount_minor
           FROM order_items i JOIN orders o ON o.id = i.order_id
           WHERE i.livestream_id = $1::uuid AND o.status = ANY($2::text[])
           GROUP BY i.product_id, i.currency ORDER BY units DESC, amount_minor DESC, product_id LIMIT $3""",
        stream_id, paid_like, limit)
