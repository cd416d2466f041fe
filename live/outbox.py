"""The email outbox's sender: mail is written in the caller's transaction (db/outbox.py `enqueue`) and delivered
by a background task (SMTP when SMTP_URL is set, otherwise printed to the log). Safe with several workers (SKIP
LOCKED)."""
from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from db import Database
from db import outbox as outbox_db
from live.auth.principal import SYSTEM
from live.logging import get_logger

log = get_logger("live.outbox")


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
            rows = await outbox_db.take_due(conn, limit)
            for row in rows:
                try:
                    if self._smtp:
                        await asyncio.to_thread(_send_smtp, self._smtp, self._from, row["to_address"],
                                                row["subject"], row["body"])
                    else:
                        log.info("email", to=row["to_address"], subject=row["subject"], body=row["body"])
                    await outbox_db.mark_sent(conn, row["id"])
                except (OSError, smtplib.SMTPException) as exc:
                    await outbox_db.mark_failed(conn, row["id"], str(exc))
        return len(rows)
