"""Automatic refunds: a paid order that is canceled (by the buyer, by the seller, or money that arrived for an order
already canceled) is refunded through its payment's provider.

1. The transaction that cancels the order records the refund (`payment_refunds`, status `requested`) and adds its
   amount to the payment's `refund_due_minor` (`owe`). Nothing is sent yet.
2. After that transaction commits, `send` calls the provider (never inside a transaction): a short transaction
   claims the refund (attempts + 1; the next attempt pushed back, which is also the lease while the call is in
   flight), then `provider.refund(...)` with an idempotency key derived from the record, then a short transaction
   records the answer: accepted (the provider's refund id), or the error.
3. A call that failed, or that a crash interrupted, is retried by the sweeper (`sweep`) with backoff: 2 min, 8 min,
   32 min, ~2 h, 6 h. After MAX_ATTEMPTS, or at once when the provider refuses (already refunded, more than is
   left), the refund is `failed` and the payment is flagged `refund_due` with the error, for a human.
4. The provider's refund webhook settles it (`settle`, called by the order side): `succeeded`, and the debt is paid
   off. A second notice of a settled refund changes nothing.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from db import Database, audit
from db import payments as payments_db
from db import refunds as refunds_db
from live.auth.principal import SYSTEM
from live.commerce.payments import PaymentProviders
from live.commerce.payments.base import PaymentEvent, RefundRequest
from live.errors import DomainError
from live.logging import get_logger

log = get_logger("live.commerce.refunds")
MAX_ATTEMPTS = 6
FIRST_RETRY_SECONDS = 120.0  # longer than one provider call with its own retries (Stripe: 3 x 30 s at most)
MAX_RETRY_SECONDS = 6 * 3600.0
SWEEP_BATCH = 50

Published = Callable[[list[str]], Awaitable[None]]  # order:update for these orders (their refund changed)


class RefundService:
    def __init__(self, db: Database, providers: PaymentProviders, published: Published | None = None):
        self.db = db
        self.providers = providers
        self.published = published
        self._tasks: set[asyncio.Task] = set()

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
        return [r["id"] for r in rows]

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

    # ---- after the commit ----

    async def send(self, refund_ids: list[str]) -> None:
        """Ask the provider for each refund (those not due, already accepted or settled are skipped)."""
        for refund_id in refund_ids:
            try:
                await self._send(refund_id)
            except Exception:  # the record stays requested; the sweeper tries again
                log.exception("refund_send_error", refund_id=refund_id)

    def send_soon(self, refund_ids: list[str]) -> None:
        """`send` in the background (the caller holds a transaction or must not wait: a webhook being processed)."""
        if not refund_ids:
            return
        task = asyncio.create_task(self.send(refund_ids), name="refund-send")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sweep(self) -> int:
        """The sweeper's round: every refund whose (next) attempt is due. Returns how many were tried."""
        async with self.db.tx(SYSTEM) as conn:
            ids = await refunds_db.due(conn, SWEEP_BATCH)
        await self.send(ids)
        return len(ids)

    async def drain(self) -> None:
        """Wait for the background sends in flight (`send_soon`)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel calls in flight: a claimed refund is tried again by a sweeper once its lease (next attempt) is up,
        with the same idempotency key."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _send(self, refund_id: str) -> None:
        async with self.db.tx(SYSTEM) as conn:
            pay = await refunds_db.lock_payment_of(conn, refund_id)
            if pay is None:
                return
            refund = await refunds_db.claim(conn, refund_id, FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS)
            if refund is None:
                return  # not due, accepted, settled or failed
            why = self._cannot_send(pay, refund)
            if why:
                await self._failed(conn, pay, refund, why, final=True)
        if why:
            await self._publish([refund["order_id"]])
            return
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
                changed = await self._failed(conn, pay, refund, error, final=final)
            if changed:
                await self._publish([refund["order_id"]])
            return
        async with self.db.tx(SYSTEM) as conn:
            await refunds_db.accepted(conn, refund_id, result.provider_ref, result.status)
        log.info("refund_requested", refund_id=refund_id, provider=refund["provider"], ref=result.provider_ref,
                 status=result.status, amount=refund["amount_minor"])

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
        log.error("refund_failed", refund_id=refund["id"], payment_id=refund["payment_id"], error=error,
                  attempts=row["attempts"])
        if pay is not None:
            await payments_db.set_payment(conn, pay["id"], issue="refund_due", issue_details={
                "refund_id": refund["id"], "order_id": refund["order_id"], "amount_minor": refund["amount_minor"],
                "attempts": row["attempts"], "error": error})
        return True

    async def _publish(self, order_ids: list[str]) -> None:
        if self.published is not None and order_ids:
            await self.published(order_ids)
