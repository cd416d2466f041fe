"""Queries on sellers' shipping settings, the weight and dimensions of what a cart holds, the rates quoted for a
buyer's cart (shipping_rates) and the rate an order was charged. Dimensions come back as float (numeric columns)."""
from __future__ import annotations

from datetime import datetime

import asyncpg

DEFAULTS = {"ship_from": None, "default_weight_g": 500, "default_length_cm": 20.0, "default_width_cm": 15.0,
            "default_height_cm": 10.0, "free_shipping_over_minor": None, "return_window_days": 30,
            "auto_purchase_label": False}
SETTINGS_FIELDS = tuple(DEFAULTS)
_SETTINGS_COLS = """ship_from, default_weight_g, default_length_cm::float8 AS default_length_cm,
    default_width_cm::float8 AS default_width_cm, default_height_cm::float8 AS default_height_cm,
    free_shipping_over_minor, return_window_days, auto_purchase_label, updated_at"""
RATE_COLS = """id::text AS id, seller_id::text AS seller_id, carrier, service, service_name, amount_minor,
    carrier_amount_minor, currency, estimated_days, provider, provider_rate_id, parcel, to_address, quote_key,
    expires_at, created_at"""


# ---- seller settings ----

async def seller_settings(conn: asyncpg.Connection, seller_id: str) -> dict:
    """The seller's shipping settings; the defaults (ship_from None, `configured` False) when never set."""
    row = await conn.fetchrow(f"SELECT {_SETTINGS_COLS} FROM seller_shipping WHERE seller_id = $1::uuid", seller_id)
    if row is None:
        return {"seller_id": seller_id, **DEFAULTS, "updated_at": None, "configured": False}
    return {"seller_id": seller_id, **dict(row), "configured": row["ship_from"] is not None}


async def many_settings(conn: asyncpg.Connection, seller_ids: list[str]) -> dict[str, dict]:
    rows = await conn.fetch(f"SELECT seller_id::text AS sid, {_SETTINGS_COLS} FROM seller_shipping "
                            "WHERE seller_id = ANY($1::uuid[])", seller_ids)
    found = {r["sid"]: {"seller_id": r["sid"], **{k: v for k, v in dict(r).items() if k != "sid"},
                        "configured": r["ship_from"] is not None} for r in rows}
    return {s: found.get(s) or {"seller_id": s, **DEFAULTS, "updated_at": None, "configured": False}
            for s in seller_ids}


async def save_settings(conn: asyncpg.Connection, seller_id: str, fields: dict) -> dict:
    """Insert or update the seller's settings with `fields` (only SETTINGS_FIELDS; the others keep their value)."""
    cols = [k for k in SETTINGS_FIELDS if k in fields]
    current = await seller_settings(conn, seller_id)
    merged = {k: (fields[k] if k in cols else current[k]) for k in SETTINGS_FIELDS}
    await conn.execute(
        """INSERT INTO seller_shipping (seller_id, ship_from, default_weight_g, default_length_cm, default_width_cm,
                                        default_height_cm, free_shipping_over_minor, return_window_days,
                                        auto_purchase_label)
           VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (seller_id) DO UPDATE SET
               ship_from = EXCLUDED.ship_from, default_weight_g = EXCLUDED.default_weight_g,
               default_length_cm = EXCLUDED.default_length_cm, default_width_cm = EXCLUDED.default_width_cm,
               default_height_cm = EXCLUDED.default_height_cm,
               free_shipping_over_minor = EXCLUDED.free_shipping_over_minor,
               return_window_days = EXCLUDED.return_window_days, auto_purchase_label = EXCLUDED.auto_purchase_label""",
        seller_id, *(merged[k] for k in SETTINGS_FIELDS))
    return await seller_settings(conn, seller_id)


# ---- what a cart holds ----

async def cart_lines(conn: asyncpg.Connection, user_id: str) -> list[dict]:
    """The buyer's active cart lines (not locked) with what a quote needs, in variant order."""
    rows = await conn.fetch(
        """SELECT ci.variant_id::text AS variant_id, ci.quantity, v.price_minor, v.currency,
                  p.seller_id::text AS seller_id, p.status AS product_status
           FROM carts c JOIN cart_items ci ON ci.cart_id = c.id
           JOIN product_variants v ON v.id = ci.variant_id JOIN products p ON p.id = v.product_id
           WHERE c.user_id = $1::uuid AND c.status = 'active' ORDER BY ci.variant_id""", user_id)
    return [dict(r) for r in rows]


async def dimensions(conn: asyncpg.Connection, variant_ids: list[str]) -> dict[str, dict]:
    """variant id -> its own and its product's weight and dimensions (None where unset)."""
    rows = await conn.fetch(
        """SELECT v.id::text AS variant_id,
                  v.weight_g AS v_weight_g, v.length_cm::float8 AS v_length_cm, v.width_cm::float8 AS v_width_cm,
                  v.height_cm::float8 AS v_height_cm,
                  p.weight_g AS p_weight_g, p.length_cm::float8 AS p_length_cm, p.width_cm::float8 AS p_width_cm,
                  p.height_cm::float8 AS p_height_cm
           FROM product_variants v JOIN products p ON p.id = v.product_id WHERE v.id = ANY($1::uuid[])""",
        variant_ids)
    return {r["variant_id"]: dict(r) for r in rows}


