"""The domain events told as notifications: each function is called by the commerce code in the transaction that
makes the change, reads what the notice says (db/notifications.py) and calls `notify` with a key that names the
event, so the event replayed (a webhook delivered twice, a job run twice) adds nothing.

- `order_moved`: an order's status changed (the one move of orders.py and checkout's nothing-to-pay path, and the
  shipping moves): paid -> `order.confirmed` to the buyer and `seller.new_order` to the seller; canceled ->
  `order.canceled` (or `order.payment_failed` when the payment failed); refunded, label_created, shipped,
  out_for_delivery, delivered -> the `order.*` kind of that name. Key `<kind>:<order id>:<n>`, n the times the order
  has reached that status (a second label after a void is a new event). The carrier's moves always pass through
  `shipped` (live/commerce/shipping/history.py `order_steps`), so every shipped order is told shipped.
- `refunds_settled`: the provider settled refunds of canceled orders -> `order.refunded`, key per refund.
- `label_failed`: the carrier refused a label purchase -> `seller.label_failed`, key per shipment.
- `return_approved`, `return_refunded` -> the buyer; key per return.
- `payment_flagged`: a payment or refund set aside for a human -> `seller.needs_attention` to the sellers of its
  orders; key per payment, issue and cause.
- `seller.stock_low` is written by the database itself (trigger `product_variants_stock_low`, migration 0024),
  since stock changes in many statements, some of them SQL functions.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import asyncpg

from db import notifications as notifications_db
from live.notify.notices import notify

# an order status -> the kinds it is told as (buyer first)
STATUS_KINDS: dict[str, tuple[str, ...]] = {
    "paid": ("order.confirmed", "seller.new_order"),
    "canceled": ("order.canceled",),
    "refunded": ("order.refunded",),
    "label_created": ("order.label_created",),
    "shipped": ("order.shipped",),
    "out_for_delivery": ("order.out_for_delivery",),
    "delivered": ("order.delivered",),
}
SHIPPING_KINDS = frozenset({"order.label_created", "order.shipped", "order.out_for_delivery", "order.delivered"})
MAX_REASON = 500  # characters of a reason or an error told in a notice


def _short(text: str | None) -> str:
    return (text or "")[:MAX_REASON]


async def order_moved(conn: asyncpg.Connection, order_ids: Sequence[str], to: str, *, reason: str | None = None,
                      payment_failed: bool = False) -> int:
    """`order_ids` have just moved to `to` (in `conn`'s transaction, after the status history row): tell the
    buyer (and, for paid, the seller). `payment_failed`: a cancel because the payment failed. The new rows."""
    kinds = ("order.payment_failed",) if payment_failed and to == "canceled" else STATUS_KINDS.get(to, ())
    if not kinds or not order_ids:
        return 0
    added = 0
    for o in await notifications_db.order_facts(conn, order_ids, to):
        if to == "paid" and o["seq"] > 1:
            continue  # back to paid after its label was voided: not a new payment
        base = {"order_id": o["order_id"], "number": o["number"]}
        for kind in kinds:
            if kind in ("order.confirmed", "seller.new_order"):
                data = {**base, "total_minor": o["total_minor"], "currency": o["currency"]}
                if kind == "seller.new_order":
                    data["buyer_name"] = o["buyer_name"]
            elif kind == "order.refunded":
                data = {**base, "amount_minor": o["total_minor"], "currency": o["currency"]}
            elif kind in SHIPPING_KINDS:
                data = {**base, "carrier": o["carrier"], "tracking_number": o["tracking_number"],
                        "tracking_url": o["tracking_url"]}
            else:  # canceled, payment_failed
                data = {**base, "reason": _short(reason)}
            user = o["seller_user_id"] if kind.startswith("seller.") else o["buyer_id"]
            added += await notify(conn, kind, [user], data, f"{kind}:{o['order_id']}:{o['seq']}")
    return added


async def refunds_settled(conn: asyncpg.Connection, payment_id: str) -> int:
    """After refunds of the payment were settled: `order.refunded` for each settled refund of a canceled order
    (those told before add nothing)."""
    added = 0
    for r in await notifications_db.settled_refunds(conn, payment_id):
        data = {"order_id": r["order_id"], "number": r["number"], "amount_minor": r["amount_minor"],
                "currency": r["currency"]}
        added += await notify(conn, "order.refunded", [r["buyer_id"]], data, f"order.refunded:{r['refund_id']}")
    return added


async def label_failed(conn: asyncpg.Connection, shipment_id: str, error: str) -> int:
    """The carrier refused the label of an outbound shipment for good: the seller is told why."""
    s = await notifications_db.shipment_order(conn, shipment_id)
    if s is None or s["kind"] != "outbound":
        return 0
    data = {"order_id": s["order_id"], "number": s["number"], "error": _short(error)}
    return await notify(conn, "seller.label_failed", [s["seller_user_id"]], data,
                        f"seller.label_failed:{shipment_id}")


async def return_approved(conn: asyncpg.Connection, return_id: str) -> int:
    r = await notifications_db.return_facts(conn, return_id)
    if r is None:
        return 0
    data = {"order_id": r["order_id"], "number": r["number"], "return_id": return_id}
    return await notify(conn, "return.approved", [r["buyer_id"]], data, f"return.approved:{return_id}")


async def return_refunded(conn: asyncpg.Connection, return_id: str) -> int:
    """The return was received and its refund issued (recorded with its refund.send job)."""
    r = await notifications_db.return_facts(conn, return_id)
    if r is None or not r["refund_minor"]:
        return 0
    data = {"order_id": r["order_id"], "number": r["number"], "return_id": return_id,
            "amount_minor": r["refund_minor"], "currency": r["currency"]}
    return await notify(conn, "return.refunded", [r["buyer_id"]], data, f"return.refunded:{return_id}")


async def payment_flagged(conn: asyncpg.Connection, payment_id: str, issue: str, cause: str) -> int:
    """A payment (or one of its refunds) was flagged `issue` for a human; `cause` names what flagged it (the
    provider event's key, the refund's id), so a replay of the same cause adds nothing."""
    digest = hashlib.sha256(cause.encode()).hexdigest()[:16]
    by_seller: dict[str, list] = {}
    for r in await notifications_db.payment_sellers(conn, payment_id):
        by_seller.setdefault(r["seller_user_id"], []).append(r)
    added = 0
    for seller, rows in sorted(by_seller.items()):  # each seller hears only of their own orders
        data = {"payment_id": payment_id, "issue": issue, "order_ids": [r["order_id"] for r in rows],
                "numbers": [r["number"] for r in rows]}
        added += await notify(conn, "seller.needs_attention", [seller], data,
                              f"seller.needs_attention:{payment_id}:{issue}:{digest}:{seller}")
    return added
