"""Orders after checkout: status changes (each one writes the status history and is pushed as `order:update`
to the buyer's and the seller's sockets), buyer and seller cancellation, the seller moving an order along,
payment events from the providers' webhooks, and the sweep of orders left unpaid. A canceled paid order is
refunded by itself (live/commerce/refunds.py): recorded in the cancel's transaction, sent after it commits.

Status flow: pending_payment -> paid (-> processing) -> label_created -> shipped -> in_transit -> out_for_delivery
-> delivered (or delivery_failed, returned_to_sender); canceled and refunded end it. After payment the carrier moves
the order (live/commerce/shipping, docs/shipping.md); the hooks below are where shipping joins in (`self.shipping`).
Locks are taken payment first, then its orders (id order), then shipments, then variants (id order), everywhere."""
from __future__ import annotations

from typing import Callable

import asyncpg

from db import Database, audit
from db import checkouts as checkouts_db
from db import coupons as coupons_db
from db import inventory as inventory_db
from db import orders as orders_db
from db import payments as payments_db
from db import refunds as refunds_db
from db import streams as streams_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.commerce.payments import PaymentProviders
from live.commerce.payments.base import PaymentEvent
from live.commerce.refunds import RefundService
from live.commerce.stock import StockBoard
from live.cursors import decode_cursor, encode_cursor
from live.errors import DomainError, forbidden, not_found
from live.logging import get_logger
from live.rooms import events

log = get_logger("live.commerce.orders")
OPEN = payments_db.OPEN
PAID_LIKE = ("paid", "processing", "label_created", "shipped", "in_transit", "out_for_delivery", "delivered",
             "delivery_failed", "returned_to_sender")
# "shipped" takes a tracking number (POST .../tracking) or a carrier scan; "delivered" by hand: manual tracking only
SELLER_MOVES = {"paid": ("processing",), "shipped": ("delivered",), "in_transit": ("delivered",),
                "out_for_delivery": ("delivered",)}
SELLER_CANCELABLE = ("pending_payment", "paid", "processing", "label_created")  # before the first scan
RESTOCK_ON_REFUND = ("paid", "processing", "label_created")  # not shipped yet: the units never left
CHECKOUT_KEY_SECONDS = 24 * 3600

Push = Callable[[str, str, dict], int]


class Changes:
    """What a transaction changed, published after it commits."""

    def __init__(self) -> None:
        self.order_ids: list[str] = []
        self.levels: list = []
        self.refunds: list[str] = []  # refunds recorded (their refund.send jobs were enqueued with them)

    def add(self, order_ids: list[str], levels: list | None = None) -> None:
        self.order_ids += [o for o in order_ids if o not in self.order_ids]
        self.levels += levels or []


