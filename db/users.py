"""Queries on users and sellers."""
from __future__ import annotations

import asyncpg

USER_COLS = ("id::text AS id, email, name, role, wallet_address, avatar_url, created_at, updated_at, suspended_at, "
             "suspended_reason")
# what a worker keeps of a user whose sign-in state changed (live/auth/sessions.py)
AUTH_COLS = ("id::text AS id, role, suspended_at IS NOT NULL AS suspended, "
             "extract(epoch FROM tokens_valid_after)::float8 AS valid_after, "
             "extract(epoch FROM auth_changed_at)::float8 AS changed")


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


async def by_wallet(conn: asyncpg.Connection, address: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLS} FROM users WHERE wallet_address = $1", address)


async def upsert_by_wallet(conn: asyncpg.Connection, address: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO users (wallet_address, name) VALUES ($1, left($1, 4) || '…' || right($1, 4))
            ON CONFLICT (wallet_address) DO UPDATE SET wallet_address = users.wallet_address
            RETURNING {USER_COLS}""", address)


async def ensure_with_id(conn: asyncpg.Connection, user_id: str, email: str | None, name: str | None) -> asyncpg.Record:
    """A user known by an external identity provider's id (e.g. Supabase Auth's uuid)."""
    return await conn.fetchrow(
        f"""INSERT INTO users (id, email, name)
            VALUES ($1::uuid, $2, coalesce($3, split_part(coalesce($2, 'user'), '@', 1)))
            ON CONFLICT (id) DO UPDATE SET id = users.id
            RETURNING {USER_COLS}""", user_id, email, name)


async def find_or_create_by_name(conn: asyncpg.Connection, name: str, role: str) -> asyncpg.Record:
    row = await conn.fetchrow(f"SELECT {USER_COLS} FROM users WHERE name = $1 ORDER BY created_at LIMIT 1", name)
    if row is None:
        row = await conn.fetchrow(f"INSERT INTO users (name, role) VALUES ($1, $2) RETURNING {USER_COLS}", name, role)
    elif row["role"] != role and role != "customer":
        row = await conn.fetchrow(
            f"UPDATE users SET role = $2, updated_at = now() WHERE id = $1::uuid RETURNING {USER_COLS}",
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


# ---- sign-in state (token revocation, suspension, roles) ----

async def exists(conn: asyncpg.Connection, user_id: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1::uuid)", user_id)


async def existing(conn: asyncpg.Connection, user_ids: list[str]) -> set[str]:
    """Which of these user ids exist (as canonical lowercase UUID text)."""
    rows = await conn.fetch("SELECT id::text FROM users WHERE id = ANY($1::uuid[])", user_ids)
    return {r[0] for r in rows}


async def auth_changes(conn: asyncpg.Connection, since: float, *, with_suspended: bool) -> list[asyncpg.Record]:
    """Users whose role, suspension or token cut-off changed after `since` (epoch seconds), and with
    `with_suspended` every suspended user (a suspension outlives the tokens' lifetime). `now`: the database's
    clock."""
    return await conn.fetch(
        f"""SELECT {AUTH_COLS}, extract(epoch FROM clock_timestamp())::float8 AS now FROM users
            WHERE auth_changed_at > to_timestamp($1) OR ($2 AND suspended_at IS NOT NULL)""", since, with_suspended)


async def revoke_tokens(conn: asyncpg.Connection, user_id: str, at: float) -> asyncpg.Record | None:
    """Tokens of `user_id` issued before `at` (epoch seconds) stop working. The user's new auth state."""
    return await conn.fetchrow(
        f"UPDATE users SET tokens_valid_after = to_timestamp($2) WHERE id = $1::uuid RETURNING {AUTH_COLS}",
        user_id, at)


async def set_role(conn: asyncpg.Connection, user_id: str, role: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"UPDATE users SET role = $2 WHERE id = $1::uuid RETURNING {AUTH_COLS}",
                               user_id, role)


async def set_suspended(conn: asyncpg.Connection, user_id: str, at: float | None,
                        reason: str | None) -> asyncpg.Record | None:
    """Suspend (at: epoch seconds; every token issued before stops working) or lift a suspension (at=None)."""
    return await conn.fetchrow(
        f"""UPDATE users SET suspended_at = to_timestamp($2), suspended_reason = $3,
                   tokens_valid_after = CASE WHEN $2::float8 IS NULL THEN tokens_valid_after ELSE to_timestamp($2) END
            WHERE id = $1::uuid RETURNING {AUTH_COLS}""", user_id, at, reason)


async def get_for_update(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLS} FROM users WHERE id = $1::uuid FOR UPDATE", user_id)


async def search(conn: asyncpg.Connection, *, q: str | None, role: str | None, suspended: bool | None,
                 limit: int, offset: int) -> list[asyncpg.Record]:
    """Users for the admin list, newest first: `q` matches email, name or wallet address (substring)."""
    return await conn.fetch(
        f"""SELECT {USER_COLS} FROM users
            WHERE ($1::text IS NULL OR strpos(lower(email), lower($1)) > 0 OR strpos(lower(name), lower($1)) > 0
                   OR wallet_address = $1)
              AND ($2::text IS NULL OR role = $2)
              AND ($3::bool IS NULL OR (suspended_at IS NOT NULL) = $3)
            ORDER BY created_at DESC, id LIMIT $4 OFFSET $5""", q, role, suspended, limit, offset)
