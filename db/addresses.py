"""Queries on the buyer's saved shipping addresses (row-level security limits them to their owner)."""
from __future__ import annotations

import asyncpg

COLS = """id::text AS id, name, line1, line2, city, state, postal_code, country, phone, is_default, created_at"""


async def list_for(conn: asyncpg.Connection, user_id: str) -> list[dict]:
    rows = await conn.fetch(f"SELECT {COLS} FROM addresses WHERE user_id = $1::uuid "
                            "ORDER BY is_default DESC, created_at DESC", user_id)
    return [dict(r) for r in rows]


async def shipping(conn: asyncpg.Connection, user_id: str, address_id: str) -> dict | None:
    """One of the user's addresses as an order stores it (no id, default flag or date)."""
    row = await conn.fetchrow("""SELECT name, line1, line2, city, state, postal_code, country, phone FROM addresses
                                 WHERE id = $1::uuid AND user_id = $2::uuid""", address_id, user_id)
    return dict(row) if row is not None else None


async def create(conn: asyncpg.Connection, user_id: str, a: dict, make_default: bool) -> dict:
    if make_default:  # one default per user: clear the old one first
        await conn.execute("UPDATE addresses SET is_default = false WHERE user_id = $1::uuid AND is_default",
                           user_id)
    row = await conn.fetchrow(
        f"""INSERT INTO addresses (user_id, name, line1, line2, city, state, postal_code, country, phone, is_default)
            VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLS}""",
        user_id, a["name"], a["line1"], a.get("line2"), a["city"], a.get("state"), a.get("postal_code"),
        a["country"], a.get("phone"), make_default)
    return dict(row)


async def make_default(conn: asyncpg.Connection, user_id: str, address_id: str) -> dict | None:
    """Make one of the user's addresses the default (the old default cleared); the address, or None if not theirs."""
    await conn.execute("""UPDATE addresses SET is_default = false
                          WHERE user_id = $1::uuid AND is_default AND id <> $2::uuid""", user_id, address_id)
    row = await conn.fetchrow(f"UPDATE addresses SET is_default = true WHERE id = $1::uuid AND user_id = $2::uuid "
                              f"RETURNING {COLS}", address_id, user_id)
    return dict(row) if row is not None else None


async def delete(conn: asyncpg.Connection, user_id: str, address_id: str) -> bool:
    status = await conn.execute("DELETE FROM addresses WHERE id = $1::uuid AND user_id = $2::uuid",
                                address_id, user_id)
    return status.endswith(" 1")
