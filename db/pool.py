"""The connection pool and per-request transactions that run as the unprivileged `live_app` role.

Every transaction first sets who is calling (`app.user_id`, `app.role`) and switches to `live_app`, a role
without BYPASSRLS, so PostgreSQL's row-level security policies apply to every query, including one that
forgets its WHERE clause. Background work that acts for nobody in particular uses role `system`.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Iterable, Mapping, Protocol

import asyncpg
import orjson

from live.errors import DomainError

APP_ROLE = "live_app"
_SET_CALLER = (
    "SELECT set_config('role', $1, true), set_config('app.user_id', $2, true), set_config('app.role', $3, true)"
)


class Caller(Protocol):
    user_id: str | None
    role: str


_WARM: list[tuple[str, tuple]] = []


def warm(sql: str, *args: object) -> str:
    """Register a hot statement, run once with `args` (which must change nothing) on every new pooled
    connection: its prepared statement and the codecs of its types (asyncpg looks up array types such as
    uuid[] and int4[] with a catalog query, several round trips) are then ready before the first request,
    instead of costing that request ~10 ms and, in a burst, several turns of a busy event loop. Returns sql."""
    _WARM.append((sql, args))
    return sql


async def update_columns(conn: asyncpg.Connection, table: str, row_id: str, fields: Mapping[str, object],
                         allowed: Iterable[str], casts: Mapping[str, str] | None = None) -> None:
    """`UPDATE table SET ... WHERE id = row_id` (a uuid) with those of `fields` whose names are in `allowed`
    (column names never come from the caller's data); `casts` adds a type cast to a column's parameter.
    Nothing runs when no field is allowed. A null for a NOT NULL column is 422 `validation_failed` naming it (the
    request models refuse it first; this keeps a model that forgets from answering 500)."""
    cols = [k for k in fields if k in allowed]
    if not cols:
        return
    sets = ", ".join(f"{k} = ${i}{(casts or {}).get(k, '')}" for i, k in enumerate(cols, start=2))
    try:
        await conn.execute(f"UPDATE {table} SET {sets} WHERE id = $1::uuid", row_id, *(fields[k] for k in cols))
    except asyncpg.NotNullViolationError as exc:  # a null the request model let through: the caller's mistake
        column = exc.column_name or "a field"
        raise DomainError("validation_failed", f"{column} must not be null",
                          details=[{"field": column, "message": "must not be null"}]) from None


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
                                  schema="pg_catalog")
    for sql, args in _WARM:
        try:
            await conn.fetch(sql, *args)
        except asyncpg.PostgresError:  # not migrated yet (a pool opened to migrate): it warms on first use
            pass


class Database:
    def __init__(self, pool: asyncpg.Pool, dsn: str):
        self.pool = pool
        self.dsn = dsn

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 20) -> "Database":
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                         command_timeout=30)
        return cls(pool, dsn)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def tx(self, caller: Caller, *, isolation: str = "read_committed") -> AsyncIterator[asyncpg.Connection]:
        """A transaction as `caller`, with RLS applied."""
        async with self.pool.acquire() as conn:
            async with conn.transaction(isolation=isolation):
                await conn.execute(_SET_CALLER, APP_ROLE, caller.user_id or "", caller.role)
                yield conn

    async def ping(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