# ---- quoted rates ----

async def insert_rates(conn: asyncpg.Connection, user_id: str, seller_id: str, rates: list[dict], parcel: dict,
                       to_address: dict, quote_key: str) -> list[dict]:
    """Store the rates of one quote (each dict: carrier, service, service_name, amount_minor,
    carrier_amount_minor, currency, estimated_days, provider, provider_rate_id, expires_at); cheapest first."""
    if not rates:
        return []
    rows = await conn.fetch(
        f"""INSERT INTO shipping_rates (user_id, seller_id, carrier, service, service_name, amount_minor,
                                        carrier_amount_minor, currency, estimated_days, provider, provider_rate_id,
                                        parcel, to_address, quote_key, expires_at)
            SELECT $1::uuid, $2::uuid, r.carrier, r.service, r.service_name, r.amount_minor, r.carrier_amount_minor,
                   r.currency, r.estimated_days, r.provider, r.provider_rate_id, $3, $4, $5, r.expires_at
            FROM unnest($6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::int[],
                        $13::text[], $14::text[], $15::timestamptz[])
                 AS r(carrier, service, service_name, amount_minor, carrier_amount_minor, currency, estimated_days,
                      provider, provider_rate_id, expires_at)
            RETURNING {RATE_COLS}""",
        user_id, seller_id, parcel, to_address, quote_key,
        *([r[k] for r in rates] for k in ("carrier", "service", "service_name", "amount_minor",
                                          "carrier_amount_minor", "currency", "estimated_days", "provider",
                                          "provider_rate_id", "expires_at")))
    return sorted((dict(r) for r in rows), key=rate_order)


def rate_order(r: dict) -> tuple:
    """Cheapest first (what the carrier charges), then fastest, then by name: one stable order."""
    return (r["carrier_amount_minor"], r["estimated_days"] if r["estimated_days"] is not None else 1 << 30,
            r["carrier"], r["service"])


async def fresh_rates(conn: asyncpg.Connection, user_id: str, seller_id: str, quote_key: str,
                      valid_until: datetime) -> list[dict]:
    """The buyer's rates of this quote that are still honoured at `valid_until`, cheapest first."""
    rows = await conn.fetch(
        f"""SELECT {RATE_COLS} FROM shipping_rates
            WHERE user_id = $1::uuid AND seller_id = $2::uuid AND quote_key = $3 AND expires_at > $4""",
        user_id, seller_id, quote_key, valid_until)
    return sorted((dict(r) for r in rows), key=rate_order)


async def rate(conn: asyncpg.Connection, user_id: str, rate_id: str) -> dict | None:
    row = await conn.fetchrow(f"SELECT {RATE_COLS} FROM shipping_rates WHERE id = $1::uuid AND user_id = $2::uuid",
                              rate_id, user_id)
    return dict(row) if row is not None else None


async def prune_rates(conn: asyncpg.Connection, user_id: str, seller_id: str, quote_key: str, keep: int,
                      spare: list[str]) -> int:
    """Delete the buyer's expired rates, this seller's rates of other quotes (a changed cart or address made them
    stale) and, past the `keep` newest, the oldest ones; never those of `spare` (the quote just stored). The
    number deleted."""
    status = await conn.execute(
        """DELETE FROM shipping_rates WHERE user_id = $1::uuid AND id <> ALL($5::uuid[]) AND (
               expires_at <= now()
               OR (seller_id = $2::uuid AND quote_key <> $3)
               OR id IN (SELECT id FROM shipping_rates WHERE user_id = $1::uuid
                         ORDER BY created_at DESC, id DESC OFFSET $4))""", user_id, seller_id, quote_key, keep, spare)
    return int(status.split()[-1])


async def rate_count(conn: asyncpg.Connection, user_id: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM shipping_rates WHERE user_id = $1::uuid", user_id)


async def purge_expired(conn: asyncpg.Connection, limit: int = 5000) -> int:
    """Delete expired rates of every buyer (at most `limit` per call): the sweeper's query."""
    status = await conn.execute(
        """DELETE FROM shipping_rates WHERE id IN (
               SELECT id FROM shipping_rates WHERE expires_at <= now() ORDER BY expires_at LIMIT $1)""", limit)
    return int(status.split()[-1])


# ---- orders ----

async def set_order_shipping(conn: asyncpg.Connection, order_id: str, amount_minor: int, rate: dict | None) -> None:
    """Charge the order's shipping (its total follows: subtotal - discount + shipping) and keep the chosen rate."""
    await conn.execute(
        """UPDATE orders SET shipping_minor = $2, total_minor = subtotal_minor - discount_minor + $2, shipping_rate = $3
           WHERE id = $1::uuid""", order_id, amount_minor, rate)
