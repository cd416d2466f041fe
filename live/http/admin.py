"""Admin REST: the audit log (every seller and admin change) and the payments flagged for a human with their
resolutions (live/commerce/admin.py). Admins only; every resolution is audited."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from live.http.api import API, Api, Call
from live.http.catalog import uuid_param
from live.ids import UUID

api = Api()
ADMIN = {"tag": "admin", "auth": "user", "roles": ("admin",)}
ISSUES = Literal["amount_mismatch", "paid_after_cancel", "refund_due"]


class AuditQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    actor: str | None = Field(default=None, pattern=UUID, description="the user who made the change")
    action: str | None = Field(default=None, pattern=r"^[a-z_]{1,40}(\.[a-z_]{1,40})?\.?$", description=(
        "e.g. product.update; a prefix with a final dot: order."))
    entity: str | None = Field(default=None, pattern=r"^[a-z_]{1,40}$", description="e.g. product, variant, order")
    entity_id: str | None = Field(default=None, min_length=1, max_length=200)
    since: datetime | None = Field(default=None, alias="from", description="written at or after (ISO 8601)")
    until: datetime | None = Field(default=None, alias="to", description="written before (ISO 8601)")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        """In UTC (a time without an offset is UTC); one the database cannot hold is refused, not a 500."""
        if v is None:
            return v
        try:
            return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("time out of range") from None


class FlaggedQuery(BaseModel):
    issue: ISSUES | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    note: str = Field(min_length=1, max_length=2000, description="what the human did or found (kept in the audit log)")


def _desk(call: Call):
    return call.services.commerce.admin


@api.route("GET", f"{API}/admin/audit", summary="The audit log, newest first: filter by actor, action, entity, "
           "entity_id and time; cursor pages", query=AuditQuery, **ADMIN)
async def audit_log(call: Call):
    q = call.query
    return await _desk(call).audit_log(call.principal, actor_id=q.actor, action=q.action, entity=q.entity,
                                       entity_id=q.entity_id, since=q.since, until=q.until, cursor=q.cursor,
                                       limit=q.limit)


@api.route("GET", f"{API}/admin/payments/flagged", summary="Payments flagged for a human (amount_mismatch, "
           "paid_after_cancel, refund_due) with their orders and refunds", query=FlaggedQuery, **ADMIN)
async def flagged_payments(call: Call):
    q = call.query
    return await _desk(call).flagged(call.principal, q.issue, q.cursor, q.limit)


@api.route("POST", f"{API}/admin/payments/{{id}}/resolve", summary="Clear a payment's flag with a note (audited)",
           body=NoteIn, errors=(404, 409), **ADMIN)
async def resolve_payment(call: Call):
    return await _desk(call).resolve(call.principal, uuid_param(call, what="payment"), call.body.note)


@api.route("POST", f"{API}/admin/refunds/{{id}}/retry", summary="Send a failed refund to the provider again "
           "(same idempotency key; audited)", body=NoteIn, errors=(404, 409), **ADMIN)
async def retry_refund(call: Call):
    return await _desk(call).retry_refund(call.principal, uuid_param(call, what="refund"), call.body.note)


@api.route("POST", f"{API}/admin/refunds/{{id}}/mark-refunded", summary="A failed refund was made by hand outside "
           "the provider call: settle it and pay off the payment's debt (audited)", body=NoteIn, errors=(404, 409),
           **ADMIN)
async def mark_refunded(call: Call):
    return await _desk(call).mark_refunded(call.principal, uuid_param(call, what="refund"), call.body.note)
