"""Queries on inbound payment webhooks (`webhook_events`, one row per provider and event key), and the read-only
payment summary the sandbox confirm page shows. All run as SYSTEM (webhook_events is privileged-only)."""
from __future__ import annotations

from typing import Any

import asyncpg


async def claim(conn: asyncpg.Connection, provider: str, event_key: str, event_type: str,
                payload: dict[str, Any]) -> asyncpg.Record:
    """Store the event once and lock its row for this transaction.

    A concurrent delivery of the same event waits here until this transaction ends: one of them enqueues its job,
    the other finds it queued (or the event processed) and answers duplicate."""
    await conn.execute(
        """INSERT INTO webhook_events (provider, event_key, event_type, payload) VALUES ($1, $2, $3, $4)
           ON CONFLICT (provider, event_key) DO NOTHING""", provider, event_key, event_type, payload)
    return await conn.fetchrow(
        """SELECT id, processed_at, error FROM webhook_events WHERE provider = $1 AND event_key = $2
           FOR UPDATE""", provider, event_key)


async def read(conn: asyncpg.Connection, event_id: int) -> asyncpg.Record | None:
    """A stored event by id (its `webhook.process` job; not locked: the job's key keeps its runs apart)."""
    return await conn.fetchrow(
        """SELECT id, provider, event_key, event_type, payload, processed_at, error FROM webhook_events
           WHERE id = $1""", event_id)


async def mark_processed(conn: asyncpg.Connection, event_id: int, error: str | None = None,
                         result: str | None = None) -> None:
    """Processed (once: an event already processed keeps its first outcome)."""
    await conn.execute("""UPDATE webhook_events SET processed_at = now(), error = $2, result = $3
                          WHERE id = $1 AND processed_at IS NULL""", event_id, error, result)


async def mark_failed(conn: asyncpg.Connection, event_id: int, error: str) -> None:
    """Processing raised: keep it unprocessed (its job tries again) and say why; an event processed meanwhile (by
    an earlier run of its job) stays processed."""
    await conn.execute("UPDATE webhook_events SET error = $2 WHERE id = $1 AND processed_at IS NULL", event_id, error)


REJECTED = "invalid_payload"  # the error prefix of an event refused for its content (stored, never processed)


async def reject(conn: asyncpg.Connection, provider: str, event_key: str, event_type: str | None,
                 payload: dict[str, Any], error: str) -> None:
    """Store a verified event refused for its content as rejected (processed_at set, error `invalid_payload: ...`)
    once; a repeat delivery stores nothing more."""
    await conn.execute(
        """INSERT INTO webhook_events (provider, event_key, event_type, payload, processed_at, error)
           VALUES ($1, $2, $3, $4, now(), $5) ON CONFLICT (provider, event_key) DO NOTHING""",
        provider, event_key, event_type, payload, error)


async def get(conn: asyncpg.Connection, provider: str, event_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT id, provider, event_key, event_type, payload, received_at, processed_at, error, result
           FROM webhook_events WHERE provider = $1 AND event_key = $2""", provider, event_key)


async def latest_for_reference(conn: asyncpg.Connection, provider: str, reference: str) -> asyncpg.Record | None:
    """The last processed event of a provider that names `reference` (payload data.reference); events rejected for
    their content do not count."""
    return await conn.fetchrow(
        """SELECT event_key, event_type, payload FROM webhook_events
           WHERE provider = $1 AND payload -> 'data' ->> 'reference' = $2 AND processed_at IS NOT NULL
             AND coalesce(error, '') NOT LIKE $3 || '%'
           ORDER BY processed_at DESC, id DESC LIMIT 1""", provider, reference, REJECTED)


async def payment_summary(conn: asyncpg.Connection, payment_id: str) -> dict | None:
    """A payment with its orders (number, seller, total, items) for the sandbox confirm page."""
    payment = await conn.fetchrow(
        """SELECT id::text AS id, provider, status, amount_minor, currency FROM payments WHERE id = $1::uuid""",
        payment_id)
    if payment is None:
        return None
    orders = await conn.fetch(
        """SELECT o.number, o.status, o.total_minor, o.currency, s.display_name AS seller,
                  coalesce((SELECT string_agg(i.title || ' × ' || i.quantity, ', ' ORDER BY i.title)
                            FROM order_items i WHERE i.order_id = o.id), '') AS items
           FROM payment_orders po JOIN orders o ON o.id = po.order_id JOIN sellers s ON s.id = o.seller_id
           WHERE po.payment_id = $1::uuid ORDER BY o.number""", payment_id)
    return {**dict(payment), "orders": [dict(o) for o in orders]}
