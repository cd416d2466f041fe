"""Queries on shipments (outbound and return parcels), their status history and the carriers' tracking events."""
from __future__ import annotations

from datetime import datetime

import asyncpg

_COLS = """s.id::text AS id, s.order_id::text AS order_id, s.kind, s.provider, s.carrier, s.service,
    s.tracking_number, s.tracking_url, s.label_url, s.status, s.rate_minor, s.currency, s.provider_ref, s.rate,
    s.from_address, s.to_address, s.parcel, s.last_event, s.eta, s.last_error, s.purchased_at, s.shipped_at,
    s.delivered_at, s.voided_at, s.created_at, s.updated_at"""

ACTIVE = "s.status NOT IN ('voided', 'purchase_failed')"
MAX_SHIPMENTS_SHOWN = 20  # an order's latest shipments in its detail (voided and failed ones included)

# what the buyer and the seller see of a shipment `sh` (the order detail, the push)
SHIPMENT_JSON = """jsonb_build_object('id', sh.id, 'kind', sh.kind, 'status', sh.status, 'provider', sh.provider,
    'carrier', sh.carrier, 'service', sh.service, 'tracking_number', sh.tracking_number,
    'tracking_url', sh.tracking_url,
    'label', sh.tracking_number IS NOT NULL AND sh.provider <> 'manual', 'eta', sh.eta, 'last_event', sh.last_event,
    'last_error', sh.last_error, 'purchased_at', sh.purchased_at, 'shipped_at', sh.shipped_at,
    'delivered_at', sh.delivered_at, 'voided_at', sh.voided_at, 'created_at', sh.created_at)"""


# ---- shipments ----

async def insert(conn: asyncpg.Connection, *, order_id: str, kind: str, provider: str, status: str,
                 carrier: str | None = None, service: str | None = None, rate: dict | None = None,
                 from_address: dict | None = None, to_address: dict | None = None, parcel: dict | None = None,
                 tracking_number: str | None = None, tracking_url: str | None = None,
                 shipped_at: datetime | None = None) -> str | None:
    """A new shipment; None when the order already has a live one of this kind (shipments_one_active_key)."""
    r = rate or {}
    try:
        async with conn.transaction():
            return await conn.fetchval(
                """INSERT INTO shipments (order_id, kind, provider, status, carrier, service, rate, rate_minor,
                                          currency, from_address, to_address, parcel, tracking_number, tracking_url,
                                          shipped_at)
                   VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                   RETURNING id::text""",
                order_id, kind, provider, status, carrier, service, rate, r.get("amount_minor"), r.get("currency"),
                from_address, to_address, parcel, tracking_number, tracking_url, shipped_at)
    except asyncpg.UniqueViolationError:
        return None


async def get(conn: asyncpg.Connection, shipment_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLS} FROM shipments s WHERE s.id = $1::uuid" + (" FOR UPDATE" if lock else ""), shipment_id)


async def active(conn: asyncpg.Connection, order_id: str, kind: str = "outbound", *,
                 lock: bool = False) -> asyncpg.Record | None:
    """The order's live shipment of this kind (not voided, not failed), if any."""
    return await conn.fetchrow(
        f"""SELECT {_COLS} FROM shipments s WHERE s.order_id = $1::uuid AND s.kind = $2 AND {ACTIVE}
            ORDER BY s.created_at DESC LIMIT 1""" + (" FOR UPDATE" if lock else ""), order_id, kind)


async def lock_order_of(conn: asyncpg.Connection, shipment_id: str) -> asyncpg.Record | None:
    """Lock the shipment's order (FOR UPDATE; take it before the shipment's own lock) and return its id and status;
    None when the shipment does not exist."""
    return await conn.fetchrow(
        """SELECT o.id::text AS id, o.status FROM orders o
           WHERE o.id = (SELECT order_id FROM shipments WHERE id = $1::uuid) FOR UPDATE""", shipment_id)


_SETTABLE = {"status", "carrier", "service", "tracking_number", "tracking_url", "label_url", "provider_ref", "rate",
             "rate_minor", "currency", "last_event", "eta", "last_error", "purchased_at", "shipped_at",
             "delivered_at", "voided_at"}


async def update(conn: asyncpg.Connection, shipment_id: str, **fields) -> None:
    cols = [k for k in fields if k in _SETTABLE]
    if len(cols) != len(fields):
        raise ValueError(f"not a shipment column: {set(fields) - _SETTABLE}")
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(cols, start=2))
    await conn.execute(f"UPDATE shipments SET {sets} WHERE id = $1::uuid", shipment_id, *(fields[k] for k in cols))


