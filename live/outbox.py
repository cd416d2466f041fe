"""The email outbox: mail is written in the caller's transaction and delivered by a background task
(SMTP when SMTP_URL is set, otherwise printed to the log). Safe with several workers (SKIP LOCKED)."""
from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

import asyncpg

from db import Database
from live.auth.principal import SYSTEM
from live.logging import get_logger

log = get_logger("live.outbox")


async def enqueue_email(conn: asyncpg.Connection, to: str, subject: str, body: str) -> None:
    await conn.execute("INSERT INTO email_outbox (to_address, subject, body) VALUES ($1, $2, $3)", to, subject, body)


def _send_smtp(url: str, sender: str, to: str, subject: str, body: str) -> None:
    u = urlparse(url)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content(body)
    cls = smtplib.SMTP_SSL if u.scheme == "smtps" else smtplib.SMTP
    with cls(u.hostname, u.port or (465 if u.scheme == "smtps" else 25), timeout=15) as smtp:
        if u.scheme == "smtp" and u.port == 587:
            smtp.starttls(context=ssl.create_default_context())
        if u.username:
            smtp.login(unquote(u.username), unquote(u.password or ""))
        smtp.send_message(msg)


class OutboxSender:
    def __init__(self, db: Database, smtp_url: str | None, sender: str, interval: float = 1.0):
        self._db, self._smtp, self._from, self._interval = db, smtp_url, sender, interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                while await self.deliver_batch():
                    pass
            except Exception as exc:  # any failure (e.g. asyncpg.InterfaceError) must not end the sender
                log.warning("outbox_error", error=repr(exc))
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def deliver_batch(self, limit: int = 20) -> int:
        async with self._db.tx(SYSTEM) as conn:
            rows = await conn.fetch(
                """SELECT id, to_address, subject, body FROM email_outbox
                   WHERE sent_at IS NULL AND attempts < 5 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""", limit)
            for row in rows:
                try:
                    if self._smtp:
                        await asyncio.to_thread(_send_smtp, self._smtp, self._from, row["to_address"],
                                                row["subject"], row["body"])
                    else:
                        log.info("email", to=row["to_address"], subject=row["subject"], body=row["body"])
                    await conn.execute("UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = $1",
                                       row["id"])
                except (OSError, smtplib.SMTPException) as exc:
                    await conn.execute(
                        "UPDATE email_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                        row["id"], str(exc))
        return len(rows)
