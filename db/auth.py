"""Queries of the sign-in flows: email one-time codes and wallet nonces (internal tables, run as system)."""
from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg


async def lock_address(conn: asyncpg.Connection, email: str) -> None:
    """Serialize code requests for one address until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('email_codes:' || $1, 0))", email)


async def codes_last_hour(conn: asyncpg.Connection, email: str) -> tuple[int, float | None]:
    """(codes created for `email` in the last hour, seconds until the oldest of them is an hour old)."""
    row = await conn.fetchrow(
        """SELECT count(*), extract(epoch FROM min(created_at) + interval '1 hour' - now())::float8
           FROM email_codes WHERE email = $1 AND created_at > now() - interval '1 hour'""", email)
    return row[0], row[1]


async def add_code(conn: asyncpg.Connection, email: str, code_hash: str, ttl: timedelta) -> None:
    await conn.execute("INSERT INTO email_codes (email, code_hash, expires_at) VALUES ($1, $2, now() + $3::interval)",
                       email, code_hash, ttl)


async def pending_codes(conn: asyncpg.Connection, email: str, limit: int) -> list[asyncpg.Record]:
    """The newest unconsumed codes of `email`, locked: id, code_hash, expired, attempts."""
    return await conn.fetch(
        """SELECT id, code_hash, expires_at < now() AS expired, attempts FROM email_codes
           WHERE email = $1 AND consumed_at IS NULL ORDER BY created_at DESC LIMIT $2 FOR UPDATE""", email, limit)


async def count_wrong_guess(conn: asyncpg.Connection, code_ids: list) -> None:
    await conn.execute("UPDATE email_codes SET attempts = attempts + 1 WHERE id = ANY($1::uuid[])", code_ids)


async def consume_codes(conn: asyncpg.Connection, email: str) -> None:
    await conn.execute("UPDATE email_codes SET consumed_at = now() WHERE email = $1 AND consumed_at IS NULL", email)


async def add_nonce(conn: asyncpg.Connection, nonce: str, address: str, message: str, expires: datetime) -> None:
    await conn.execute(
        "INSERT INTO wallet_nonces (nonce, wallet_address, message, expires_at) VALUES ($1, $2, $3, $4)",
        nonce, address, message, expires)


async def burn_nonce(conn: asyncpg.Connection, nonce: str, address: str) -> asyncpg.Record | None:
    """Consume an unused nonce of `address`: its message and whether it had expired; None when unknown or used."""
    return await conn.fetchrow(
        """UPDATE wallet_nonces SET consumed_at = now()
           WHERE nonce = $1 AND wallet_address = $2 AND consumed_at IS NULL
           RETURNING message, expires_at < now() AS expired""", nonce, address)


async def now(conn: asyncpg.Connection) -> float:
    """The database's clock, epoch seconds."""
    return await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