async def add_history(conn: asyncpg.Connection, shipment_id: str, from_status: str | None, to_status: str,
                      actor_id: str | None, actor_kind: str, reason: str | None) -> None:
    await conn.execute(
        """INSERT INTO shipment_status_history (shipment_id, from_status, to_status, actor_id, actor_kind, reason)
           VALUES ($1::uuid, $2, $3, $4::uuid, $5, $6)""",
        shipment_id, from_status, to_status, actor_id, actor_kind, reason)


# ---- the order side a label needs ----

async def order_for_label(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    """The order's status, parties, chosen rate and address, with the seller's shipping settings (unlocked)."""
    return await conn.fetchrow(
        """SELECT o.id::text AS id, o.status, o.user_id::text AS user_id, o.seller_id::text AS seller_id,
                  s.user_id::text AS seller_user_id, o.shipping_rate, o.shipping_address, o.currency,
                  ss.ship_from, ss.auto_purchase_label,
                  jsonb_build_object('weight_g', coalesce(ss.default_weight_g, 500),
                                     'length_cm', coalesce(ss.default_length_cm, 20)::float8,
                                     'width_cm', coalesce(ss.default_width_cm, 15)::float8,
                                     'height_cm', coalesce(ss.default_height_cm, 10)::float8) AS default_parcel
           FROM orders o JOIN sellers s ON s.id = o.seller_id
           LEFT JOIN seller_shipping ss ON ss.seller_id = o.seller_id
           WHERE o.id = $1::uuid""", order_id)


async def order_currency(conn: asyncpg.Connection, order_id: str) -> str | None:
    return await conn.fetchval("SELECT currency FROM orders WHERE id = $1::uuid", order_id)


async def quoted_rate(conn: asyncpg.Connection, rate_id: str, *, seller_id: str, user_id: str) -> dict | None:
    """A rate quoted for this buyer and seller, as a label is bought from it (at what the carrier charges)."""
    row = await conn.fetchrow(
        """SELECT carrier, service, service_name, carrier_amount_minor AS amount_minor, currency, estimated_days,
                  provider, provider_rate_id, expires_at FROM shipping_rates
           WHERE id = $1::uuid AND seller_id = $2::uuid AND user_id = $3::uuid""", rate_id, seller_id, user_id)
    return {**dict(row), "expires_at": row["expires_at"].isoformat()} if row else None


async def auto_purchase_orders(conn: asyncpg.Connection, order_ids: list[str]) -> list[str]:
    """Of these orders, those whose seller buys labels on payment."""
    rows = await conn.fetch(
        """SELECT o.id::text FROM orders o JOIN seller_shipping ss ON ss.seller_id = o.seller_id
           WHERE o.id = ANY($1::uuid[]) AND ss.auto_purchase_label ORDER BY o.id""", order_ids)
    return [r[0] for r in rows]


# ---- tracking events ----

async def store_event_by_number(conn: asyncpg.Connection, *, provider: str, carrier: str | None,
                                tracking_number: str, status: str, substatus: str | None, status_date: datetime,
                                details: dict) -> tuple[str | None, bool]:
    """Store a tracking event once per (tracking number, status, status date) for the shipment with that number (the
    newest when a voided one shares it; none: stored with no shipment), in one statement. Returns (the shipment's
    id or None, stored as new)."""
    row = await conn.fetchrow(
        """WITH s AS (SELECT id FROM shipments WHERE tracking_number = $3
                      ORDER BY (status = 'voided'), created_at DESC LIMIT 1),
                ins AS (INSERT INTO shipping_events (shipment_id, provider, carrier, tracking_number, status,
                                                     substatus, status_date, details)
                        SELECT (SELECT id FROM s), $1, $2, $3, $4, $5, $6, $7
                        ON CONFLICT (tracking_number, status, status_date) DO NOTHING RETURNING id)
           SELECT (SELECT id::text FROM s) AS sid, EXISTS (SELECT 1 FROM ins) AS new""",
        provider, carrier, tracking_number, status, substatus, status_date, details)
    return row["sid"], row["new"]


async def attach_event(conn: asyncpg.Connection, shipment_id: str, tracking_number: str, status: str,
                       status_date: datetime) -> None:
    """Give a stored event with no shipment its shipment (found by our metadata after the number did not match)."""
    await conn.execute(
        """UPDATE shipping_events SET shipment_id = $1::uuid
           WHERE tracking_number = $2 AND status = $3 AND status_date = $4 AND shipment_id IS NULL""",
        shipment_id, tracking_number, status, status_date)


async def link_events(conn: asyncpg.Connection, shipment_id: str, tracking_number: str) -> int:
    """Give the shipment the stored events of its tracking number that came before the number was ours (a label
    whose purchase answer was late); the number of events the shipment has."""
    return await conn.fetchval(
        """WITH linked AS (UPDATE shipping_events SET shipment_id = $1::uuid
                           WHERE tracking_number = $2 AND shipment_id IS NULL RETURNING id)
           SELECT (SELECT count(*) FROM linked)
                  + (SELECT count(*) FROM shipping_events WHERE shipment_id = $1::uuid)""",
        shipment_id, tracking_number)


async def scanned(conn: asyncpg.Connection, shipment_id: str) -> bool:
    """Whether a carrier scan of the shipment is stored (applied or still waiting for its apply job)."""
    return await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM shipping_events WHERE shipment_id = $1::uuid
                          AND status IN ('transit', 'out_for_delivery', 'delivered', 'failure', 'returned'))""",
        shipment_id)


async def events(conn: asyncpg.Connection, shipment_id: str, limit: int) -> list[asyncpg.Record]:
    """A shipment's events in status-date order (the first `limit`)."""
    return await conn.fetch(
        """SELECT id, status, substatus, status_date, details, applied FROM shipping_events
           WHERE shipment_id = $1::uuid ORDER BY status_date, id LIMIT $2""", shipment_id, limit)


