"""Email: mails written in the caller's transaction, rendered and sent by durable `email.send` jobs.

Writing: `queue_mail` (one mail of a kind to an address: the sign-in code, the contact form), `Mailer.queue` (the
mail channel of `notify`: one mail per user who has an email address and has not turned the kind off, one
INSERT ... SELECT for any number of users) and `enqueue` (a plain subject + body, no template). Each row has a
unique key (the event: a mail queued twice for one key is one row) and a Message-ID derived from it
(`<sha256(key)[:32]@DOMAIN>`, DOMAIN from EMAIL_FROM; plain mails without a key: `<outbox-ID@DOMAIN>`; stored in
the row's `message_id` when sent). Each
batch of at most BATCH rows gets one `email.send` job `{"ids": [...]}` (`{"id": n}` jobs of older releases are
still read).

Sending (`Mailer.send`, the job): one short transaction reads the batch's unsent rows and renders them (the order
a template shows is read there); then, with no transaction and no lock held, each message goes over the worker's
one SMTP connection (live/notify/smtp.py) and is marked sent in a short transaction of its own right after its
SMTP answer. A sent row is never sent again; a crash between an SMTP answer and that commit sends that one
message again with the same Message-ID, which receivers use to drop the copy. A failure is kept in the row
(`attempts`, `last_error`); the job is tried again with backoff (RETRY_* below) and sends only what is still
unsent. A message the server refuses outright (5xx) or that cannot be rendered is given up: the row keeps the
error and gets `failed_at`, and no later run of its batch sends it. A failure to connect (no answer, a 5xx to
EHLO, STARTTLS or AUTH: a wrong password) is the server's or the settings', not the messages': the job is tried
again and the batch's rows keep the error. Without SMTP_URL mails are printed to the log."""
from __future__ import annotations

import dataclasses
import email.policy
import hashlib
from collections import Counter
from collections.abc import Sequence
from email.charset import QP, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib
import asyncpg
from jinja2 import TemplateError

from db import Database
from db import outbox as outbox_db
from live.auth.principal import SYSTEM
from live.config import Settings
from live.jobs import Jobs, Permanent
from live.jobs import enqueue_many as enqueue_jobs
from live.logging import get_logger
from live.notify.kinds import KINDS, Kind
from live.notify.prefs import Preferences
from live.notify.render import Rendered, Renderer
from live.notify.smtp import SmtpClient
from live.notify.unsubscribe import UnsubscribeTokens

log = get_logger("live.notify.mail")
JOB = "email.send"
BATCH = 50  # mails per email.send job
MAX_KEY = 300  # characters of a mail's key
# a mail server that is away: tried again after ~30 s, 1 min, 2 min, ... at most 1 h apart, 12 runs (~5 h)
RETRY_FIRST_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0
MAX_ATTEMPTS = 12


def message_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


def message_id(key: str | None, mail_id: int, domain: str) -> str:
    """The Message-ID of a mail: derived from its key (the same for every resend), else from its row id."""
    if key:
        return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"
    return f"<outbox-{mail_id}@{domain}>"


