"""The payment side of orders: the providers' events (from the webhooks' jobs and the provider checks) applied to
the orders of a payment, and the sweep of orders left unpaid. Orders change status only through OrderService
(live/commerce/orders.py: `move`, `close_unpaid`, `publish`), in one transaction with the payment row, and are
pushed as `order:update` once it commits. A payment event is idempotent and monotonic: an order never moves
backwards. Locks: the payment first, then its orders (as everywhere, live/commerce/orders.py)."""
from __future__ import annotations

import asyncpg

from db import Database
from db import checkouts as checkouts_db
from db import payments as payments_db
from db import refunds as refunds_db
from live.auth.principal import SYSTEM
from live.commerce.orders import OPEN, PAID_LIKE, RESTOCK_ON_REFUND, Changes, OrderService
from live.commerce.payments import PaymentProviders
from live.commerce.payments.base import PaymentEvent
from live.errors import DomainError
from live.logging import get_logger
from live.notify import events as notices

log = get_logger("live.commerce.order_payments")
CHECKOUT_KEY_SECONDS = 24 * 3600


class OrderPayments:
    def __init__(self, db: Database, orders: OrderService, providers: PaymentProviders, payment_timeout: int):
        self.db = db
        self.orders = orders
        self.refunds = orders.refunds  # owed on a payment after cancel, settled by the provider's refund events
        self.providers = providers
        self.payment_timeout = payment_timeout  # ORDER_PAYMENT_TIMEOUT_SECONDS

    # ---- payments (webhooks) ----

    async def apply_payment_event(self, event: PaymentEvent) -> str:
        """Apply a verified provider event: "applied", "ignored" (duplicate, stale or not ours to act on) or
        the reason it was not applied. Idempotent and monotonic: an order never moves backwards."""
        if event.kind == "ignored":
            return "ignored"
        changes = Changes()
        try:
            async with self.db.tx(SYSTEM) as conn:
                pay = None
                if event.provider_ref:
                    pay = await payments_db.payment_by_ref(conn, event.provider, event.provider_ref)
                if pay is None and event.payment_id:
                    pay = await payments_db.payment(conn, event.payment_id, lock=True)
                    if pay is not None and pay["provider"] != event.provider:
                        pay = None
                if pay is None:
                    log.warning("payment_event_unknown", provider=event.provider, ref=event.provider_ref)
                    return "unknown_payment"
                result = await self._apply(conn, pay, event, changes)
        except asyncpg.DataError:
            return "unknown_payment"  # e.g. a payment_id that is not a uuid
        await self.orders.publish(changes)
        log.info("payment_event", provider=event.provider, kind=event.kind, key=event.event_key, result=result)
        return result

    async def _apply(self, conn, pay, event: PaymentEvent, changes: Changes) -> str:
        why = f"{event.provider}: {event.event_type}"
        if event.kind == "succeeded":
            if (event.amount_minor != pay["amount_minor"]
                    or (event.currency or "").upper() != pay["currency"]):
                await payments_db.set_payment(conn, pay["id"], issue="amount_mismatch", issue_details={
                    "expected": {"amount_minor": pay["amount_minor"], "currency": pay["currency"]},
                    "received": {"amount_minor": event.amount_minor, "currency": event.currency},
                    "event_key": event.event_key})
                await notices.payment_flagged(conn, pay["id"], "amount_mismatch",  # once per wrong amount
                                              f"{event.amount_minor} {event.currency}")
                log.warning("payment_amount_mismatch", payment_id=pay["id"], expected=pay["amount_minor"],
                            got=event.amount_minor, currency=event.currency)
                return "amount_mismatch"
            if pay["status"] in ("succeeded", "refunded"):
                return "ignored"
            orders = await payments_db.payment_orders(conn, pay["id"])
            pending = [o for o in orders if o["status"] == "pending_payment"]
            canceled = [o for o in orders if o["status"] == "canceled"]
            fields: dict = {"status": "succeeded", "provider_ref": pay["provider_ref"] or event.provider_ref}
            if canceled:
                # money taken for orders already canceled (payment timeout, cancellation): keep them canceled,
                # flag it, and refund them (sent once this transaction has committed)
                fields.update(issue="paid_after_cancel", issue_details={
                    "orders": [o["id"] for o in canceled], "event_key": event.event_key})
            await payments_db.set_payment(conn, pay["id"], **fields)
            if canceled:
                await notices.payment_flagged(conn, pay["id"], "paid_after_cancel", "")  # once: now succeeded
                changes.refunds += await self.refunds.owe(conn, pay, canceled, "paid after the order was canceled")
                changes.add([o["id"] for o in canceled])
            await self.orders.move(conn, pending, "paid", changes, actor_id=None, actor_kind="webhook", reason=why)
            if self.orders.shipping is not None:  # labels bought on payment, where the seller says so
                await self.orders.shipping.labels.on_paid(conn, [o["id"] for o in pending])
            return "paid_after_cancel" if canceled else "applied"
        if event.kind in ("failed", "canceled"):
            if pay["status"] not in OPEN:
                return "ignored"  # e.g. a failure arriving after the success: never move backwards
            orders = await payments_db.payment_orders(conn, pay["id"])
            await self.orders.close_unpaid(conn, pay, orders, event.kind, changes, actor_id=None,
                                           actor_kind="webhook", reason=why)
            return "applied"
        if event.kind == "refunded":
            return await self._refunded(conn, pay, event, changes, why)
        return "ignored"

    async def _refunded(self, conn, pay, event: PaymentEvent, changes: Changes, why: str) -> str:
        if pay["status"] != "succeeded":
            return "ignored"
        amount = event.amount_minor
        ours = await self.refunds.match(conn, pay, event)
        if ours is not None and ours["status"] == "succeeded":
            return "ignored"  # another notice of a refund already applied
        if amount is not None and amount < pay["amount_minor"]:
            # a partial refund: what a canceled order was owed (ours, or made by hand), or something a human must
            # look at
            due = pay["refund_due_minor"]
            if amount <= due:
                left = due - amount
                await payments_db.set_payment(conn, pay["id"], refund_due_minor=left,
                                            issue=pay["issue"] if left else None)
                if ours is not None:
                    await self.refunds.settle(conn, ours, event)
                    changes.add([ours["order_id"]])
                    if await refunds_db.refunded_total(conn, pay["id"]) >= pay["amount_minor"]:
                        await payments_db.set_payment(conn, pay["id"], status="refunded")  # all of it, in parts
                    await notices.refunds_settled(conn, pay["id"])
                return "applied"
            await payments_db.set_payment(conn, pay["id"], issue="refund_due", issue_details={
                "partial_refund_minor": amount, "event_key": event.event_key})
            await notices.payment_flagged(conn, pay["id"], "refund_due", event.event_key or "")
            return "partial_refund"
        orders = await payments_db.payment_orders(conn, pay["id"])
        await payments_db.set_payment(conn, pay["id"], status="refunded", refund_due_minor=0, issue=None)
        changes.add(await self.refunds.settle_all(conn, pay["id"]))
        await notices.refunds_settled(conn, pay["id"])
        restock = [o for o in orders if o["status"] in RESTOCK_ON_REFUND]
        keep = [o for o in orders if o["status"] in PAID_LIKE and o["status"] not in RESTOCK_ON_REFUND]
        await self._void_labels(conn, restock, why)
        await self.orders.move(conn, restock, "refunded", changes, actor_id=None, actor_kind="webhook", reason=why,
                               restock=True)
        await self.orders.move(conn, keep, "refunded", changes, actor_id=None, actor_kind="webhook", reason=why)
        return "applied"

    async def _void_labels(self, conn, orders: list, why: str) -> None:
        """The whole payment came back before these (locked) orders shipped: like a cancel (OrderService.
        _cancel_paid), a label bought or being bought is voided (its job asks the carrier; an in-flight purchase
        only looks the label up, then voids it). A label the carrier no longer takes back is kept: the refund
        still applies."""
        if self.orders.shipping is None:
            return
        for order in orders:
            try:
                await self.orders.shipping.voids.on_order_canceled(conn, order["id"], "webhook", None,
                                                                   f"payment refunded ({why})")
            except DomainError as exc:  # refused before anything was written (e.g. a manually tracked parcel)
                log.warning("refund_label_kept", order_id=order["id"], why=exc.message)

    # ---- unpaid orders ----

    async def cancel_unpaid(self) -> int:
        """Cancel orders whose payment did not complete within order_payment_timeout_seconds (asking the
        provider first, when it can say, whether the payment went through after all). Returns how many
        payments were closed."""
        async with self.db.tx(SYSTEM) as conn:
            payment_ids = await payments_db.stale_unpaid(conn, self.payment_timeout, 100)
        closed = 0
        for payment_id in payment_ids:
            if await self._verify_with_provider(payment_id):
                continue
            changes = Changes()
            async with self.db.tx(SYSTEM) as conn:
                pay = await payments_db.lock_unless_locked(conn, payment_id)
                if pay is None:
                    continue  # a webhook is working on it right now
                orders = await payments_db.payment_orders(conn, payment_id)
                await self.orders.close_unpaid(conn, pay, orders, "canceled", changes, actor_id=None,
                                               actor_kind="system", reason="payment not completed in time")
            await self.orders.publish(changes)
            closed += 1
        return closed

    async def _verify_with_provider(self, payment_id: str) -> bool:
        """True when the provider reports the payment settled (and it was applied)."""
        async with self.db.tx(SYSTEM) as conn:
            pay = await payments_db.payment(conn, payment_id)
        if pay is None or not pay["provider_ref"] or pay["status"] not in OPEN:
            return False
        try:
            provider = self.providers.get(pay["provider"])
            event = await provider.verify(pay["provider_ref"])
        except Exception as exc:  # provider down: the timeout still applies
            log.warning("payment_verify_failed", payment_id=payment_id, error=str(exc))
            return False
        if event is None or event.kind not in ("succeeded",):
            return False
        return await self.apply_payment_event(event) in ("applied", "paid_after_cancel")

    async def purge_checkout_keys(self) -> int:
        """Idempotency keys are kept CHECKOUT_KEY_SECONDS (24 h, like Stripe's); a retry after that finds the
        cart already checked out (empty) and is refused, so nothing is bought twice."""
        async with self.db.tx(SYSTEM) as conn:
            return await checkouts_db.purge_checkouts(conn, CHECKOUT_KEY_SECONDS)

    async def sweep(self) -> None:
        """The orders sweeper's round: old checkout keys forgotten, unpaid orders canceled."""
        await self.purge_checkout_keys()
        await self.cancel_unpaid()
