"""The contact form (docs/notifications.md "Contact form"): anyone sends a message; it is stored and, in the same
transaction, two mails are queued (live/notify/mail.py `queue_mail`): `contact.to_support` to SUPPORT_EMAIL with
Reply-To the sender, and `contact.ack` to the sender. Admins list, read (a new message becomes read) and mark
messages answered; each of those is written to the audit log.

Spam: a filled honeypot field (`website`, hidden from people by the page) is answered exactly like a success,
stored with status `spam` and mailed to nobody. Limits (live/ratelimit.py, RATE_LIMITS): `contact_per_ip`
(5 an hour per client address) and `contact_per_email` (3 an hour per sender address), checked after the body
is valid, for spam too (a bot sees what a person sees); over one: 429 with Retry-After, nothing stored.
"""
from __future__ import annotations

from db import Database, audit
from db import contact as contact_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.cursors import decode_cursor, encode_cursor
from live.errors import not_found
from live.notify import mail
from live.ratelimit import Limits

STATUSES = ("new", "read", "answered", "spam")
MAX_PAGE = 100  # messages per page of the admins' list


class ContactForm:
    def __init__(self, db: Database, limits: Limits, support_email: str):
        self.db = db
        self.limits = limits
        self.support_email = support_email

    async def submit(self, *, name: str, email: str, subject: str, message: str, website: str | None,
                     ip: str, user_agent: str | None) -> dict:
        """Store one message (and queue its two mails unless it is spam); returns `{"id"}`, the same shape for
        spam."""
        await self.limits.check("contact_per_ip", ip, "too many messages from your address; try again later")
        await self.limits.check("contact_per_email", email.lower(),
                                "too many messages from this email address; try again later")
        spam = bool(website and website.strip())
        async with self.db.tx(SYSTEM) as conn:
            contact_id = await contact_db.insert(conn, name=name, email=email, subject=subject, message=message,
                                                 status="spam" if spam else "new", ip=ip[:64],
                                                 user_agent=user_agent[:500] if user_agent else None)
            if not spam:
                data = {"contact_id": contact_id, "name": name, "subject": subject, "message": message}
                await mail.queue_mail(conn, "contact.to_support", self.support_email, {**data, "email": email},
                                      f"contact:{contact_id}:support", reply_to=email)
                await mail.queue_mail(conn, "contact.ack", email, data, f"contact:{contact_id}:ack")
        return {"id": contact_id}

    # ---- the admins' desk ----

    async def listing(self, principal: Principal, status: str | None, cursor: str | None, limit: int) -> dict:
        """Newest first; `status` None lists every status but spam. Audited as contact.list (who looked)."""
        policy.admin(principal)
        before = tuple(decode_cursor(cursor, "ts", "uuid")) if cursor else None
        limit = max(1, min(limit, MAX_PAGE))
        async with self.db.tx(principal) as conn:
            rows = await contact_db.listing(conn, status, before, limit + 1)
            page = rows[:limit]
            await audit.record(conn, principal.user_id, "contact.list", "contact", None, status=status,
                               ids=[r["id"] for r in page])
        last = page[-1] if len(rows) > limit else None
        return {"items": [_out(r) for r in page],
                "next_cursor": encode_cursor(last["created_at"].isoformat(), last["id"]) if last else None}

    async def read(self, principal: Principal, contact_id: str) -> dict:
        """One whole message; a new one becomes read (by the caller, now). Audited as contact.read."""
        policy.admin(principal)
        async with self.db.tx(principal) as conn:
            row = await contact_db.get(conn, contact_id, lock=True)
            if row is None:
                raise not_found("contact message")
            if row["status"] == "new":
                await contact_db.mark_read(conn, contact_id, principal.user_id)
            await audit.record(conn, principal.user_id, "contact.read", "contact", contact_id,
                               before={"status": row["status"]},
                               after={"status": "read" if row["status"] == "new" else row["status"]})
            row = await contact_db.get(conn, contact_id)
        return _out(row)

    async def answered(self, principal: Principal, contact_id: str) -> dict:
        """Mark a message answered (by the caller, now). Already answered: unchanged, not audited again."""
        policy.admin(principal)
        async with self.db.tx(principal) as conn:
            row = await contact_db.get(conn, contact_id, lock=True)
            if row is None:
                raise not_found("contact message")
            if row["status"] != "answered":
                await contact_db.mark_answered(conn, contact_id, principal.user_id)
                await audit.record(conn, principal.user_id, "contact.answer", "contact", contact_id,
                                   before={"status": row["status"]}, after={"status": "answered"})
                row = await contact_db.get(conn, contact_id)
        return _out(row)


def _out(row: dict) -> dict:
    out = dict(row)
    for key in ("created_at", "read_at", "answered_at"):
        if out.get(key) is not None:
            out[key] = out[key].isoformat()
    name = out.pop("answered_by_name", None)
    out["answered_by"] = {"id": out["answered_by"], "name": name} if out.get("answered_by") else None
    return out
