"""Stock counters and the inventory ledger.

available = on_hand - reserved - sold, always computed in the statement that changes it. Every counter change
writes a ledger row in the same transaction (kind -> counter: adjustment/return -> on_hand,
reservation/release -> reserved, sale -> sold; quantity is the signed delta), so for every variant
on_hand = sum(adjustment, return), reserved = sum(reservation, release), sold = sum(sale).
Statements that lock several variants lock them in id order (no deadlocks between checkouts, cancellations
and the expiry sweep).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import asyncpg

from db import Database
from db.pool import warm


@dataclass(frozen=True, slots=True)
class StockLevel:
    variant_id: str
    available: int
    version: int


_CART_CHANGES = warm(
    "SELECT status, available, version, cart_id::text, detail FROM commerce_cart_changes("
    "$1::uuid, $2::uuid[], $3::text[], $4::int[], $5::uuid[], $6::text[], $7, $8, $9, $10)",
    "00000000-0000-0000-0000-000000000000", [], [], [], [], [], 1, 1, 1, 0)  # no changes: returns at once


@dataclass(frozen=True, slots=True)
class CartLimits:
    """What one buyer's cart may do with a variant: hold it `seconds` from the first reservation (never renewed),
    hold it again only `cooldown` seconds after that ended, hold at most `default_cap` units of a variant without
    a cap of its own (max_per_buyer), and never more than `max_line`."""
    seconds: int
    max_line: int
    default_cap: int
    cooldown: int


class CartChange(NamedTuple):
    user_id: str
    mode: str  # "add" qty more, or "set" the line to qty (0 removes it)
    qty: int
    stream_id: str | None = None
    key: str | None = None  # an add's idempotency key


async def cart_changes(conn: asyncpg.Connection, variant_id: str, changes: Sequence[CartChange],
                       limits: CartLimits) -> list[dict]:
    """Changes of one variant's cart lines, applied in the given order in one statement (one round trip, one
    short transaction: commerce_cart_changes in migrations/0012_commerce_buyer_limits.sql), on a
    pooled connection outside any transaction. One dict per change: status, available, version, cart_id,
    detail. The function is the app's privileged entry point for reservations: it runs as its owner with the
    buyers passed explicitly. An error in any change rolls back all of them."""
    rows = await conn.fetch(
        _CART_CHANGES, variant_id, [c.user_id for c in changes], [c.mode for c in changes], [c.qty for c in changes],
        [c.stream_id for c in changes], [c.key for c in changes], limits.seconds, limits.max_line,
        limits.default_cap, limits.cooldown)
    return [dict(r) for r in rows]


async def cart_change(conn: Database | asyncpg.Connection, user_id: str, variant_id: str, mode: str, qty: int,
                      stream_id: str | None, key: str | None, limits: CartLimits) -> dict:
    """One cart change (cart_changes with one element)."""
    if isinstance(conn, Database):
        async with conn.pool.acquire() as c:
            return await cart_change(c, user_id, variant_id, mode, qty, stream_id, key, limits)
    change = CartChange(user_id, mode, qty, stream_id, key)
    return (await cart_changes(conn, variant_id, [change], limits))[0]


async def release_expired(db: Database, limit: int) -> list[StockLevel]:
    """Return one batch of expired cart reservations to stock; the variants whose availability changed."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT variant_id::text, available, version FROM commerce_release_expired($1)",
                                limit)
    return [StockLevel(r[0], r[1], r[2]) for r in rows]


async def lock_variants(conn: asyncpg.Connection, variant_ids: list[str]) -> None:
    await conn.execute("SELECT 1 FROM product_variants WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
                       variant_ids)


async def levels(conn: asyncpg.Connection, variant_ids: list[str]) -> list[StockLevel]:
    rows = await conn.fetch(
        """SELECT id::text, on_hand - reserved - sold, stock_version FROM product_variants
           WHERE id = ANY($1::uuid[])""", variant_ids)
    return [StockLevel(r[0], r[1], r[2]) for r in rows]


async def sell(conn: asyncpg.Connection, lines: list[tuple[str, int, int]], actor_id: str | None,
               reason: str) -> tuple[list[StockLevel], list[str]]:
    """Checkout: each (variant_id, qty, held) turns `held` reserved units and `qty - held` free units into
    sold ones. All or nothing per line: returns (levels of the lines done, variant ids that lacked stock);
    the caller rolls back when the second list is not empty."""
    ids = [v for v, _, _ in lines]
    await lock_variants(conn, ids)
    rows = await conn.fetch(
        """WITH x AS (SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[]) AS t(vid, qty, held))
           UPDATE product_variants v SET reserved = v.reserved - x.held, sold = v.sold + x.qty
           FROM x WHERE v.id = x.vid AND v.on_hand - v.reserved - v.sold >= x.qty - x.held
           RETURNING v.id::text, v.on_hand - v.reserved - v.sold, v.stock_version""",
        ids, [q for _, q, _ in lines], [h for _, _, h in lines])
    done = {r[0] for r in rows}
    missing = [v for v in ids if v not in done]
    if not missing:
        await conn.execute(
            """INSERT INTO inventory_events (variant_id, kind, quantity, reason, actor_id)
               SELECT t.vid, k.kind, k.q, $4, $5::uuid
               FROM unnest($1::uuid[], $2::int[], $3::int[]) AS t(vid, qty, held)
               CROSS JOIN LATERAL (VALUES ('release', -t.held), ('sale', t.qty)) AS k(kind, q)
               WHERE k.q <> 0""",
            ids, [q for _, q, _ in lines], [h for _, _, h in lines], reason, actor_id)
    return [StockLevel(r[0], r[1], r[2]) for r in rows], missing


