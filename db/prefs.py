"""Queries on notification preferences (`notification_prefs`: user, kind, email, push). No row, or a null, means
"on"; kind '*' stands for every optional kind, and a row of the kind itself wins over it. Whether a kind is
transactional (always sent) is decided by the caller (live/notify/prefs.py), not here."""
from __future__ import annotations

import asyncpg

CHANNELS = ("email", "push")


def allowed_sql(channel: str, kind: str, user: str) -> str:
    """A SQL boolean: user `user` (a uuid expression) wants kind `kind` (a text expression) by `channel`. Two
    primary-key lookups per user, usable in a set-based INSERT ... SELECT over thousands of users."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    return (f"coalesce((SELECT p.{channel} FROM notification_prefs p WHERE p.user_id = {user} AND p.kind = {kind}),"
            f" (SELECT p.{channel} FROM notification_prefs p WHERE p.user_id = {user} AND p.kind = '*'), true)")


async def of_user(conn: asyncpg.Connection, user_id: str) -> dict[str, dict]:
    """kind -> {"email": bool | None, "push": bool | None} of the rows the user has."""
    rows = await conn.fetch("SELECT kind, email, push FROM notification_prefs WHERE user_id = $1::uuid", user_id)
    return {r["kind"]: {"email": r["email"], "push": r["push"]} for r in rows}


async def upsert(conn: asyncpg.Connection, user_id: str, items: list[tuple[str, bool | None, bool | None]]) -> None:
    """Set (kind, email, push) for the user; a None leaves that channel as it was (a new row: null, i.e. on)."""
    if not items:
        return
    await conn.execute(
        """INSERT INTO notification_prefs AS p (user_id, kind, email, push)
           SELECT $1::uuid, k, e, s FROM unnest($2::text[], $3::boolean[], $4::boolean[]) AS t(k, e, s)
           ON CONFLICT (user_id, kind) DO UPDATE
           SET email = coalesce(EXCLUDED.email, p.email), push = coalesce(EXCLUDED.push, p.push), updated_at = now()""",
        user_id, [i[0] for i in items], [i[1] for i in items], [i[2] for i in items])


async def email_off_all(conn: asyncpg.Connection, user_id: str) -> None:
    """Unsubscribe from every optional kind: '*' off, and every kind the user had turned on by itself off too."""
    await upsert(conn, user_id, [("*", False, None)])
    await conn.execute("UPDATE notification_prefs SET email = false, updated_at = now() "
                       "WHERE user_id = $1::uuid AND kind <> '*' AND email", user_id)
