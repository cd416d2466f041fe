"""Queries on payment_refunds: the refunds we ask the providers for (migrations/0010_payment_refunds.sql).

Locks: the payment first, then its refund rows (the order every payment transaction takes)."""
from __future__ import annotations

import uuid

import asyncpg

OPEN = ("requested", "failed")  # not settled: a provider refund event may still match it
COLS = """r.id::text AS id, r.payment_id::text AS payment_id, r.order_id::text AS order_id, r.provider,
    r.amount_minor, r.currency, r.status, r.reason, r.idempotency_key, r.provider_ref, r.provider_status,
    r.attempts, r.next_attempt_at, r.error, r.created_at, r.succeeded_at"""


async def request(conn: asyncpg.Connection, payment_id: str, provider: str, currency: str,
                  orders: list[tuple[str, int]], reason: str | None) -> list[asyncpg.Record]:
    """One `requested` refund per (order id, amount) with an amount above 0, and the payment's debt
    (refund_due_minor) grown by what was added. An order that already has a refund gets no second one."""
    rows = await conn.fetch(
        """INSERT INTO payment_refunds (payment_id, order_id, provider, amount_minor, currency, reason)
           SELECT $1::uuid, o, $2, a, $3, $6 FROM unnest($4::uuid[], $5::bigint[]) AS t(o, a) WHERE a > 0
           ON CONFLICT (order_id) WHERE return_id IS NULL DO NOTHING
           RETURNING id::text AS id, order_id::text AS order_id, amount_minor""",
        payment_id, provider, currency, [o for o, _ in orders], [a for _, a in orders], reason)
    added = sum(r["amount_minor"] for r in rows)
    if added:
        await conn.execute("UPDATE payments SET refund_due_minor = refund_due_minor + $2 WHERE id = $1::uuid",
                           payment_id, added)
    return rows


async def request_for_return(conn: asyncpg.Connection, payment_id: str, provider: str, currency: str,
                             order_id: str, return_id: str, amount: int, reason: str | None) -> asyncpg.Record | None:
    """The `requested` refund of a return (amount above 0), and the payment's debt grown by it. A return that
    already has its refund gets no second one (None)."""
    row = await conn.fetchrow(
        """INSERT INTO payment_refunds (payment_id, order_id, return_id, provider, amount_minor, currency, reason)
           VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7)
           ON CONFLICT (return_id) WHERE return_id IS NOT NULL DO NOTHING
           RETURNING id::text AS id, order_id::text AS order_id, amount_minor""",
        payment_id, order_id, return_id, provider, amount, currency, reason)
    if row is not None:
        await conn.execute("UPDATE payments SET refund_due_minor = refund_due_minor + $2 WHERE id = $1::uuid",
                           payment_id, amount)
    return row


async def owed_for_order(conn: asyncpg.Connection, order_id: str) -> int:
    """What the order's refunds add up to, not counting failed ones (requested or paid back)."""
    return await conn.fetchval("SELECT coalesce(sum(amount_minor), 0)::bigint FROM payment_refunds "
                               "WHERE order_id = $1::uuid AND status <> 'failed'", order_id)


async def owed_for_payment(conn: asyncpg.Connection, payment_id: str) -> int:
    """What the payment's refunds add up to, not counting failed ones."""
    return await conn.fetchval("SELECT coalesce(sum(amount_minor), 0)::bigint FROM payment_refunds "
                               "WHERE payment_id = $1::uuid AND status <> 'failed'", payment_id)


async def lock_payment_of(conn: asyncpg.Connection, refund_id: str) -> asyncpg.Record | None:
    """The refund's payment, locked (status, reference at the provider, amount, what it still owes)."""
    return await conn.fetchrow(
        """SELECT id::text AS id, status, provider_ref, amount_minor, refund_due_minor, issue FROM payments
           WHERE id = (SELECT payment_id FROM payment_refunds WHERE id = $1::uuid) FOR UPDATE""", refund_id)


async def claim(conn: asyncpg.Connection, refund_id: str, first_delay: float,
                max_delay: float) -> asyncpg.Record | None:
    """Take a due refund for one call to the provider: attempts + 1, and the next attempt pushed back (first_delay
    x 4^(attempts so far), at most max_delay), which is also the lease that keeps other sweepers away while the
    call is in flight. None when it is not due, already accepted by the provider, settled or failed."""
    return await conn.fetchrow(
        f"""UPDATE payment_refunds r SET attempts = r.attempts + 1,
               next_attempt_at = now() + make_interval(secs => least($3::float8, $2::float8 * power(4, r.attempts)))
            WHERE r.id = $1::uuid AND r.status = 'requested' AND r.provider_ref IS NULL AND r.next_attempt_at <= now()
            RETURNING {COLS}""", refund_id, first_delay, max_delay)


async def accepted(conn: asyncpg.Connection, refund_id: str, provider_ref: str, provider_status: str) -> None:
    """The provider took the refund (its webhook settles it; a webhook that came first already did)."""
    await conn.execute(
        """UPDATE payment_refunds SET provider_ref = coalesce(provider_ref, $2), provider_status = $3
           WHERE id = $1::uuid""", refund_id, provider_ref, provider_status)