class OrderService:
    def __init__(self, db: Database, board: StockBoard, payment_timeout: int, providers: PaymentProviders,
                 push: Push | None = None):
        self.db = db
        self.board = board
        self.payment_timeout = payment_timeout
        self.providers = providers
        self.push = push  # Gateway.send_to_user; None in a process without sockets (the CLI)
        self.refunds = RefundService(db, providers, self.publish_orders)
        self.shipping = None  # live.commerce.shipping.Shipping, set by Commerce: auto-labels, voids, manual delivery

    # ---- the one place statuses change ----

    async def _move(self, conn, orders: list, to: str, changes: Changes, *, actor_id: str | None,
                    actor_kind: str, reason: str | None, restock: bool = False) -> None:
        """Move `orders` (locked rows with id and status) to `to`, with history and, when asked, their
        units back to stock."""
        by_from: dict[str, list[str]] = {}
        for o in orders:
            by_from.setdefault(o["status"], []).append(o["id"])
        ids = [o["id"] for o in orders]
        if not ids:
            return
        await orders_db.set_status(conn, ids, to)
        for from_status, group in by_from.items():
            await orders_db.add_history(conn, group, from_status, to, actor_id, actor_kind, reason)
        levels = []
        if restock:
            levels = await inventory_db.unsell(conn, await orders_db.order_lines(conn, ids), actor_id,
                                               f"order {to}" + (f": {reason}" if reason else ""))
        changes.add(ids, levels)

    async def publish(self, changes: Changes) -> None:
        if changes.levels:
            await self.board.seen(changes.levels)
        if not changes.order_ids or self.push is None:
            return
        async with self.db.tx(SYSTEM) as conn:
            orders = await orders_db.orders_json(conn, changes.order_ids)
        self.push_orders(orders)

    async def publish_orders(self, order_ids: list[str]) -> None:
        """Push the current state of these orders (after a change made elsewhere: a refund, an admin's
        resolution)."""
        changes = Changes()
        changes.add(order_ids)
        await self.publish(changes)

    def push_orders(self, orders: list[tuple[dict, str]]) -> None:
        """order:update to each order's buyer and seller ((order, seller's user id) as orders_json reads them)."""
        if self.push is None:
            return
        for order, seller_user in orders:
            payload = {"order": order, "shipment": order.get("shipment"),
                       "tracking": (order.get("shipment") or {}).get("last_event")}
            for user in {order["user_id"], seller_user}:
                self.push(user, events.ORDER_UPDATE, payload)

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
        await self.publish(changes)
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
                changes.refunds += await self.refunds.owe(conn, pay, canceled, "paid after the order was canceled")
                changes.add([o["id"] for o in canceled])
            await self._move(conn, pending, "paid", changes, actor_id=None, actor_kind="webhook", reason=why)
            if self.shipping is not None:  # labels bought on payment, where the seller says so
                await self.shipping.labels.on_paid(conn, [o["id"] for o in pending])
            return "paid_after_cancel" if canceled else "applied"
        if event.kind in ("failed", "canceled"):
            if pay["status"] not in OPEN:
                return "ignored"  # e.g. a failure arriving after the success: never move backwards
            orders = await payments_db.payment_orders(conn, pay["id"])
            await self._close_unpaid(conn, pay, orders, event.kind, changes, actor_id=None, actor_kind="webhook",
                                     reason=why)
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
                return "applied"
            await payments_db.set_payment(conn, pay["id"], issue="refund_due", issue_details={
                "partial_refund_minor": amount, "event_key": event.event_key})
            return "partial_refund"
        orders = await payments_db.payment_orders(conn, pay["id"])
        await payments_db.set_payment(conn, pay["id"], status="refunded", refund_due_minor=0, issue=None)
        changes.add(await self.refunds.settle_all(conn, pay["id"]))
        restock = [o for o in orders if o["status"] in RESTOCK_ON_REFUND]
        keep = [o for o in orders if o["status"] in PAID_LIKE and o["status"] not in RESTOCK_ON_REFUND]
        await self._move(conn, restock, "refunded", changes, actor_id=None, actor_kind="webhook", reason=why,
                         restock=True)
        await self._move(conn, keep, "refunded", changes, actor_id=None, actor_kind="webhook", reason=why)
        return "applied"

    async def _cancel_unpaid(self, conn, orders: list, changes: Changes, *, actor_id, actor_kind, reason) -> None:
        """Cancel the pending orders among `orders`, their units back to stock."""
        pending = [o for o in orders if o["status"] == "pending_payment"]
        await self._move(conn, pending, "canceled", changes, actor_id=actor_id, actor_kind=actor_kind,
                         reason=reason, restock=True)

    async def _close_unpaid(self, conn, pay, orders: list, status: str, changes: Changes, *, actor_id,
                            actor_kind, reason) -> None:
        """A payment that will not complete: its pending orders canceled, the payment marked, and the
        checkout's coupon use given back (once per checkout)."""
        await self._cancel_unpaid(conn, orders, changes, actor_id=actor_id, actor_kind=actor_kind, reason=reason)
        if pay is not None and pay["status"] in OPEN:
            await payments_db.set_payment(conn, pay["id"], status=status)
            await coupons_db.release_coupons(conn, {o["coupon_id"] for o in orders if o["coupon_id"]})

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
                await self._close_unpaid(conn, pay, orders, "canceled", changes, actor_id=None,
                                         actor_kind="system", reason="payment not completed in time")
            await self.publish(changes)
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

    # ---- buyers and sellers ----

    async def cancel_by_buyer(self, principal: Principal, order_id: str, reason: str | None) -> dict:
        """Unpaid: the order and the rest of its checkout (one payment) are canceled. Paid and not yet being
        prepared: canceled, units back to stock, and refunded (asked of the provider once this commits)."""
        changes = Changes()
        async with self.db.tx(SYSTEM) as conn:
            order, pay, payment_id = await self._lock_own(conn, principal, order_id, as_seller=False)
            why = reason or "canceled by the buyer"
            if order["status"] == "pending_payment":
                orders = await payments_db.payment_orders(conn, payment_id) if payment_id else [order]
                await self._close_unpaid(conn, pay, orders, "canceled", changes, actor_id=principal.user_id,
                                         actor_kind="user", reason=why)
            elif order["status"] == "paid":
                await self._cancel_paid(conn, order, pay, changes, principal.user_id, "user", why)
            elif order["status"] == "canceled":
                raise DomainError("conflict", "the order is already canceled")
            else:
                raise DomainError("conflict", f"the order is {order['status']}: ask the seller to cancel it")
        await self.publish(changes)
        return await self.detail(principal, order_id)

    async def _cancel_paid(self, conn, order, pay, changes: Changes, actor_id, actor_kind, why) -> None:
        if self.shipping is not None:  # a label bought or being bought is voided (a job asks the carrier)
            await self.shipping.voids.on_order_canceled(conn, order["id"], actor_kind, actor_id, why)
        await self._move(conn, [order], "canceled", changes, actor_id=actor_id, actor_kind=actor_kind, reason=why,
                         restock=True)
        if pay is not None:
            changes.refunds += await self.refunds.owe(conn, pay, [order], why, actor_id=actor_id)

    async def seller_set_status(self, principal: Principal, order_id: str, to: str, reason: str | None) -> dict:
        changes = Changes()
        async with self.db.tx(SYSTEM) as conn:
            order, pay, payment_id = await self._lock_own(conn, principal, order_id, as_seller=True)
            current = order["status"]
            if to == "canceled":
                why = reason or "canceled by the seller"
                if current not in SELLER_CANCELABLE:
                    raise DomainError("conflict", f"a {current} order cannot be canceled")
                if current == "pending_payment":
                    # only this seller's order; the payment closes when none of its orders is left to pay
                    await self._cancel_unpaid(conn, [order], changes, actor_id=principal.user_id,
                                              actor_kind="seller", reason=why)
                    others = await payments_db.payment_orders(conn, payment_id) if payment_id else []
                    if others and all(o["status"] == "canceled" for o in others):
                        await self._close_unpaid(conn, pay, others, "canceled", changes, actor_id=principal.user_id,
                                                 actor_kind="seller", reason=why)
                else:
                    await self._cancel_paid(conn, order, pay, changes, principal.user_id, "seller", why)
            else:
                if to not in SELLER_MOVES.get(current, ()):
                    raise DomainError("conflict", f"a {current} order cannot become {to}")
                if to == "delivered" and self.shipping is not None:  # only a manually tracked parcel
                    await self.shipping.voids.delivered_by_seller(conn, order_id, principal)
                await self._move(conn, [order], to, changes, actor_id=principal.user_id, actor_kind="seller",
                                 reason=reason)
            await audit.record(conn, principal.user_id, "order.status", "order", order_id,
                               before={"status": current}, after={"status": to}, reason=reason,
                               by="admin" if principal.is_admin else "seller")
        await self.publish(changes)
        return await self.detail(principal, order_id)

    async def _lock_own(self, conn, principal: Principal, order_id: str, *, as_seller: bool) -> tuple:
        """(order, payment, payment id), locked payment first, once the caller is found to be the order's buyer
        (as_seller: its seller) or an admin."""
        row = await orders_db.parties(conn, order_id)
        if row is None:
            raise not_found("order")
        party = row["seller_user_id"] if as_seller else row["user_id"]
        if not policy.owns(principal, party):
            raise (forbidden("only the seller moves an order along")
                   if as_seller and row["user_id"] == principal.user_id else not_found("order"))
        payment_id = await payments_db.payment_of_order(conn, order_id)
        pay = await payments_db.payment(conn, payment_id, lock=True) if payment_id else None
        return await orders_db.lock_order(conn, order_id), pay, payment_id

    # ---- reading ----

    async def listing(self, principal: Principal, *, status: str | None, cursor: str | None, limit: int,
                      stream: str | None = None, **filters) -> dict:
        """A page of orders newest first, as the caller may see them (row-level security), with the cursor of
        the next; filters as db/orders.py list_orders, and `stream` an id or slug (404 when unknown)."""
        before = tuple(decode_cursor(cursor, "ts", "uuid")) if cursor else None
        async with self.db.tx(principal) as conn:
            if stream:
                row = await streams_db.get(conn, stream)
                if row is None:
                    raise not_found("stream")
                filters["stream_id"] = row["id"]
            rows = await orders_db.list_orders(conn, status=status, before=before, limit=limit + 1, **filters)
        last = rows[limit - 1] if len(rows) > limit else None
        return {"items": [r["j"] for r in rows[:limit]],
                "next_cursor": encode_cursor(last["created_at"].isoformat(), last["id"]) if last else None}

    async def detail(self, principal: Principal, order_id: str, *, own: bool = False) -> dict:
        """The order as its buyer, its seller or an admin sees it (row-level security). own (GET /me/orders/{id}):
        only an order the caller bought; any other is not_found, for admins and sellers too."""
        async with self.db.tx(principal) as conn:
            order = await orders_db.order_json(conn, order_id)
            if order is None or (own and order["user_id"] != principal.user_id):
                raise not_found("order")
            order["history"] = await orders_db.history(conn, order_id)
            order["shipments"] = await orders_db.shipments(conn, order_id)
        async with self.db.tx(SYSTEM) as conn:  # the seller may not read the buyer's payment row
            payment_id = await payments_db.payment_of_order(conn, order_id)
            pay = await payments_db.payment(conn, payment_id) if payment_id else None
            refunded = await refunds_db.refunded_total(conn, payment_id) if payment_id else 0
        order["payment"] = payment_out(pay, buyer=order["user_id"] == principal.user_id,
                                       refunded_minor=refunded) if pay else None
        return order


def payment_out(pay, *, buyer: bool, refunded_minor: int = 0) -> dict:
    out = {"id": pay["id"], "provider": pay["provider"], "status": pay["status"], "amount_minor": pay["amount_minor"],
           "currency": pay["currency"], "refund_due_minor": pay["refund_due_minor"], "refunded_minor": refunded_minor,
           "issue": pay["issue"]}
    if buyer:
        out.update(provider_ref=pay["provider_ref"], client_secret=pay["client_secret"],
                   authorization_url=pay["authorization_url"])
    return out
