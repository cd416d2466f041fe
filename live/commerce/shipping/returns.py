"""Returns (docs/shipping.md, "Returns"): a buyer asks to send back some units of a delivered order within the
seller's return window; the seller approves (a return label is bought from the buyer's address to the seller's
ship-from: `labels.create(kind='return')`) or refuses; the return follows its label's tracking (`on_shipment`,
called by the tracking code in its transaction); the seller marks it received with the refund (recorded in the same
transaction through the refund flow, sent to the provider by its job once that commits) and the units that go back
to stock (inventory `return` events, and the rooms' stock:update). The buyer may cancel a return not yet decided.

Status flow: requested -> approved -> in_transit -> delivered -> refunded (a refund) | received (none);
requested -> refused | canceled. The seller may mark a return received from approved or in_transit too (a parcel
that arrived before its tracking said so); received from approved, its return label, if nothing scanned it, is voided
(voids.py: at the carrier by a job). A refusal or a cancellation comes before any label (only from requested).
Every change writes a return_status_history row and an audit row in its transaction, and is pushed after the commit
as `order:update` (`{"order", "return"}`) to the buyer and the seller."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from db import Database, audit
from db import inventory as inventory_db
from db import orders as orders_db
from db import payments as payments_db
from db import refunds as refunds_db
from db import returns as returns_db
from db import shipping as shipping_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.commerce.orders import OrderService
from live.commerce.refunds import RefundService
from live.commerce.shipping.parcels import parcel_dict, parcel_for
from live.cursors import decode_cursor, encode_cursor
from live.errors import DomainError, forbidden, not_found
from live.jobs import enqueue
from live.logging import get_logger
from live.notify import events as notices
from live.rooms import events

log = get_logger("live.shipping.returns")
REASONS = ("damaged", "defective", "wrong_item", "not_as_described", "changed_mind", "other")
MAX_LINES = 100         # lines in one return request, and in one receipt's restock list
MAX_QUANTITY = 10_000   # units of one line (an order line holds fewer anyway)
NOTE_MAX = 1000         # characters of a buyer's note or a seller's decision note
RECEIVABLE = ("approved", "in_transit", "delivered")
RELABEL = ("purchase_failed", "voided")  # an approved return whose label ended so is approved again: a new label
CARRIER_MOVES = {"in_transit": "in_transit", "out_for_delivery": "in_transit", "delivered": "delivered"}
RANK = {"approved": 0, "in_transit": 1, "delivered": 2}  # never backwards: a late in_transit after delivered is kept
PUSH_JOB = "returns.push"


def not_returnable(message: str, reason: str, **details) -> DomainError:
    return DomainError("not_returnable", message, details={"reason": reason, **details})


def invalid(problems: list[dict]) -> DomainError:
    return DomainError("validation_failed", problems[0]["message"], details=problems)


def default_refund(order, items) -> int:
    """The returned lines' paid price: their price times quantity less their share of the order's discount
    (in proportion to the subtotal, the share rounded down); shipping is not refunded."""
    value = sum(i["unit_price_minor"] * i["quantity"] for i in items)
    share = order["discount_minor"] * value // order["subtotal_minor"] if order["subtotal_minor"] else 0
    return max(0, value - share)


class ReturnService:
    def __init__(self, db: Database, orders: OrderService, labels, voids):
        """Built by Shipping, which registers `push_job` as PUSH_JOB with the other shipping jobs."""
        self.db = db
        self.orders = orders
        self.labels = labels  # Labels: create(conn, order_id=, kind='return', from_address=, to_address=, ...)
        self.voids = voids  # Voids: void_unscanned(conn, shipment_id, ...), a return label never used

    # ---- the buyer ----

    async def request(self, principal: Principal, order_id: str, *, reason: str, note: str | None,
                      items: list[tuple[str, int]]) -> dict:
        async with self.db.tx(SYSTEM) as conn:
            order = await returns_db.lock_order(conn, order_id)
            if order is None or order["user_id"] != principal.user_id:
                raise not_found("order")
            settings = await shipping_db.seller_settings(conn, order["seller_id"])
            self._check_window(order, settings["return_window_days"])
            if await returns_db.open_return(conn, order_id):
                raise not_returnable("a return of this order is already open", "open_return")
            lines = {r["id"]: r for r in await returns_db.order_items(conn, order_id)}
            self._check_items(items, lines)
            return_id = await returns_db.insert(conn, order_id=order_id, user_id=principal.user_id,
                                                seller_id=order["seller_id"], reason=reason, note=note,
                                                currency=order["currency"], items=items)
            await self._moved(conn, principal, return_id, None, "requested", "user", note,
                              extra={"reason": reason, "items": [{"order_item_id": i, "quantity": q}
                                                                 for i, q in items]}, order_id=order_id)
        await self.publish(return_id)
        return await self.detail(principal, return_id, own=True)

    async def cancel(self, principal: Principal, return_id: str, reason: str | None) -> dict:
        async with self.db.tx(SYSTEM) as conn:
            ret = await self._lock(conn, return_id)
            if ret["user_id"] != principal.user_id:
                raise not_found("return")
            if ret["status"] != "requested":
                raise DomainError("conflict", f"a {ret['status']} return cannot be canceled")
            await returns_db.update(conn, return_id, status="canceled")
            await self._moved(conn, principal, return_id, "requested", "canceled", "user", reason)
        await self.publish(return_id)
        return await self.detail(principal, return_id, own=True)

    # ---- the seller (or an admin) ----

    async def approve(self, principal: Principal, return_id: str, note: str | None) -> dict:
        """requested -> approved with a return label; an approved return whose label could not be bought (or was
        voided) gets a new one."""
        async with self.db.tx(SYSTEM) as conn:
            ret = await self._lock(conn, return_id, seller=principal)
            relabel = ret["status"] == "approved" and ret["label_status"] in RELABEL
            if ret["status"] != "requested" and not relabel:
                raise DomainError("conflict", f"a {ret['status']} return cannot be approved")
            order = await returns_db.lock_order(conn, ret["order_id"])
            settings = await shipping_db.seller_settings(conn, ret["seller_id"])
            if not settings["ship_from"]:
                raise DomainError("conflict", "save your shop's ship-from address before approving a return: "
                                  "the return label goes there")
            if not order["shipping_address"]:
                raise DomainError("conflict", "the order has no address to send the return label from")
            lines = await returns_db.items(conn, return_id)
            dims = await shipping_db.dimensions(conn, [ln["variant_id"] for ln in lines])
            parcel = parcel_for(lines, dims, settings, ret["seller_id"])
            shipment_id = await self.labels.create(
                conn, order_id=ret["order_id"], kind="return", from_address=order["shipping_address"],
                to_address=settings["ship_from"], parcel=parcel_dict(parcel), rate=None, actor=principal,
                reason="return label")
            if relabel:
                await returns_db.update(conn, return_id, return_label_id=shipment_id)
                await audit.record(conn, principal.user_id, "return.relabel", "return", return_id,
                                   before={"return_label_id": ret["return_label_id"]},
                                   after={"return_label_id": shipment_id}, reason=note)
            else:
                await returns_db.update(conn, return_id, status="approved", decided_by=principal.user_id,
                                        decided_at=datetime.now(timezone.utc), decision_note=note,
                                        return_label_id=shipment_id)
                await self._moved(conn, principal, return_id, "requested", "approved", self._kind(principal), note,
                                  extra={"return_label_id": shipment_id})
                await notices.return_approved(conn, return_id)
        await self.publish(return_id)
        return await self.detail(principal, return_id)

    async def refuse(self, principal: Principal, return_id: str, reason: str) -> dict:
        async with self.db.tx(SYSTEM) as conn:
            ret = await self._lock(conn, return_id, seller=principal)
            if ret["status"] != "requested":
                raise DomainError("conflict", f"a {ret['status']} return cannot be refused")
            await returns_db.update(conn, return_id, status="refused", decided_by=principal.user_id,
                                    decided_at=datetime.now(timezone.utc), decision_note=reason)
            await self._moved(conn, principal, return_id, "requested", "refused", self._kind(principal), reason)
        await self.publish(return_id)
        return await self.detail(principal, return_id)

    async def receive(self, principal: Principal, return_id: str, *, refund_minor: int | None,
                      restock: list[tuple[str, int]], note: str | None) -> dict:
        """The parcel is back: refund `refund_minor` (None: the default, see `default_refund`; at most what is left
        to refund of the order and of its payment) and put `restock` (order item id, units) back on the shelf."""
        async with self.db.tx(SYSTEM) as conn:
            order_id = await returns_db.order_of(conn, return_id)
            if order_id is None:
                raise not_found("return")
            payment_id = await payments_db.payment_of_order(conn, order_id)
            pay = await payments_db.payment(conn, payment_id, lock=True) if payment_id else None  # payment first
            order = await returns_db.lock_order(conn, order_id)
            ret = await self._lock(conn, return_id, seller=principal)
            if ret["status"] not in RECEIVABLE:
                raise DomainError("conflict", f"a {ret['status']} return cannot be received")
            lines = {r["order_item_id"]: r for r in await returns_db.items(conn, return_id)}
            self._check_restock(restock, lines)
            left = await self._refundable(conn, order, pay)
            amount = min(default_refund(order, lines.values()), left) if refund_minor is None else refund_minor
            if amount > left:
                raise invalid([{"field": "refund_minor",
                                "message": f"at most {left} is left to refund of this order and its payment"}])
            if amount > 0:  # recorded, and its refund.send job enqueued, in this transaction
                await RefundService.owe_return(conn, pay, order_id=order_id, return_id=return_id,
                                                            amount_minor=amount, reason=f"return of order {order_id}",
                                                            actor_id=principal.user_id)
            levels = await inventory_db.restock(conn, [(lines[i]["variant_id"], q) for i, q in restock],
                                                principal.user_id, f"return {return_id}")
            await returns_db.set_restocked(conn, return_id, restock)
            to = "refunded" if amount > 0 else "received"
            await returns_db.update(conn, return_id, status=to, refund_minor=amount, received_by=principal.user_id,
                                    received_at=datetime.now(timezone.utc))
            await self._moved(conn, principal, return_id, ret["status"], to, self._kind(principal), note,
                              extra={"refund_minor": amount, "restock": [{"order_item_id": i, "quantity": q}
                                                                         for i, q in restock]})
            if to == "refunded":
                await notices.return_refunded(conn, return_id)
            if ret["status"] == "approved" and ret["return_label_id"]:  # back without the label: void it if unscanned
                await self.voids.void_unscanned(conn, ret["return_label_id"], self._kind(principal),
                                                principal.user_id, "return received without this label")
        await self.orders.board.seen(levels)
        await self.publish(return_id)
        return await self.detail(principal, return_id)

    # ---- the return label's tracking (in the tracking code's transaction) ----

    async def on_shipment(self, conn, shipment, status: str) -> None:
        """A return shipment moved to `status`: its return follows (in_transit, then delivered back at the seller),
        never backwards; the push goes out after the commit (a `returns.push` job)."""
        if shipment["kind"] != "return":
            return
        ret = await returns_db.by_label(conn, str(shipment["id"]))
        to = CARRIER_MOVES.get(status)
        if ret is None or to is None or ret["status"] not in RANK or RANK[ret["status"]] >= RANK[to]:
            return
        await returns_db.update(conn, ret["id"], status=to)
        await returns_db.add_history(conn, ret["id"], ret["status"], to, "carrier", None, f"carrier: {status}")
        await audit.record(conn, None, "return.status", "return", ret["id"], before={"status": ret["status"]},
                           after={"status": to}, order_id=ret["order_id"], shipment_id=str(shipment["id"]))
        await enqueue(conn, PUSH_JOB, {"return_id": ret["id"]})

    async def push_job(self, payload: dict) -> None:
        await self.publish(payload["return_id"])

    # ---- reading ----

    async def detail(self, principal: Principal, return_id: str, *, own: bool = False) -> dict:
        """The return as its buyer (own: only the caller's), its seller or an admin sees it, with its history."""
        async with self.db.tx(SYSTEM) as conn:
            parties = await returns_db.parties(conn, return_id)
            if parties is None or not self._sees(principal, parties, own):
                raise not_found("return")
            ret = await returns_db.return_json(conn, return_id)
            ret["history"] = await returns_db.history(conn, return_id)
        return ret

    async def listing(self, principal: Principal, *, mine: bool, status: str | None, cursor: str | None,
                      limit: int) -> dict:
        """A page of returns newest first: the caller's own (mine), or their shops' (all of them for admins)."""
        before = tuple(decode_cursor(cursor, "ts", "uuid")) if cursor else None
        who = ({"user_id": principal.user_id} if mine
               else {"sellers_of": None if principal.is_admin else principal.user_id})
        async with self.db.tx(principal) as conn:
            rows = await returns_db.listing(conn, status=status, before=before, limit=limit + 1, **who)
        last = rows[limit - 1] if len(rows) > limit else None
        return {"items": [r["j"] for r in rows[:limit]],
                "next_cursor": encode_cursor(last["created_at"].isoformat(), last["id"]) if last else None}

    # ---- pushing ----

    async def publish(self, return_id: str) -> None:
        """order:update with the return to the order's buyer and seller (every worker: the gateway's push)."""
        push = self.orders.push
        if push is None:
            return
        async with self.db.tx(SYSTEM) as conn:
            ret = await returns_db.return_json(conn, return_id)
            orders = await orders_db.orders_json(conn, [ret["order_id"]]) if ret else []
        for order, seller_user in orders:
            for user in {order["user_id"], seller_user}:
                push(user, events.ORDER_UPDATE, {"order": order, "return": ret})

    # ---- rules ----

    @staticmethod
    def _check_window(order, window_days: int) -> None:
        if order["status"] != "delivered" or order["delivered_at"] is None:
            raise not_returnable(f"the order is {order['status']}: only a delivered order can be returned",
                                 "not_delivered")
        if window_days <= 0:
            raise not_returnable("this shop does not accept returns", "no_returns")
        closes = order["delivered_at"] + timedelta(days=window_days)
        if datetime.now(timezone.utc) > closes:
            raise not_returnable(f"the return window of {window_days} days closed at {closes.isoformat()}",
                                 "window_closed", closed_at=closes.isoformat())

    @staticmethod
    def _check_items(items: list[tuple[str, int]], lines: dict) -> None:
        """422 per field for lines not of this order, repeated or over what was bought; 409 for units that other
        returns already take back."""
        problems, seen, over = [], set(), []
        for n, (item_id, qty) in enumerate(items):
            line = lines.get(item_id)
            if line is None or item_id in seen:
                why = "is not a line of this order" if line is None else "is listed twice"
                problems.append({"field": f"items.{n}.order_item_id", "message": f"{item_id} {why}"})
            elif qty > line["quantity"]:
                problems.append({"field": f"items.{n}.quantity",
                                 "message": f"the order has {line['quantity']} of this line"})
            elif qty > line["quantity"] - line["returned"]:
                over.append({"order_item_id": item_id, "returnable": line["quantity"] - line["returned"]})
            seen.add(item_id)
        if problems:
            raise invalid(problems)
        if over:
            raise not_returnable("some of these units are already returned", "already_returned", items=over)

    @staticmethod
    def _check_restock(restock: list[tuple[str, int]], lines: dict) -> None:
        problems, seen = [], set()
        for n, (item_id, qty) in enumerate(restock):
            line = lines.get(item_id)
            if line is None or item_id in seen:
                why = "is not a line of this return" if line is None else "is listed twice"
                problems.append({"field": f"restock.{n}.order_item_id", "message": f"{item_id} {why}"})
            elif qty > line["quantity"]:
                problems.append({"field": f"restock.{n}.quantity",
                                 "message": f"the return takes back {line['quantity']} of this line"})
            seen.add(item_id)
        if problems:
            raise invalid(problems)

    @staticmethod
    async def _refundable(conn, order, pay) -> int:
        """What may still be refunded: the order's total less its refunds (failed ones aside), and never more than
        is left of the payment (which may pay for other sellers' orders too)."""
        if pay is None or pay["status"] != "succeeded":
            return 0
        of_order = order["total_minor"] - await refunds_db.owed_for_order(conn, order["id"])
        of_payment = pay["amount_minor"] - await refunds_db.owed_for_payment(conn, pay["id"])
        return max(0, min(of_order, of_payment))

    async def _lock(self, conn, return_id: str, *, seller: Principal | None = None):
        """The return, locked (after its order), once `seller` (when given) is found to be its seller or an admin:
        its buyer is told 403, anyone else 404."""
        order_id = await returns_db.order_of(conn, return_id)
        if order_id is None:
            raise not_found("return")
        await orders_db.lock_order(conn, order_id)
        ret = await returns_db.lock(conn, return_id)
        if seller is not None and not policy.owns(seller, ret["seller_user_id"]):
            if ret["user_id"] == seller.user_id:
                raise forbidden("only the seller decides on a return")
            raise not_found("return")
        return ret

    @staticmethod
    def _sees(principal: Principal, parties, own: bool) -> bool:
        if own:
            return parties["user_id"] == principal.user_id
        return policy.owns(principal, parties["seller_user_id"])

    @staticmethod
    def _kind(principal: Principal) -> str:
        return "admin" if principal.is_admin else "seller"

    @staticmethod
    async def _moved(conn, principal: Principal, return_id: str, from_status: str | None, to: str, kind: str,
                     reason: str | None, *, extra: dict | None = None, order_id: str | None = None) -> None:
        """The history row and the audit row of a change made by `principal`."""
        await returns_db.add_history(conn, return_id, from_status, to, kind, principal.user_id, reason)
        await audit.record(conn, principal.user_id, f"return.{to}", "return", return_id,
                           before={"status": from_status}, after={"status": to, **(extra or {})},
                           order_id=order_id, reason=reason)
