"""The operator's desk for payments flagged for a human, and the audit log's reader (admins only).

A payment is flagged (`payments.issue`) when money and orders disagree and no rule can settle it alone:
`amount_mismatch` (the provider reports another amount or currency; nothing moved), `paid_after_cancel` (money
arrived for orders already canceled; their refunds are under way) and `refund_due` (a refund failed after its
last attempt or was refused, or a partial refund the order side could not match). Resolutions, each written to
the audit log in the same transaction:

- `resolve(payment, note)`: the human dealt with it (outside, or after checking); the flag is cleared.
- `retry_refund(refund, note)`: a failed refund goes back to the automatic machinery (attempts from 0, same
  idempotency key) and is sent at once after the commit.
- `mark_refunded(refund, note)`: the money went back outside our call (a bank transfer, a dashboard without a
  webhook): the refund is settled and the payment's debt paid off, as a provider's refund webhook would.
"""
from __future__ import annotations

from datetime import datetime

from db import Database, audit
from db import payments as payments_db
from db import refunds as refunds_db
from live.auth import policy
from live.auth.principal import Principal
from live.commerce.orders import OrderService
from live.cursors import decode_cursor, encode_cursor
from live.errors import DomainError, not_found
from live.notify import events as notices


class AdminDesk:
    def __init__(self, db: Database, orders: OrderService):
        self.db = db
        self.orders = orders

    # ---- the audit log ----

    async def audit_log(self, principal: Principal, *, actor_id: str | None, action: str | None,
                        entity: str | None, entity_id: str | None, since: datetime | None, until: datetime | None,
                        cursor: str | None, limit: int) -> dict:
        policy.admin(principal)
        before_id = decode_cursor(cursor, "bigint")[0] if cursor else None
        async with self.db.tx(principal) as conn:
            rows = await audit.listing(conn, actor_id=actor_id, action=action, entity=entity, entity_id=entity_id,
                                       since=since, until=until, before_id=before_id, limit=limit + 1)
        page = rows[:limit]
        return {"items": page, "next_cursor": encode_cursor(page[-1]["id"]) if len(rows) > limit else None}

    # ---- flagged payments ----

    async def flagged(self, principal: Principal, issue: str | None, cursor: str | None, limit: int) -> dict:
        policy.admin(principal)
        before = tuple(decode_cursor(cursor, "ts", "uuid")) if cursor else None
        async with self.db.tx(principal) as conn:
            rows = await payments_db.flagged_payments(conn, issue, before, limit + 1)
        page = rows[:limit]
        last = page[-1] if len(rows) > limit else None
        return {"items": page,
                "next_cursor": encode_cursor(last["created_at"].isoformat(), last["id"]) if last else None}

    async def resolve(self, principal: Principal, payment_id: str, note: str) -> dict:
        """Clear the payment's flag with the human's note (the flag and its details stay in the audit row)."""
        policy.admin(principal)
        async with self.db.tx(principal) as conn:
            pay = await payments_db.payment(conn, payment_id, lock=True)
            if pay is None:
                raise not_found("payment")
            if pay["issue"] is None:
                raise DomainError("conflict", "this payment is not flagged")
            await payments_db.set_payment(conn, payment_id, issue=None, issue_details=None)
            await audit.record(conn, principal.user_id, "payment.resolve", "payment", payment_id,
                               before={"issue": pay["issue"], "issue_details": pay["issue_details"]},
                               after={"issue": None}, note=note)
        return await self._payment(principal, payment_id)

    # ---- refunds ----

    async def _locked_refund(self, conn, refund_id: str):
        pay = await refunds_db.lock_payment_of(conn, refund_id)
        refund = await refunds_db.refund(conn, refund_id, lock=True) if pay is not None else None
        if refund is None:
            raise not_found("refund")
        if refund["status"] != "failed":
            raise DomainError("conflict",
                              f"the refund is {refund['status']}: only a failed refund is resolved by hand")
        return pay, refund

    async def retry_refund(self, principal: Principal, refund_id: str, note: str) -> dict:
        policy.admin(principal)
        async with self.db.tx(principal) as conn:
            pay, refund = await self._locked_refund(conn, refund_id)
            if refund["provider_ref"] is not None:
                raise DomainError("conflict", "the provider took this refund already: settle it (mark-refunded)")
            await refunds_db.reopen(conn, refund_id)
            if pay["issue"] == "refund_due":
                await payments_db.set_payment(conn, pay["id"], issue=None, issue_details=None)
            await audit.record(conn, principal.user_id, "refund.retry", "refund", refund_id,
                               before={"status": "failed", "attempts": refund["attempts"], "error": refund["error"]},
                               after={"status": "requested", "attempts": 0}, note=note, payment_id=pay["id"])
            await self.orders.refunds.schedule(conn, [refund_id])  # its refund.send job, once this commits
        await self.orders.publish_orders([refund["order_id"]])
        return await self._refund(principal, refund_id)

    async def mark_refunded(self, principal: Principal, refund_id: str, note: str) -> dict:
        policy.admin(principal)
        async with self.db.tx(principal) as conn:
            pay, refund = await self._locked_refund(conn, refund_id)
            await refunds_db.settle_by_hand(conn, refund_id)
            await notices.refunds_settled(conn, pay["id"])  # order.refunded to the buyer
            due = max(0, pay["refund_due_minor"] - refund["amount_minor"])
            fields: dict = {"refund_due_minor": due}
            if due == 0 and pay["issue"] in ("refund_due", "paid_after_cancel"):
                fields.update(issue=None, issue_details=None)
            full = await refunds_db.refunded_total(conn, pay["id"]) >= pay["amount_minor"]
            if full and pay["status"] == "succeeded":
                fields["status"] = "refunded"
            await payments_db.set_payment(conn, pay["id"], **fields)
            await audit.record(conn, principal.user_id, "refund.mark_refunded", "refund", refund_id,
                               before={"status": "failed", "payment_refund_due_minor": pay["refund_due_minor"]},
                               after={"status": "succeeded", "payment_refund_due_minor": due}, note=note,
                               payment_id=pay["id"], order_id=refund["order_id"], amount_minor=refund["amount_minor"])
        await self.orders.publish_orders([refund["order_id"]])
        return await self._refund(principal, refund_id)

    # ---- reading back ----

    async def _payment(self, principal: Principal, payment_id: str) -> dict:
        async with self.db.tx(principal) as conn:
            pay = await payments_db.payment(conn, payment_id)
        return {k: pay[k] for k in ("id", "provider", "status", "amount_minor", "currency", "issue", "issue_details",
                                    "refund_due_minor")}

    async def _refund(self, principal: Principal, refund_id: str) -> dict:
        async with self.db.tx(principal) as conn:
            row = await refunds_db.refund(conn, refund_id)
            pay = await payments_db.payment(conn, row["payment_id"])
        keys = ("id", "payment_id", "order_id", "status", "amount_minor", "currency", "attempts", "error",
                "provider_ref", "created_at", "succeeded_at")
        return {"refund": {k: row[k] for k in keys},
                "payment": {k: pay[k] for k in ("id", "status", "issue", "refund_due_minor")}}