async def attempt_failed(conn: asyncpg.Connection, refund_id: str, error: str, *, final: bool,
                         max_attempts: int) -> asyncpg.Record | None:
    """Record a failed call: the refund stays `requested` for the next attempt, or becomes `failed` when the
    provider refused it (final) or it had its last attempt."""
    return await conn.fetchrow(
        f"""UPDATE payment_refunds r SET error = $2,
               status = CASE WHEN $3 OR r.attempts >= $4 THEN 'failed' ELSE r.status END
            WHERE r.id = $1::uuid AND r.status = 'requested' RETURNING {COLS}""",
        refund_id, error[:2000], final, max_attempts)


async def due(conn: asyncpg.Connection, limit: int) -> list[str]:
    rows = await conn.fetch(
        """SELECT id::text FROM payment_refunds
           WHERE status = 'requested' AND provider_ref IS NULL AND next_attempt_at <= now()
           ORDER BY next_attempt_at LIMIT $1""", limit)
    return [r[0] for r in rows]


async def match(conn: asyncpg.Connection, payment_id: str, *, refund_id: str | None, refund_ref: str | None,
                amount: int | None) -> asyncpg.Record | None:
    """The refund a provider's refund event is about, locked: by our id echoed back, else by the provider's refund
    id, else the oldest unsettled refund of the payment with that amount (one the provider accepted first). A
    settled refund found by id is returned as it is (the event is a second notice of it)."""
    if refund_id:
        try:
            uuid.UUID(refund_id)
        except ValueError:
            refund_id = None
    if refund_id:
        row = await conn.fetchrow(f"SELECT {COLS} FROM payment_refunds r WHERE r.payment_id = $1::uuid "
                                  "AND r.id = $2::uuid FOR UPDATE", payment_id, refund_id)
        if row is not None:
            return row
    if refund_ref:
        row = await conn.fetchrow(f"SELECT {COLS} FROM payment_refunds r WHERE r.payment_id = $1::uuid "
                                  "AND r.provider_ref = $2 FOR UPDATE", payment_id, refund_ref)
        if row is not None:
            return row
    if amount is None:
        return None
    return await conn.fetchrow(
        f"""SELECT {COLS} FROM payment_refunds r
            WHERE r.payment_id = $1::uuid AND r.status = ANY($2::text[]) AND r.amount_minor = $3
            ORDER BY r.provider_ref IS NULL, r.created_at LIMIT 1 FOR UPDATE""", payment_id, list(OPEN), amount)


async def settle(conn: asyncpg.Connection, refund_id: str, provider_ref: str | None) -> None:
    await conn.execute(
        """UPDATE payment_refunds SET status = 'succeeded', succeeded_at = now(),
                                      provider_ref = coalesce(provider_ref, $2)
           WHERE id = $1::uuid AND status <> 'succeeded'""", refund_id, provider_ref)


async def settle_all(conn: asyncpg.Connection, payment_id: str) -> list[str]:
    """The whole payment was refunded: every unsettled refund of it is done. Returns their order ids."""
    rows = await conn.fetch(
        """UPDATE payment_refunds SET status = 'succeeded', succeeded_at = now()
           WHERE payment_id = $1::uuid AND status = ANY($2::text[]) RETURNING order_id::text""",
        payment_id, list(OPEN))
    return [r[0] for r in rows]


async def refunded_total(conn: asyncpg.Connection, payment_id: str) -> int:
    return await conn.fetchval("SELECT coalesce(sum(amount_minor), 0)::bigint FROM payment_refunds "
                               "WHERE payment_id = $1::uuid AND status = 'succeeded'", payment_id)


# ---- a human's resolution (admins) ----

async def refund(conn: asyncpg.Connection, refund_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    """One refund; with lock=True locked FOR UPDATE (take its payment's lock first: lock_payment_of)."""
    return await conn.fetchrow(f"SELECT {COLS} FROM payment_refunds r WHERE r.id = $1::uuid"
                               + (" FOR UPDATE" if lock else ""), refund_id)


async def reopen(conn: asyncpg.Connection, refund_id: str) -> asyncpg.Record:
    """A failed refund goes back to `requested`, due now, with its attempts counted from 0 again (same idempotency
    key: a provider that did take it answers the same refund)."""
    return await conn.fetchrow(
        f"""UPDATE payment_refunds r SET status = 'requested', attempts = 0, next_attempt_at = now()
            WHERE r.id = $1::uuid RETURNING {COLS}""", refund_id)


async def settle_by_hand(conn: asyncpg.Connection, refund_id: str) -> asyncpg.Record:
    """The money went back outside our call (a human, by hand): the refund is settled."""
    return await conn.fetchrow(
        f"""UPDATE payment_refunds r SET status = 'succeeded', succeeded_at = now(), provider_status = 'by_hand'
            WHERE r.id = $1::uuid RETURNING {COLS}""", refund_id)
