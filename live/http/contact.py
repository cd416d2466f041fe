"""The contact form (`POST /api/v1/contact`, anyone) and the admins' desk for its messages (live/contact.py)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from live.http.api import API, Api, Call
from live.http.catalog import uuid_param
from live.http.limits import client_address

api = Api()
ADMIN = {"tag": "admin", "auth": "user", "roles": ("admin",)}
# One plain ASCII address (it becomes the Reply-To header of the mail to support): a dot-atom local part and
# dotted domain labels. No RFC 5322 specials (`x:a@b.c` would parse as a group, `a@b.c, d@e.f` as two
# addresses), no quoting or comments, no non-ASCII (the mailer does not speak SMTPUTF8).
EMAIL = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+$"
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"  # no control characters or line breaks (mail subjects)
MAX_USER_AGENT = 500


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)
    email: str = Field(max_length=320, pattern=EMAIL)
    subject: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)
    message: str = Field(min_length=1, max_length=5000)
    website: str | None = Field(default=None, max_length=2000,
                                description="honeypot: leave it empty (a field people do not see)")


class ContactAccepted(BaseModel):
    id: str


class AnsweredBy(BaseModel):
    id: str
    name: str | None = None


class ContactSummary(BaseModel):
    id: str
    name: str
    email: str
    subject: str | None = None
    preview: str = Field(description="the message's first 160 characters")
    status: Literal["new", "read", "answered", "spam"]
    created_at: str
    read_at: str | None = None
    answered_at: str | None = None
    answered_by: AnsweredBy | None = None


class ContactPage(BaseModel):
    items: list[ContactSummary]
    next_cursor: str | None = None


class ContactMessage(BaseModel):
    id: str
    name: str
    email: str
    subject: str | None = None
    message: str
    status: Literal["new", "read", "answered", "spam"]
    ip: str | None = None
    user_agent: str | None = None
    created_at: str
    read_at: str | None = None
    read_by: str | None = None
    answered_at: str | None = None
    answered_by: AnsweredBy | None = None


class ContactQuery(BaseModel):
    status: Literal["new", "read", "answered", "spam"] | None = Field(
        default=None, description="only this status (unset: every status but spam)")
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")


@api.route("POST", f"{API}/contact", summary="Send a message to the shop's support (anyone; 5 an hour per client "
           "address, 3 per email address): stored, mailed to support with Reply-To the sender, and acknowledged "
           "to the sender", tag="contact", body=ContactIn, response=ContactAccepted, status=202, errors=(429,))
async def contact_send(call: Call):
    b = call.body
    agent = call.request.headers.get("User-Agent")
    return await call.services.contact.submit(
        name=b.name, email=b.email, subject=b.subject, message=b.message, website=b.website,
        ip=client_address(call.request), user_agent=agent[:MAX_USER_AGENT] if agent else None)


@api.route("GET", f"{API}/admin/contact", summary="Contact-form messages, newest first (status filter, cursor "
           "pages; audited as contact.list)", query=ContactQuery, response=ContactPage, **ADMIN)
async def admin_list_contact(call: Call):
    q = call.query
    return await call.services.contact.listing(call.principal, q.status, q.cursor, q.limit)


@api.route("GET", f"{API}/admin/contact/{{id}}", summary="One contact-form message, whole; a new one becomes "
           "read (audited as contact.read)", response=ContactMessage, errors=(404,), **ADMIN)
async def admin_read_contact(call: Call):
    return await call.services.contact.read(call.principal, uuid_param(call, what="contact message"))


@api.route("POST", f"{API}/admin/contact/{{id}}/answered", summary="Mark a contact-form message answered (by the "
           "caller, now; audited as contact.answer; again: unchanged)", response=ContactMessage, errors=(404,),
           **ADMIN)
async def admin_contact_answered(call: Call):
    return await call.services.contact.answered(call.principal, uuid_param(call, what="contact message"))
