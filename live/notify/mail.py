"""The email outbox: a mail is written in the caller's transaction (`enqueue`: one `email_outbox` row and one
`email.send` job for it) and delivered by that job (SMTP when SMTP_URL is set, otherwise printed to the log).

The job (`Mailer.send`) holds no transaction and no row lock while it talks SMTP: it reads the row, skips it if it
was sent, sends, then marks it sent in a short transaction of its own. Safe to run twice: a second run of a sent
mail does nothing; a crash between the SMTP answer and the mark sends it again with the same `Message-ID`
(`<outbox-ID@DOMAIN>`, DOMAIN from EMAIL_FROM), which receivers use to drop the copy. A failed send is kept in
the row (`attempts`, `last_error`) and tried again by the job queue (RETRY_* below); docs/jobs.md."""
from __future__ import annotations

from email.message import EmailMessage
from email.utils import parseaddr
from urllib.parse import unquote, urlparse

import aiosmtplib
import asyncpg

from db import Database
from db import outbox as outbox_db
from live.auth.principal import SYSTEM
from live.jobs import Jobs, Permanent
from live.jobs import enqueue as enqueue_job
from live.logging import get_logger

log = get_logger("live.outbox")
KIND = "email.send"
SMTP_TIMEOUT_SECONDS = 15.0
# a mail server that is away: tried again after ~30 s, 1 min, 2 min, ... at most 1 h apart, 12 runs (~5 h)
RETRY_FIRST_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0
MAX_ATTEMPTS = 12


async def enqueue(conn: asyncpg.Connection, to: str, subject: str, body: str) -> int:
    """Write a mail in `conn`'s transaction; it is sent once that commits. Returns its outbox id."""
    mail_id = await outbox_db.insert(conn, to, subject, body)
    await enqueue_job(conn, KIND, {"id": mail_id}, key=f"email:{mail_id}")
    return mail_id


def message_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


class Mailer:
    """The `email.send` job's handler."""

    def __init__(self, db: Database, jobs: Jobs, smtp_url: str | None, sender: str):
        self._db, self._smtp, self._from = db, smtp_url, sender
        self._domain = message_domain(sender)
        jobs.register(KIND, self.send, max_attempts=MAX_ATTEMPTS, first_delay=RETRY_FIRST_SECONDS,
                      max_delay=RETRY_MAX_SECONDS)

    async def send(self, payload: dict) -> None:
        try:
            mail_id = int(payload["id"])
        except (KeyError, TypeError, ValueError):
            raise Permanent(f"not an email.send payload: {payload!r}"[:300]) from None
        async with self._db.tx(SYSTEM) as conn:
            row = await outbox_db.get(conn, mail_id)
        if row is None or row["sent_at"] is not None:
            return
        try:
            await self._deliver(row)
        except (OSError, TimeoutError, aiosmtplib.SMTPException) as exc:
            async with self._db.tx(SYSTEM) as conn:
                await outbox_db.mark_failed(conn, mail_id, f"{type(exc).__name__}: {exc}"[:2000])
            raise  # the job queue tries again
        async with self._db.tx(SYSTEM) as conn:
            await outbox_db.mark_sent(conn, mail_id)

    def message(self, row) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self._from, row["to_address"], row["subject"]
        msg["Message-ID"] = f"<outbox-{row['id']}@{self._domain}>"
        msg.set_content(row["body"])
        return msg

    async def _deliver(self, row) -> None:
        if not self._smtp:
            log.info("email", to=row["to_address"], subject=row["subject"], body=row["body"])
            return
        u = urlparse(self._smtp)
        tls = u.scheme == "smtps"
        await aiosmtplib.send(
            self.message(row), hostname=u.hostname, port=u.port or (465 if tls else 25), use_tls=tls,
            start_tls=True if (u.scheme == "smtp" and u.port == 587) else False,
            username=unquote(u.username) if u.username else None,
            password=unquote(u.password or "") if u.username else None, timeout=SMTP_TIMEOUT_SECONDS)