async def unsell(conn: asyncpg.Connection, lines: list[tuple[str, int]], actor_id: str | None,
                 reason: str) -> list[StockLevel]:
    """A canceled order's units go back to stock: sold -= qty per (variant_id, qty), with ledger rows."""
    if not lines:
        return []
    per: dict[str, int] = {}
    for vid, q in lines:
        per[vid] = per.get(vid, 0) + q
    ids = sorted(per)
    await lock_variants(conn, ids)
    rows = await conn.fetch(
        """WITH x AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS t(vid, q))
           UPDATE product_variants v SET sold = v.sold - x.q FROM x WHERE v.id = x.vid
           RETURNING v.id::text, v.on_hand - v.reserved - v.sold, v.stock_version""",
        ids, [per[v] for v in ids])
    await conn.execute(
        """INSERT INTO inventory_events (variant_id, kind, quantity, reason, actor_id)
           SELECT t.vid, 'sale', -t.q, $3, $4::uuid FROM unnest($1::uuid[], $2::int[]) AS t(vid, q)""",
        ids, [per[v] for v in ids], reason, actor_id)
    return [StockLevel(r[0], r[1], r[2]) for r in rows]


async def restock(conn: asyncpg.Connection, lines: list[tuple[str, int]], actor_id: str | None,
                  reason: str) -> list[StockLevel]:
    """Returned units back on the shelf: on_hand += qty per (variant_id, qty), with `return` ledger rows (the sale
    stays a sale: the units were sold, came back and are sellable again)."""
    per: dict[str, int] = {}
    for vid, q in lines:
        if q > 0:
            per[vid] = per.get(vid, 0) + q
    if not per:
        return []
    ids = sorted(per)
    await lock_variants(conn, ids)
    rows = await conn.fetch(
        """WITH x AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS t(vid, q))
           UPDATE product_variants v SET on_hand = v.on_hand + x.q FROM x WHERE v.id = x.vid
           RETURNING v.id::text, v.on_hand - v.reserved - v.sold, v.stock_version""",
        ids, [per[v] for v in ids])
    await conn.execute(
        """INSERT INTO inventory_events (variant_id, kind, quantity, reason, actor_id)
           SELECT t.vid, 'return', t.q, $3, $4::uuid FROM unnest($1::uuid[], $2::int[]) AS t(vid, q)""",
        ids, [per[v] for v in ids], reason, actor_id)
    return [StockLevel(r[0], r[1], r[2]) for r in rows]


async def initial_stock(conn: asyncpg.Connection, variant_id: str, qty: int, actor_id: str | None) -> None:
    """The ledger row of a new variant's units on hand (db.catalog.insert_variant sets the counter)."""
    await conn.execute(
        """INSERT INTO inventory_events (variant_id, kind, quantity, reason, actor_id)
           VALUES ($1::uuid, 'adjustment', $2, 'initial stock', $3::uuid)""", variant_id, qty, actor_id)


async def adjust(conn: asyncpg.Connection, variant_id: str, delta: int, reason: str, actor_id: str | None,
                 key: str | None) -> tuple[str, StockLevel | None]:
    """A seller's stock adjustment (on_hand += delta). Returns ("ok" | "duplicate" | "below_committed", level).
    The event is written first so a repeated idempotency key changes nothing; on_hand can never drop below
    reserved + sold (the caller rolls back on "below_committed")."""
    inserted = await conn.fetchval(
        """INSERT INTO inventory_events (variant_id, kind, quantity, reason, actor_id, idempotency_key)
           VALUES ($1::uuid, 'adjustment', $2, $3, $4::uuid, $5)
           ON CONFLICT (variant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
           RETURNING id""", variant_id, delta, reason, actor_id, key)
    if inserted is None:
        return "duplicate", (await levels(conn, [variant_id]) or [None])[0]
    row = await conn.fetchrow(
        """UPDATE product_variants SET on_hand = on_hand + $2
           WHERE id = $1::uuid AND on_hand + $2 >= reserved + sold
           RETURNING id::text, on_hand - reserved - sold, stock_version""", variant_id, delta)
    if row is None:
        return "below_committed", None
    return "ok", StockLevel(row[0], row[1], row[2])


async def ledger(conn: asyncpg.Connection, variant_id: str, limit: int, before: int | None) -> list[dict]:
    rows = await conn.fetch(
        """SELECT id, kind, quantity, reason, actor_id::text AS actor_id, livestream_id::text AS livestream_id,
                  created_at
           FROM inventory_events WHERE variant_id = $1::uuid AND ($3::bigint IS NULL OR id < $3)
           ORDER BY id DESC LIMIT $2""", variant_id, limit, before)
    return [dict(r) for r in rows]


async def ledger_totals(conn: asyncpg.Connection, variant_id: str) -> dict:
    """The counters as the ledger sums them (for checks: they must equal the variant's counters)."""
    row = await conn.fetchrow(
        """SELECT coalesce(sum(quantity) FILTER (WHERE kind IN ('adjustment', 'return')), 0) AS on_hand,
                  coalesce(sum(quantity) FILTER (WHERE kind IN ('reservation', 'release')), 0) AS reserved,
                  coalesce(sum(quantity) FILTER (WHERE kind = 'sale'), 0) AS sold
           FROM inventory_events WHERE variant_id = $1::uuid""", variant_id)
    return dict(row)