async def set_applied(conn: asyncpg.Connection, applied: list[int], not_applied: list[int]) -> None:
    await conn.execute(
        """UPDATE shipping_events SET applied = (id = ANY($1::bigint[]))
           WHERE id = ANY($1::bigint[] || $2::bigint[]) AND applied IS DISTINCT FROM (id = ANY($1::bigint[]))""",
        applied, not_applied)


# ---- reading (as the caller: row-level security) ----

_DETAIL = f"""{SHIPMENT_JSON} || jsonb_build_object(
    'order_id', sh.order_id,
    'events', coalesce((SELECT jsonb_agg(e.j ORDER BY e.status_date, e.id) FROM (
        SELECT jsonb_build_object('status', ev.status, 'substatus', ev.substatus, 'status_date', ev.status_date,
            'message', ev.details->>'message', 'location', ev.details->>'location', 'applied', ev.applied) AS j,
            ev.status_date, ev.id
        FROM shipping_events ev WHERE ev.shipment_id = sh.id ORDER BY ev.status_date DESC, ev.id DESC LIMIT $2) e),
        '[]'::jsonb),
    'history', coalesce((SELECT jsonb_agg(jsonb_build_object('from', h.from_status, 'to', h.to_status,
        'actor_kind', h.actor_kind, 'actor_id', h.actor_id, 'reason', h.reason, 'at', h.created_at) ORDER BY h.id)
        FROM (SELECT * FROM shipment_status_history WHERE shipment_id = sh.id ORDER BY id DESC LIMIT $2) h),
        '[]'::jsonb))"""


async def for_order(conn: asyncpg.Connection, order_id: str, *, limit: int) -> list[dict]:
    """The order's shipments (the latest MAX_SHIPMENTS_SHOWN), oldest first, each with its tracking timeline and its
    status history (the latest `limit` of each, oldest first)."""
    rows = await conn.fetch(
        f"""SELECT {_DETAIL} AS j
            FROM (SELECT * FROM shipments WHERE order_id = $1::uuid ORDER BY created_at DESC LIMIT $3) sh
            ORDER BY sh.created_at""", order_id, limit, MAX_SHIPMENTS_SHOWN)
    return [r["j"] for r in rows]


async def detail(conn: asyncpg.Connection, shipment_id: str, *, limit: int) -> dict | None:
    """One shipment as for_order shows it (None when the caller may not see it: row-level security)."""
    return await conn.fetchval(f"SELECT {_DETAIL} FROM shipments sh WHERE sh.id = $1::uuid", shipment_id, limit)


async def label_parties(conn: asyncpg.Connection, shipment_id: str) -> asyncpg.Record | None:
    """What serving a label needs: the shipment, its order's number and buyer, and its seller's user (unlocked)."""
    return await conn.fetchrow(
        f"""SELECT {_COLS}, o.number AS order_number, o.user_id::text AS user_id, se.user_id::text AS seller_user_id
            FROM shipments s JOIN orders o ON o.id = s.order_id JOIN sellers se ON se.id = o.seller_id
            WHERE s.id = $1::uuid""", shipment_id)


async def tracking_taken(conn: asyncpg.Connection, tracking_number: str, order_id: str) -> bool:
    """Whether a live shipment (not voided, not failed) of another order has this tracking number. Takes a transaction
    lock on the number first, so two orders given the same number at once are checked one after the other."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('tracking:' || $1, 0))", tracking_number)
    return await conn.fetchval(
        f"""SELECT EXISTS (SELECT 1 FROM shipments s WHERE s.tracking_number = $1 AND s.order_id <> $2::uuid
                           AND {ACTIVE})""", tracking_number, order_id)