async def _jobs_for(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    """One `email.send` job per BATCH of `ids`, all in one statement."""
    batches = [list(ids[i:i + BATCH]) for i in range(0, len(ids), BATCH)]
    await enqueue_jobs(conn, JOB, [{"ids": b} for b in batches], keys=[f"email:{b[0]}" for b in batches])


async def queue_mail(conn: asyncpg.Connection, kind: str, to: str, data: dict, key: str, *,
                     user_id: str | None = None, reply_to: str | None = None) -> int | None:
    """One mail of `kind` to address `to`, written in `conn`'s transaction (sent once it commits). `key` names the
    event: a second call with the same key writes nothing and returns None; else the outbox id."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    if not key or len(key) > MAX_KEY:
        raise ValueError(f"mail key empty or over {MAX_KEY} characters")
    mail_id = await outbox_db.insert_kind(conn, kind=kind, to=to, data=data, key=key, user_id=user_id,
                                          reply_to=reply_to)
    if mail_id is not None:
        await _jobs_for(conn, [mail_id])
    return mail_id


async def enqueue(conn: asyncpg.Connection, to: str, subject: str, body: str) -> int:
    """A plain mail (subject and text body, no template), written in `conn`'s transaction. Returns its id."""
    mail_id = await outbox_db.insert(conn, to, subject, body)
    await _jobs_for(conn, [mail_id])
    return mail_id


# the wire form: CRLF, headers never folded (a List-Unsubscribe URL stays one plain value, RFC 8058). The compat32
# MIME classes: the modern EmailMessage API parsed every header again, three times the cost of the whole send.
_WIRE = email.policy.compat32.clone(linesep="\r\n", max_line_length=0)
_UTF8_QP = Charset("utf-8")  # bodies quoted-printable: readable, and long lines wrapped as SMTP needs
_UTF8_QP.body_encoding = QP


@dataclasses.dataclass
class _Out:
    id: int
    to: str
    data: bytes | None  # the message as sent; None: it could not be built (error)
    message_id: str = ""
    subject: str = ""
    text: str = ""
    error: str | None = None


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


class Mailer:
    """The `email.send` job's handler and the mail channel of `notify` (`queue`)."""

    def __init__(self, db: Database, jobs: Jobs, settings: Settings):
        self._db, self._from = db, settings.email_from
        self.domain = message_domain(settings.email_from)
        self.tokens = UnsubscribeTokens(settings.jwt_secret)
        self.prefs = Preferences(db, self.tokens)  # the preferences page and the unsubscribe links
        self.outcomes: Counter[str] = Counter()  # sent, retry, refused, unrenderable (/metrics: live_emails)
        self.renderer = Renderer(settings.shop_name, settings.base_url(), self.tokens.path)
        self.smtp = SmtpClient(settings.smtp_url, idle_seconds=settings.smtp_idle_seconds) \
            if settings.smtp_url else None
        jobs.register(JOB, self.send, max_attempts=MAX_ATTEMPTS, first_delay=RETRY_FIRST_SECONDS,
                      max_delay=RETRY_MAX_SECONDS)

    async def queue(self, conn: asyncpg.Connection, kind: Kind | str, user_ids: Sequence[str], data: dict,
                    key: str) -> int:
        """The mail channel: one mail of `kind` to each of `user_ids` that has an email address and (optional
        kinds) has not turned its email off; key `<key>:<user_id>`. Returns how many mails were written."""
        spec = kind if isinstance(kind, Kind) else KINDS[kind]
        if not user_ids:
            return 0
        ids = await outbox_db.insert_for_users(conn, kind=spec.name, user_ids=list(user_ids), data=data, key=key,
                                               check_prefs=not spec.transactional)
        await _jobs_for(conn, ids)
        return len(ids)

    async def send(self, payload: dict) -> None:
        ids = payload.get("ids") if isinstance(payload, dict) else None
        if ids is None and isinstance(payload, dict) and "id" in payload:
            ids = [payload["id"]]
        if not isinstance(ids, list) or not 0 < len(ids) <= BATCH or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids):
            raise Permanent(f"not an email.send payload: {payload!r}"[:300])
        async with self._db.tx(SYSTEM) as conn:
            outs = [await self._prepare(conn, row) for row in await outbox_db.unsent(conn, ids)]
        failed: Exception | None = None
        for n, out in enumerate(outs):
            if out.data is None:  # could not be rendered: kept with its error and given up
                await self._mark([out.id], out.error or "render failed", give_up=True)
                self.outcomes["unrenderable"] += 1
                continue
            try:
                await self._deliver(out)
            except (OSError, TimeoutError) as exc:  # the connection: a connect/AUTH refusal (smtp.py), a drop
                # the server is away or the settings are wrong: this row and the rest of the batch keep the error
                # and wait for the retry
                await self._mark([o.id for o in outs[n:] if o.data is not None], _error(exc))
                failed = exc
                self.outcomes["retry"] += 1
                break
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code < 500:  # 4xx: try again later
                    await self._mark([out.id], _error(exc))
                    failed = exc
                    self.outcomes["retry"] += 1
                else:  # 5xx: this message refused, given up (a retry of the batch skips it)
                    await self._mark([out.id], _error(exc), give_up=True)
                    log.warning("email_refused", mail_id=out.id, code=exc.code)
                    self.outcomes["refused"] += 1
                continue
            except aiosmtplib.SMTPException as exc:  # this message refused (its recipient, SMTPUTF8): given up
                await self._mark([out.id], _error(exc), give_up=True)
                log.warning("email_refused", mail_id=out.id, error=repr(exc)[:300])
                self.outcomes["refused"] += 1
                continue
            async with self._db.tx(SYSTEM) as conn:
                await outbox_db.mark_sent(conn, out.id, out.message_id)
            self.outcomes["sent"] += 1
        if failed is not None:
            raise failed  # the job queue tries again; sent and given-up rows are skipped then

    async def _mark(self, mail_ids: list[int], error: str, *, give_up: bool = False) -> None:
        async with self._db.tx(SYSTEM) as conn:
            await outbox_db.mark_failed(conn, mail_ids, error, give_up=give_up)

    async def _prepare(self, conn: asyncpg.Connection, row) -> _Out:
        try:
            if not row["to_address"].isascii():  # would need SMTPUTF8, which this sender does not speak
                raise ValueError(f"the address {row['to_address']!r} is not ASCII")
            rendered = await self._rendered(conn, row)
            mid = message_id(row["key"], row["id"], self.domain)
            return _Out(row["id"], row["to_address"], self.message(row, rendered, mid), mid, rendered.subject,
                        rendered.text)
        except (TemplateError, KeyError, TypeError, ValueError) as exc:  # UnicodeError: an address not ASCII
            log.warning("email_render_failed", mail_id=row["id"], kind=row["kind"], error=repr(exc)[:300])
            return _Out(row["id"], row["to_address"], None, error=f"render: {type(exc).__name__}: {exc}"[:2000])

    async def _rendered(self, conn: asyncpg.Connection, row) -> Rendered:
        if row["kind"] is None:
            return Rendered(row["subject"], row["body"], "")
        data = row["data"] or {}
        extra = await self.renderer.load(conn, row["kind"], data)
        return self.renderer.render(row["kind"], data, user_id=row["user_id"], recipient_name=row["user_name"],
                                    extra=extra)

    def message(self, row, rendered: Rendered, mid: str) -> bytes:
        """The whole message as sent: text and HTML alternatives (text only for a plain mail), CRLF lines."""
        if rendered.html:
            msg = MIMEMultipart("alternative")
            msg.attach(MIMEText(rendered.text, "plain", _UTF8_QP))
            msg.attach(MIMEText(rendered.html, "html", _UTF8_QP))
        else:
            msg = MIMEText(rendered.text, "plain", _UTF8_QP)
        name, address = parseaddr(self._from)
        if row["kind"] is not None and not name:  # a bare EMAIL_FROM: the shop's name shows
            name = self.renderer.shop_name
        msg["From"] = formataddr((name, address), charset="utf-8") if name else address
        msg["To"] = row["to_address"]
        msg["Subject"] = rendered.subject if rendered.subject.isascii() else Header(rendered.subject, "utf-8")
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = mid
        if row["reply_to"]:
            msg["Reply-To"] = row["reply_to"]
        if row["kind"] is not None:
            spec = KINDS[row["kind"]]
            if not spec.transactional and row["user_id"]:
                msg["List-Unsubscribe"] = f"<{self.renderer.link(self.tokens.path(row['user_id'], spec.name))}>"
                msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return msg.as_bytes(policy=_WIRE)

    async def _deliver(self, out: _Out) -> None:
        if self.smtp is None:
            log.info("email", to=out.to, subject=out.subject, body=out.text)
            return
        await self.smtp.send(parseaddr(self._from)[1], [out.to], out.data)

    async def close(self) -> None:
        if self.smtp is not None:
            await self.smtp.close()
