"""Putting a job on the queue: one row in pgqueuer's table, written in the caller's transaction so the job exists
exactly when the state change that needs it commits.

`enqueue` runs inside hot transactions (a payment's, a webhook's), so it is one prepared statement and nothing
else: pgqueuer's enqueue statement is rendered once per process (`Queries.enqueue` builds a driver, a query builder
and the SQL text on every call, and its json headers would go through the pool's own jsonb codec twice).
`enqueue_many` is the same statement (it takes arrays) for any number of jobs of one kind: one round trip."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import asyncpg
import orjson
from pgqueuer.adapters.persistence.qb import QueryQueueBuilder

_SQL: str | None = None
_NOW = timedelta(0)
MAX_KIND = 100  # characters of a job kind
MAX_KEY = 200  # characters of a dedupe key
MAX_DELAY = 366 * 24 * 3600.0  # seconds a job may be put off


class Permanent(Exception):
    """Raised by a handler for a failure that no retry can mend: the job is held (dead) at once."""


def _sql() -> str:
    global _SQL
    if _SQL is None:
        _SQL = QueryQueueBuilder().build_enqueue_query("skip")
    return _SQL


def _check(kind: str, keys: Sequence[str | None], delay: float) -> timedelta:
    if not kind or len(kind) > MAX_KIND or any(key is not None and len(key) > MAX_KEY for key in keys):
        raise ValueError(f"job kind or key too long: {kind!r} {[k for k in keys if k and len(k) > MAX_KEY][:1]!r}")
    if not 0 <= delay <= MAX_DELAY:  # NaN too
        raise ValueError(f"job delay out of range: {delay!r}")
    return timedelta(seconds=delay) if delay > 0 else _NOW


async def enqueue(conn: asyncpg.Connection, kind: str, payload: dict, *, key: str | None = None,
                  delay: float = 0.0) -> int | None:
    """Queue job `kind` with `payload` (a JSON object) in `conn`'s transaction, to run after `delay` seconds.
    With `key`, at most one job of that key is queued or running: a second enqueue is skipped (None).
    Returns the job's id."""
    after = _check(kind, [key], delay)
    row = await conn.fetchrow(_sql(), [0], [kind], [orjson.dumps(payload)], [after], [key], [None])
    return None if row is None else row["id"]


async def enqueue_many(conn: asyncpg.Connection, kind: str, payloads: Sequence[dict],
                       keys: Sequence[str | None] | None = None, delay: float = 0.0) -> list[int]:
    """Queue one job `kind` per payload in `conn`'s transaction, all in one statement (`enqueue`'s, with arrays),
    each to run after `delay` seconds; `keys[i]` (optional) dedupes job i as `enqueue`'s key does (a key queued or
    running, or given twice here, is skipped). Same checks as `enqueue`, before any SQL. Returns the ids of the
    jobs queued, in payload order."""
    if keys is not None and len(keys) != len(payloads):
        raise ValueError(f"{len(keys)} keys for {len(payloads)} payloads")
    n = len(payloads)
    key_list = [None] * n if keys is None else list(keys)
    after = _check(kind, key_list, delay)
    if n == 0:
        return []
    rows = await conn.fetch(_sql(), [0] * n, [kind] * n, [orjson.dumps(p) for p in payloads], [after] * n,
                            key_list, [None] * n)
    return [r["id"] for r in rows]
