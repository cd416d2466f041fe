"""Putting a job on the queue: one row in pgqueuer's table, written in the caller's transaction so the job exists
exactly when the state change that needs it commits."""
from __future__ import annotations

from datetime import timedelta

import asyncpg
import orjson
from pgqueuer.queries import Queries


class Permanent(Exception):
    """Raised by a handler for a failure that no retry can mend: the job is held (dead) at once."""


async def enqueue(conn: asyncpg.Connection, kind: str, payload: dict, *, key: str | None = None,
                  delay: float = 0.0) -> int | None:
    """Queue job `kind` with `payload` (a JSON object) in `conn`'s transaction, to run after `delay` seconds.
    With `key`, at most one job of that key is queued or running: a second enqueue is skipped (None)."""
    ids = await Queries.from_asyncpg_connection(conn).enqueue(
        kind, orjson.dumps(payload), 0, timedelta(seconds=delay) if delay > 0 else None, key, on_conflict="skip")
    return ids[0]
