"""Automatic refunds: a paid order that is canceled (by the buyer, by the seller, or money that arrived for an order
already canceled) is refunded through its payment's provider.

1. The transaction that cancels the order records the refund (`payment_refunds`, status `requested`), adds its
   amount to the payment's `refund_due_minor` (`owe`) and enqueues its `refund.send` job (key `refund:<id>`): the
   job exists exactly when the cancel commits. Nothing is sent inside that transaction.
2. The job (`run`) calls the provider, never inside a transaction: a short transaction claims the refund
   (attempts + 1), then `provider.refund(...)` with an idempotency key derived from the record (a second run of
   the job, after a crash, asks for the same refund), then a short transaction records the answer: accepted (the
   provider's refund id), or the error.
3. A call that failed is tried again by the job queue with backoff (RETRY_*: ~2 min, 8 min, 32 min, ~2 h, 6 h). After
   MAX_ATTEMPTS, or at once when the provider refuses (already refunded, more than is left), the refund is
   `failed` and the payment is flagged `refund_due` with the error, for a human (who may retry it: `schedule`).
4. The provider's refund webhook settles it (`settle`, called by the order side): `succeeded`, and the debt is paid
   off. A second notice of a settled refund changes nothing.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from db import Database, audit
from db import payments as payments_db
from db import refunds as refunds_db
from live.auth.principal import SYSTEM
from live.commerce.payments import PaymentProviders
from live.commerce.payments.base import PaymentEvent, RefundRequest
from live.errors import DomainError
from live.ids import is_uuid
from live.jobs import Jobs, Permanent, enqueue
from live.logging import get_logger
from live.notify import events as notices

log = get_logger("live.commerce.refunds")
KIND = "refund.send"
MAX_ATTEMPTS = 6
FIRST_RETRY_SECONDS = 120.0  # longer than one provider call with its own retries (Stripe: 3 x 30 s at most)
RETRY_MULTIPLIER = 4.0
MAX_RETRY_SECONDS = 6 * 3600.0
RETRY_JITTER = 0.2  # each wait is 80-100 % of the schedule's (retries of many refunds do not come at once)

class RetryLater(Exception):
    """A refund call failed (the message says how) and the refund waits for its next attempt (the job is retried)."""


Published = Callable[[list[str]], Awaitable[None]]  # order:update for these orders (their refund changed)


class RefundService:
    def __init__(self, db: Database, providers: PaymentProviders, published: Published | None = None):
        self.db = db
        self.providers = providers
        self.published = published

    # ---- inside the transaction that cancels ----

    @staticmethod
    async def owe(conn, pay, orders: list, reason: str | None, *, actor_id: str | None = None) -> list[str]:
        """Record the refund of each of `orders` (locked rows with id and total_minor) of the locked payment
        `pay`; the payment's refund_due_minor grows by their total; each refund issued is in the audit log (by
        `actor_id`, the buyer, seller or admin who canceled; None: the system). Returns the new refunds' ids, to
        `send` once the transaction has committed."""
        rows = await refunds_db.request(conn, pay["id"], pay["provider"], pay["currency"],
                                        [(o["id"], o["total_minor"]) for o in orders], reason)
        for r in rows:
            await audit.record(conn, actor_id, "refund.request", "refund", r["id"], after={
                "status": "requested", "amount_minor": r["amount_minor"], "currency": pay["currency"]},
                order_id=r["order_id"], payment_id=pay["id"], reason=reason)
        ids = [r["id"] for r in rows]
        await RefundService.schedule(conn, ids)
        return ids

    @staticmethod
    async def owe_return(conn, pay, *, order_id: str, return_id: str, amount_minor: int, reason: str | None,
                         actor_id: str | None = None) -> list[str]:
        """Record the refund of a received return (`amount_minor` > 0, at most what is left of the order and the
        payment: the caller checks) of the locked payment `pay`, like `owe`: one refund per return, in the audit
        log. Returns the new refund's id (none when the return already has its refund), to `send` after commit."""
        row = await refunds_db.request_for_return(conn, pay["id"], pay["provider"], pay["currency"], order_id,
                                                  return_id, amount_minor, reason)
        if row is None:
            return []
        await audit.record(conn, actor_id, "refund.request", "refund", row["id"], after={
            "status": "requested", "amount_minor": amount_minor, "currency": pay["currency"]},
            order_id=order_id, return_id=return_id, payment_id=pay["id"], reason=reason)
        await RefundService.schedule(conn, [row["id"]])
        return [row["id"]]

    # ---- inside the transaction that applies a provider's refund event ----

    @staticmethod
    async def match(conn, pay, event: PaymentEvent):
        """Our refund the event is about (locked), or None (a refund made elsewhere, e.g. the provider's
        dashboard)."""
        return await refunds_db.match(conn, pay["id"], refund_id=event.refund_id, refund_ref=event.refund_ref,
                                      amount=event.amount_minor)

    @staticmethod
    async def settle(conn, refund, event: PaymentEvent) -> None:
        await refunds_db.settle(conn, refund["id"], event.refund_ref)

    @staticmethod
    async def settle_all(conn, payment_id: str) -> list[str]:
        """The whole payment came back: its unsettled refunds are done (the order ids, to push)."""
        return await refunds_db.settle_all(conn, payment_id)

    # ---- the refund.send job ----

    @staticmethod
    async def schedule(conn, refund_ids: list[str]) -> None:
        """Enqueue the `refund.send` job of each refund in `conn`'s transaction (one queued or running job per
        refund: a second schedule of it is skipped). `owe` and `owe_return` do; an admin's retry does."""
        for refund_id in refund_ids:
            await enqueue(conn, KIND, {"refund_id": refund_id}, key=f"refund:{refund_id}")

    def register(self, jobs: Jobs) -> None:
        jobs.register(KIND, self.run, max_attempts=MAX_ATTEMPTS, first_delay=FIRST_RETRY_SECONDS,
                      max_delay=MAX_RETRY_SECONDS, multiplier=RETRY_MULTIPLIER, jitter=RETRY_JITTER)

    async def send(self, refund_ids: list[str]) -> None:
        """After a commit that recorded refunds without their jobs: make sure each has one (a refund that is
        already queued, accepted or settled is left alone). `owe` schedules its refunds already."""
        if refund_ids:
            async with self.db.tx(SYSTEM) as conn:
                await self.schedule(conn, refund_ids)

    async def run(self, payload: dict) -> None:
        """The job: one call to the provider. Raises (the job queue tries again later) while the refund stays
        `requested` after a failed call; returns once it was accepted, failed for good, or is not ours to send."""
        refund_id = payload.get("refund_id")
        if not isinstance(refund_id, str) or not is_uuid(refund_id):
            raise Permanent(f"not a refund.send payload: {payload!r}"[:300])
        error = await self._send(refund_id)
        if error is not None:
            raise RetryLater(error)

    async def _send(self, refund_id: str) -> str | None:
        """The error of a failed call when the refund is to be tried again, else None."""
        async with self.db.tx(SYSTEM) as conn:
            pay = await refunds_db.lock_payment_of(conn, refund_id)
            if pay is None:
                return None
            # the job queue times the attempts (and runs one job per refund): no lease of our own
            refund = await refunds_db.claim(conn, refund_id, 0.0, 0.0)
            if refund is None:
                return None  # accepted, settled or failed already (a second run of the job)
            why = self._cannot_send(pay, refund)
            if why:
                await self._failed(conn, pay, refund, why, final=True)
        if why:
            await self._publish([refund["order_id"]])
            return None
        req = RefundRequest(refund_id=refund["id"], payment_id=refund["payment_id"], payment_ref=pay["provider_ref"],
                            amount_minor=refund["amount_minor"], currency=refund["currency"],
                            idempotency_key=refund["idempotency_key"], attempt=refund["attempts"],
                            reason=refund["reason"] or "")
        try:
            provider = self.providers.get(refund["provider"])
            result = await provider.refund(req)
        except Exception as exc:
            final = isinstance(exc, DomainError) and exc.status < 500 and exc.code != "provider_unavailable"
            error = f"{exc.code}: {exc.message}" if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
            log.warning("refund_call_failed", refund_id=refund_id, attempt=refund["attempts"], final=final,
                        error=error)
            async with self.db.tx(SYSTEM) as conn:
                pay = await refunds_db.lock_payment_of(conn, refund_id)
                row = await refunds_db.attempt_failed(conn, refund_id, error, final=final, max_attempts=MAX_ATTEMPTS)
                failed = row is not None and row["status"] == "failed"
                if failed:
                    await self._flag(conn, pay, refund, row, error)
            if failed:
                await self._publish([refund["order_id"]])
            return error if row is not None and not failed else None
        async with self.db.tx(SYSTEM) as conn:
            await refunds_db.accepted(conn, refund_id, result.provider_ref, result.status)
        log.info("refund_requested", refund_id=refund_id, provider=refund["provider"], ref=result.provider_ref,
                 status=result.status, amount=refund["amount_minor"])
        return None

    @staticmethod
    def _cannot_send(pay, refund) -> str | None:
        """Never refund more than the payment owes (a refund made by hand elsewhere may have paid the debt)."""
        if pay["status"] != "succeeded":
            return f"the payment is {pay['status']}"
        if not pay["provider_ref"]:
            return "the payment has no reference at the provider"
        if pay["refund_due_minor"] < refund["amount_minor"]:
            return (f"the payment owes {pay['refund_due_minor']}, less than this refund of {refund['amount_minor']}"
                    " (a refund was made elsewhere?)")
        return None

    @staticmethod
    async def _failed(conn, pay, refund, error: str, *, final: bool) -> bool:
        """Keep the error; when this was the last try (or final), the refund fails and the payment is flagged
        refund_due for a human. True when the refund failed now."""
        row = await refunds_db.attempt_failed(conn, refund["id"], error, final=final, max_attempts=MAX_ATTEMPTS)
        if row is None or row["status"] != "failed":
            return False
        await RefundService._flag(conn, pay, refund, row, error)
        return True

    @staticmethod
    async def _flag(conn, pay, refund, row, error: str) -> None:
        log.error("refund_failed", refund_id=refund["id"], payment_id=refund["payment_id"], error=error,
                  attempts=row["attempts"])
        if pay is not None:
            await payments_db.set_payment(conn, pay["id"], issue="refund_due", issue_details={
                "refund_id": refund["id"], "order_id": refund["order_id"], "amount_minor": refund["amount_minor"],
                "attempts": row["attempts"], "error": error})
            await notices.payment_flagged(conn, pay["id"], "refund_due", refund["id"])  # the sellers are told

    async def _publish(self, order_ids: list[str]) -> None:
        if self.published is not None and order_ids:
            await self.published(order_ids)
