"""Queries on the email outbox: mails written in the caller's transaction (live/notify/mail.py adds the
`email.send` jobs that deliver them), read by those jobs, then marked sent, failed (tried again) or given up
(`failed_at`: refused by the server or unrenderable; never read again).

A row either names a kind and its data (rendered when sent) or carries a plain subject and body. `key` is unique
(the event the mail is for); `message_id` is the Message-ID it was sent with."""
from __future__ import annotations

import asyncpg

from db import prefs as prefs_db


async def insert(conn: asyncpg.Connection, to: str, subject: str, body: str) -> int:
    return await conn.fetchval(
        "INSERT INTO email_outbox (to_address, subject, body) VALUES ($1, $2, $3) RETURNING id", to, subject, body)


async def insert_kind(conn: asyncpg.Connection, *, kind: str, to: str, data: dict, key: str,
                      user_id: str | None, reply_to: str | None) -> int | None:
    """One mail of `kind` to an address; None when a row of `key` exists (nothing written)."""
    return await conn.fetchval(
        """INSERT INTO email_outbox (to_address, kind, data, key, user_id, reply_to)
            VALUES ($1, $2, $3::jsonb, $4, $5::uuid, $6)
            ON CONFLICT (key) DO NOTHING RETURNING id""",
        to, kind, data, key, user_id, reply_to)


async def insert_for_users(conn: asyncpg.Connection, *, kind: str, user_ids: list[str], data: dict, key: str,
                           check_prefs: bool) -> list[int]:
    """One mail of `kind` to each user that has an email address, is not suspended and (with `check_prefs`) has
    not turned the kind's email off; key `<key>:<user_id>` (a user who already has it gets nothing). One
    statement for any number of users. Returns the new rows' ids."""
    allowed = f"AND {prefs_db.allowed_sql('email', '$2', 'u.id')}" if check_prefs else ""
    return await conn.fetchval(
        f"""WITH ins AS (
                INSERT INTO email_outbox (to_address, kind, data, key, user_id)
                SELECT u.email, $2, $3::jsonb, $4 || ':' || u.id::text, u.id
                FROM users u
                WHERE u.id = ANY($1::uuid[]) AND u.email IS NOT NULL AND u.suspended_at IS NULL {allowed}
                ORDER BY u.id
                ON CONFLICT (key) DO NOTHING RETURNING id)
            SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM ins""",
        list(user_ids), kind, data, key)


async def unsent(conn: asyncpg.Connection, mail_ids: list[int]) -> list[asyncpg.Record]:
    """The rows of `mail_ids` not sent yet and not given up, with the recipient's name, by id."""
    return await conn.fetch(
        """SELECT m.id, m.to_address, m.subject, m.body, m.kind, m.data, m.user_id::text AS user_id, m.key,
                  m.reply_to, m.message_id, m.attempts, u.name AS user_name
           FROM email_outbox m LEFT JOIN users u ON u.id = m.user_id
           WHERE m.id = ANY($1::bigint[]) AND m.sent_at IS NULL AND m.failed_at IS NULL
           ORDER BY m.id""", mail_ids)


async def mark_sent(conn: asyncpg.Connection, mail_id: int, message_id: str | None = None) -> None:
    await conn.execute("UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1, "
                       "message_id = coalesce($2, message_id) WHERE id = $1 AND sent_at IS NULL", mail_id, message_id)


async def mark_failed(conn: asyncpg.Connection, mail_ids: list[int], error: str, *, give_up: bool = False) -> None:
    """A failed try of each unsent row of `mail_ids`: `error` kept; with `give_up` also `failed_at` (never again)."""
    await conn.execute(
        """UPDATE email_outbox SET attempts = attempts + 1, last_error = $2,
                  failed_at = CASE WHEN $3 THEN now() ELSE failed_at END
           WHERE id = ANY($1::bigint[]) AND sent_at IS NULL""", list(mail_ids), error, give_up)
