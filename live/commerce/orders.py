"""Orders after checkout: status changes (each one writes the status history and is pushed as `order:update`
to the buyer's and the seller's sockets), buyer and seller cancellation, the seller moving an order along, and
reading orders. Payment events from the providers' webhooks and the sweep of orders left unpaid are in
live/commerce/order_payments.py, which moves orders through the methods here. A canceled paid order is refunded
by itself (live/commerce/refunds.py): recorded in the cancel's transaction, sent by its refund.send job.

Status flow: pending_payment -> paid (-> processing) -> label_created -> shipped -> in_transit -> out_for_delivery
-> delivered (or delivery_failed, returned_to_sender); canceled and refunded end it. After payment the carrier moves
the order (live/commerce/shipping, docs/shipping.md); the hooks below are where shipping joins in (`self.shipping`).
Locks are taken payment first, then its orders (id order), then shipments, then variants (id order), everywhere."""
from __future__ import annotations

from typing import Callable

from db import Database, audit
from db import coupons as coupons_db
from db import inventory as inventory_db
from db import orders as orders_db
from db import payments as payments_db
from db import refunds as refunds_db
from db import streams as streams_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.commerce.payments import PaymentProviders
from live.commerce.refunds import RefundService
from live.commerce.stock import StockBoard
from live.cursors import decode_cursor, encode_cursor
from live.errors import DomainError, forbidden, not_found
from live.notify import events as notices
from live.rooms import events

OPEN = payments_db.OPEN
PAID_LIKE = ("paid", "processing", "label_created", "shipped", "in_transit", "out_for_delivery", "delivered",
             "delivery_failed", "returned_to_sender")
# "shipped" takes a tracking number (POST .../tracking) or a carrier scan; "delivered" by hand: manual tracking only
SELLER_MOVES = {"paid": ("processing",), "shipped": ("delivered",), "in_transit": ("delivered",),
                "out_for_delivery": ("delivered",)}
SELLER_CANCELABLE = ("pending_payment", "paid", "processing", "label_created")  # before the first scan
RESTOCK_ON_REFUND = ("paid", "processing", "label_created")  # not shipped yet: the units never left

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
    def __init__(self, db: Database, board: StockBoard, providers: PaymentProviders, push: Push | None = None):
        self.db = db
        self.board = board
        self.push = push  # Gateway.send_to_user; None in a process without sockets (the CLI)
        self.refunds = RefundService(db, providers, self.publish_orders)
        self.shipping = None  # live.commerce.shipping.Shipping, set by Commerce: auto-labels, voids, manual delivery

    # ---- the one place statuses change ----

    async def move(self, conn, orders: list, to: str, changes: Changes, *, actor_id: str | None,
                    actor_kind: str, reason: str | None, restock: bool = False,
                    payment_failed: bool = False) -> None:
        """Move `orders` (locked rows with id and status) to `to`, with history, the notifications of the move
        (live/notify/events.py; `payment_failed`: a cancel because the payment failed) and, when asked, their
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
        await notices.order_moved(conn, ids, to, reason=reason, payment_failed=payment_failed)
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

    # ---- unpaid orders closed (a buyer, a seller, a failed payment, the sweep) ----

    async def cancel_pending(self, conn, orders: list, changes: Changes, *, actor_id, actor_kind, reason,
                             payment_failed: bool = False) -> None:
        """Cancel the pending orders among `orders`, their units back to stock."""
        pending = [o for o in orders if o["status"] == "pending_payment"]
        await self.move(conn, pending, "canceled", changes, actor_id=actor_id, actor_kind=actor_kind,
                         reason=reason, restock=True, payment_failed=payment_failed)

    async def close_unpaid(self, conn, pay, orders: list, status: str, changes: Changes, *, actor_id,
                           actor_kind, reason) -> None:
        """A payment that will not complete: its pending orders canceled, the payment marked, and the
        checkout's coupon use given back (once per checkout)."""
        await self.cancel_pending(conn, orders, changes, actor_id=actor_id, actor_kind=actor_kind, reason=reason,
                                  payment_failed=status == "failed")
        if pay is not None and pay["status"] in OPEN:
            await payments_db.set_payment(conn, pay["id"], status=status)
            await coupons_db.release_coupons(conn, {o["coupon_id"] for o in orders if o["coupon_id"]})

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
                await self.close_unpaid(conn, pay, orders, "canceled", changes, actor_id=principal.user_id,
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
        await self.move(conn, [order], "canceled", changes, actor_id=actor_id, actor_kind=actor_kind, reason=why,
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
                    await self.cancel_pending(conn, [order], changes, actor_id=principal.user_id,
                                              actor_kind="seller", reason=why)
                    others = await payments_db.payment_orders(conn, payment_id) if payment_id else []
                    if others and all(o["status"] == "canceled" for o in others):
                        await self.close_unpaid(conn, pay, others, "canceled", changes, actor_id=principal.user_id,
                                                actor_kind="seller", reason=why)
                else:
                    await self._cancel_paid(conn, order, pay, changes, principal.user_id, "seller", why)
            else:
                if to not in SELLER_MOVES.get(current, ()):
                    raise DomainError("conflict", f"a {current} order cannot become {to}")
                if to == "delivered" and self.shipping is not None:  # only a manually tracked parcel
                    await self.shipping.voids.delivered_by_seller(conn, order_id, principal)
                await self.move(conn, [order], to, changes, actor_id=principal.user_id, actor_kind="seller",
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
