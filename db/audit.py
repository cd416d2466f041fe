"""The audit log: one append-only row per seller or admin change, written in the same transaction as the change.

`record` is the only writer. `actor_id` must be the transaction's caller (RLS: `audit_log_insert_self`);
`before`/`after` hold only the fields that changed; the request id comes from the logging context.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import asyncpg

from live.logging import request_id_var


def changed(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> tuple[dict, dict]:
    """The fields of `after` whose value differs from `before`, as (before, after) dicts of just those fields."""
    before = dict(before or {})
    after = dict(after or {})
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


async def record(conn: asyncpg.Connection, actor_id: str | None, action: str, entity: str, entity_id: Any,
                 *, before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None,
                 **extra: Any) -> None:
    """Append one audit row: who (`actor_id`), what (`action`, e.g. `product.update`, on `entity`/`entity_id`),
    before → after, and the request id. Values must be JSON-serialisable (str() is applied to others)."""
    data: dict[str, Any] = {"before": _plain(before or {}), "after": _plain(after or {})}
    if extra:
        data.update(_plain(extra))
    await conn.execute(
        "INSERT INTO audit_log (actor_id, action, entity, entity_id, data, request_id) "
        "VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6)",
        actor_id, action, entity, None if entity_id is None else str(entity_id), data, request_id_var.get())


async def listing(conn: asyncpg.Connection, *, actor_id: str | None = None, action: str | None = None,
                  entity: str | None = None, entity_id: str | None = None, since: datetime | None = None,
                  until: datetime | None = None, before_id: int | None = None, limit: int = 50) -> list[dict]:
    """Audit rows newest first (by id, the order they were written in), filtered; `before_id` pages on (rows with a
    smaller id). `action` is exact, or a prefix when it ends with a dot (`order.`). Readable by admins only (RLS)."""
    prefix = action[:-1] if action and action.endswith(".") else None
    rows = await conn.fetch(
        """SELECT a.id, a.actor_id::text AS actor_id, u.name AS actor_name, a.action, a.entity, a.entity_id, a.data,
                  a.request_id, a.created_at
           FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
           WHERE ($1::uuid IS NULL OR a.actor_id = $1::uuid)
             AND ($2::text IS NULL OR a.action = $2)
             AND ($3::text IS NULL OR starts_with(a.action, $3 || '.'))
             AND ($4::text IS NULL OR a.entity = $4)
             AND ($5::text IS NULL OR a.entity_id = $5)
             AND ($6::timestamptz IS NULL OR a.created_at >= $6)
             AND ($7::timestamptz IS NULL OR a.created_at < $7)
             AND ($8::bigint IS NULL OR a.id < $8)
           ORDER BY a.id DESC LIMIT $9""",
        actor_id, None if prefix is not None else action, prefix, entity, entity_id, since, until, before_id, limit)
    return [dict(r) for r in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
