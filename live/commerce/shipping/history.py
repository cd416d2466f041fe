"""The one writer of shipment and order status changes after payment: each change is a history row (from, to,
actor kind and id, reason) in the caller's transaction, and none moves backwards.

Shipment ranks (docs/shipping.md): a tracking status applies only when its rank is >= the shipment's current
rank, events replayed in status-date order, so any arrival order ends in the same state. Order ranks: a
carrier-driven order status moves only forward (or sideways between failure and a new delivery attempt)."""
from __future__ import annotations

from db import orders as orders_db
from db import shipments as shipments_db
from live.notify import events as notices

TIMELINE = 50  # of a shipment's tracking events and status history, the latest this many are shown

# shipment statuses a tracking event can set, by rank (label_created and the purchase states are 0)
SHIPMENT_RANK = {"label_created": 0, "pre_transit": 1, "in_transit": 2, "out_for_delivery": 3, "failure": 3,
                 "delivered": 4, "returned": 4}
# the carrier's tracking status (carriers.base.TRACKING_STATUSES) -> the shipment status it sets
FROM_TRACKING = {"pre_transit": "pre_transit", "transit": "in_transit", "out_for_delivery": "out_for_delivery",
                 "delivered": "delivered", "failure": "failure", "returned": "returned"}  # 'unknown': nothing
TRACKABLE = frozenset(SHIPMENT_RANK)  # a shipment in one of these takes tracking events (not pending, voided, ...)

# order statuses after payment, by rank
ORDER_RANK = {"paid": 0, "processing": 0, "label_created": 1, "shipped": 2, "in_transit": 3, "out_for_delivery": 4,
              "delivery_failed": 4, "delivered": 5, "returned_to_sender": 5}
# the order statuses a carrier may still move (canceled and refunded orders are left alone)
CARRIER_MOVABLE = frozenset(ORDER_RANK)
ORDER_STATUSES = ("pending_payment", "paid", "processing", "label_created", "shipped", "in_transit",
                  "out_for_delivery", "delivered", "delivery_failed", "returned_to_sender", "canceled", "refunded")
SHIPMENT_STATUSES = ("pending", "purchasing", "purchase_failed", "label_created", "pre_transit", "in_transit",
                     "out_for_delivery", "delivered", "failure", "returned", "voiding", "voided")


def order_status_for(shipment_status: str, scans: int) -> str | None:
    """The order status an outbound shipment's tracking state means; `scans`: transit events applied (the first
    is `shipped`, a later one `in_transit`). None: the shipment says nothing new about the order."""
    if shipment_status == "in_transit":
        return "shipped" if scans <= 1 else "in_transit"
    return {"out_for_delivery": "out_for_delivery", "delivered": "delivered", "failure": "delivery_failed",
            "returned": "returned_to_sender"}.get(shipment_status)


def order_steps(current: str, to: str) -> list[str]:
    """The statuses an order moved by the carrier passes through from `current` to `to`: `to`, preceded by
    `shipped` when the order had not shipped yet (its first scans were applied together, so the carrier's
    `shipped` never came alone): the order's history, and what its buyer is told, always has the shipping."""
    shipped = ORDER_RANK["shipped"]
    if ORDER_RANK.get(current, shipped) < shipped < ORDER_RANK.get(to, 0):
        return ["shipped", to]
    return [to]


def order_may_move(current: str, to: str) -> bool:
    """Forward only; sideways within a rank (a failed delivery attempt and the next one, delivered/returned)."""
    if current == to or current not in CARRIER_MOVABLE or to not in ORDER_RANK:
        return False
    return ORDER_RANK[to] >= ORDER_RANK[current]


async def move_shipment(conn, shipment: dict, to: str, *, actor_kind: str, actor_id: str | None = None,
                        reason: str | None = None, **fields) -> bool:
    """Set the shipment's status (and other columns) with its history row; False (nothing written) when it is
    already there and no other column changes."""
    if shipment["status"] == to and not fields:
        return False
    await shipments_db.update(conn, shipment["id"], status=to, **fields)
    if shipment["status"] != to:
        await shipments_db.add_history(conn, shipment["id"], shipment["status"], to, actor_id, actor_kind, reason)
    return True


async def move_order(conn, order_id: str, to: str, *, actor_kind: str, actor_id: str | None = None,
                     reason: str | None = None, force: bool = False) -> str | None:
    """Move the order (locked here) to `to` when that is forward (force: a move the caller has checked, e.g. back
    to paid after a void); returns the status it moved from, None when it did not move."""
    order = await orders_db.lock_order(conn, order_id)
    if order is None:
        return None
    current = order["status"]
    if current == to or not (force or order_may_move(current, to)):
        return None
    await orders_db.set_status(conn, [order_id], to)
    await orders_db.add_history(conn, [order_id], current, to, actor_id, actor_kind, reason)
    await notices.order_moved(conn, [order_id], to, reason=reason)  # label created, shipped (manual), ...
    return current
