"""Queries on users and sellers."""
from __future__ import annotations

import asyncpg

USER_COLS = "id::text AS id, email, name, role, wallet_address, avatar_url, created_at, updated_at"


async def get(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLS} FROM users WHERE id = $1::uuid", user_id)


async def upsert_by_email(conn: asyncpg.Connection, email: str) -> asyncpg.Record:
    row = await conn.fetchrow(f"SELECT {USER_COLS} FROM users WHERE lower(email) = lower($1)", email)
    if row:
        return row
    return await conn.fetchrow(
        f"""INSERT INTO users (email, name) VALUES ($1, split_part($1, '@', 1))
            ON CONFLICT (lower(email)) WHERE email IS NOT NULL DO UPDATE SET email = users.email
            RETURNING {USER_COLS}""", email)


async def upsert_by_wallet(conn: asyncpg.Connection, address: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO users (wallet_address, name) VALUES ($1, left($1, 4) || '…' || right($1, 4))
            ON CONFLICT (wallet_address) DO UPDATE SET wallet_address = users.wallet_address
            RETURNING {USER_COLS}""", address)


async def ensure_with_id(conn: asyncpg.Connection, user_id: str, email: str | None, name: str | None) -> asyncpg.Record:
    """A user known by an external identity provider's id (e.g. Supabase Auth's uuid)."""
    return await conn.fetchrow(
        f"""INSERT INTO users (id, email, name) VALUES ($1::uuid, $2, coalesce($3, split_part(coalesce($2, 'user'), '@', 1)))
            ON CONFLICT (id) DO UPDATE SET id = users.id
            RETURNING {USER_COLS}""", user_id, email, name)


async def find_or_create_by_name(conn: asyncpg.Connection, name: str, role: str) -> asyncpg.Record:
    row = await conn.fetchrow(f"SELECT {USER_COLS} FROM users WHERE name = $1 ORDER BY created_at LIMIT 1", name)
    if row is None:
        row = await conn.fetchrow(f"INSERT INTO users (name, role) VALUES ($1, $2) RETURNING {USER_COLS}", name, role)
    elif row["role"] != role and role != "customer":
        row = await conn.fetchrow(f"UPDATE users SET role = $2, updated_at = now() WHERE id = $1::uuid RETURNING {USER_COLS}",
                                  row["id"], role)
    return row


async def update_profile(conn: asyncpg.Connection, user_id: str, fields: dict) -> asyncpg.Record | None:
    allowed = {k: v for k, v in fields.items() if k in ("name", "avatar_url", "email")}
    if not allowed:
        return await get(conn, user_id)
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(allowed, start=2))
    return await conn.fetchrow(
        f"UPDATE users SET {sets}, updated_at = now() WHERE id = $1::uuid RETURNING {USER_COLS}",
        user_id, *allowed.values())


async def ensure_seller(conn: asyncpg.Connection, user_id: str, display_name: str, slug: str) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO sellers (user_id, display_name, slug) VALUES ($1::uuid, $2, $3)
           ON CONFLICT (user_id) DO UPDATE SET display_name = sellers.display_name
           RETURNING id::text AS id, user_id::text AS user_id, display_name, slug""", user_id, display_name, slug)


async def seller_for_user(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id::text AS id, user_id::text AS user_id, display_name, slug FROM sellers WHERE user_id = $1::uuid",
        user_id)
