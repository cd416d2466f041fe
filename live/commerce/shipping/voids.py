"""Voiding a label before the first carrier scan, and manual tracking (a seller who ships by themselves).

Void: only while the outbound shipment has no scan (`pending`, `purchasing`, `label_created`, `pre_transit`).
Nothing bought yet (`pending`) -> `voided` at once; else `voiding` and a `shipping.void_label` job asks the carrier
to refund the label -> `voided`, the order back to `paid` (unless it was canceled). A purchase still running when
the void is asked finishes by storing its label and queueing the void (labels.py); when its job has died (a carrier
outage longer than its retries), the void queues a new buy job, which only looks the label up. A void asked again of
a `voiding` shipment queues again the job that finishes it. Canceling an order with a label does the same by itself
(`on_order_canceled`, in the cancel's transaction).

Manual tracking: `{carrier, tracking_number}` validated against the carrier's pattern -> a `manual` shipment
(`in_transit`: the seller has handed it over) and the order `shipped`; with Shippo configured the number is
registered for its tracking webhooks by a `shipping.register_tracking` job. Tracking events are linked to shipments by
their number alone, so a number a live shipment of another order already has is refused (409 conflict)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from db import orders as orders_db
from db import shipments as shipments_db
from live.auth.principal import SYSTEM, Principal
from live.commerce.shipping import history
from live.commerce.shipping.carriers.base import CarrierError
from live.commerce.shipping.labels import BUY_JOB, LABELABLE, actor_of, label_of
from live.errors import DomainError
from live.jobs import enqueue
from live.logging import get_logger

if TYPE_CHECKING:
    from live.commerce.shipping import Shipping

log = get_logger("live.shipping.voids")
VOIDABLE = ("pending", "purchasing", "label_created", "pre_transit")  # before the first scan
VOID_JOB = "shipping.void_label"

# carriers a seller may name for manual tracking, with the shape of their tracking numbers (spaces removed,
# upper case) and their public tracking page; docs/shipping.md lists them
MANUAL_CARRIERS: dict[str, tuple[str, str | None]] = {
    "usps": (r"9[1-5]\d{18,24}|[A-Z]{2}\d{9}US", "https://tools.usps.com/go/TrackConfirmAction?tLabels={}"),
    "ups": (r"1Z[0-9A-Z]{16}", "https://www.ups.com/track?tracknum={}"),
    "fedex": (r"\d{12}|\d{15}|\d{20}|\d{22}", "https://www.fedex.com/fedextrack/?trknbr={}"),
    "dhl_express": (r"\d{10,11}|JJD\d{18,20}", "https://www.dhl.com/en/express/tracking.html?AWB={}"),
    "canada_post": (r"\d{12}|\d{16}|[A-Z]{2}\d{9}CA",
                    "https://www.canadapost-postescanada.ca/track-reperage/en#/details/{}"),
    "royal_mail": (r"[A-Z]{2}\d{9}GB", "https://www.royalmail.com/track-your-item#/tracking-results/{}"),
    "other": (r"[0-9A-Z-]{5,40}", None),
}


def check_tracking(carrier: str, tracking_number: str) -> str:
    """The tracking number normalised (spaces removed, upper case); DomainError validation_failed naming the
    field that does not fit."""
    if carrier not in MANUAL_CARRIERS:
        raise DomainError("validation_failed", "unknown carrier", details=[
            {"field": "carrier", "message": f"must be one of {', '.join(MANUAL_CARRIERS)}"}])
    number = "".join(tracking_number.split()).upper()
    if not re.fullmatch(MANUAL_CARRIERS[carrier][0], number):
        raise DomainError("validation_failed", "invalid tracking number", details=[
            {"field": "tracking_number", "message": f"is not a {carrier} tracking number"}])
    return number


class Voids:
    def __init__(self, shipping: Shipping):
        self.shipping = shipping
        self.db = shipping.db

    async def void(self, principal: Principal, order_id: str) -> dict:
        """The seller's void of the outbound label (202 with the shipment)."""
        labels = self.shipping.labels
        async with self.db.tx(SYSTEM) as conn:
            await labels._own(conn, principal, order_id)
            await orders_db.lock_order(conn, order_id)
            ship = await shipments_db.active(conn, order_id, lock=True)
            if ship is None:
                raise DomainError("conflict", "the order has no label to void")
            await self._start(conn, ship, *actor_of(principal), "voided by the seller")
            out = await shipments_db.for_order(conn, order_id, limit=history.TIMELINE)
        await self.shipping.publish([order_id])
        return next(s for s in out if s["id"] == ship["id"])

    async def on_order_canceled(self, conn, order_id: str, actor_kind: str, actor_id: str | None,
                                reason: str) -> None:
        """In the cancel's transaction (the order locked): its outbound label, if any, is voided."""
        ship = await shipments_db.active(conn, order_id, lock=True)
        if ship is not None:
            await self._start(conn, ship, actor_kind, actor_id, f"order canceled: {reason}")

    async def void_unscanned(self, conn, shipment_id: str, actor_kind: str, actor_id: str | None,
                             reason: str) -> bool:
        """In the caller's transaction (the order locked): void the shipment (a return label the buyer never used)
        if nothing scanned it; False when there is nothing to void (scanned, voided, failed, manual)."""
        ship = await shipments_db.get(conn, shipment_id, lock=True)
        if ship is None or ship["provider"] == "manual" or ship["status"] not in VOIDABLE:
            return False
        if await shipments_db.scanned(conn, ship["id"]):
            return False  # a scan is stored whose apply job has not run yet: the parcel is on its way, not void
        await self._start(conn, ship, actor_kind, actor_id, reason)
        return True

    async def _start(self, conn, ship, kind: str, actor_id: str | None, reason: str) -> None:
        if ship["provider"] == "manual":
            raise DomainError("conflict", "a manually tracked parcel has no label to void")
        if ship["status"] == "voiding":  # asked again: queue again what finishes it (a no-op while it is queued)
            await self._finish(conn, ship)
            return
        if ship["status"] not in VOIDABLE:
            raise DomainError("conflict", f"the label cannot be voided: the parcel is {ship['status']}")
        if await shipments_db.scanned(conn, ship["id"]):  # a scan stored whose apply job has not run yet
            raise DomainError("conflict", "the label cannot be voided: the carrier has scanned the parcel")
        if ship["status"] == "pending":  # nothing bought: the buy job finds it voided and stops
            await history.move_shipment(conn, ship, "voided", actor_kind=kind, actor_id=actor_id, reason=reason,
                                        voided_at=datetime.now(timezone.utc))
            return
        await history.move_shipment(conn, ship, "voiding", actor_kind=kind, actor_id=actor_id, reason=reason)
        await self._finish(conn, ship)

    @staticmethod
    async def _finish(conn, ship) -> None:
        """The job that ends a `voiding` shipment: bought, the void job asks the carrier; not yet (purchasing), the
        buy job, which then only looks the label up (found: stored and voided; none: voided). Queued by key: while
        a running buy job holds the key it is skipped, and that job ends the void itself (labels.py); after a dead
        one, this one runs."""
        if ship["tracking_number"]:
            await enqueue(conn, VOID_JOB, {"shipment_id": ship["id"]}, key=f"void:{ship['id']}")
        else:
            await enqueue(conn, BUY_JOB, {"shipment_id": ship["id"]}, key=f"label:{ship['id']}")

    async def void_job(self, payload: dict) -> None:
        sid = payload["shipment_id"]
        async with self.db.tx(SYSTEM) as conn:
            ship = await shipments_db.get(conn, sid)
        if ship is None or ship["status"] != "voiding" or not ship["tracking_number"]:
            return
        refused = None
        try:
            await self.shipping.carrier.void_label(label_of(ship))
        except CarrierError as exc:
            if exc.retryable:
                raise
            refused = exc.message
        async with self.db.tx(SYSTEM) as conn:
            await orders_db.lock_order(conn, ship["order_id"])
            ship = await shipments_db.get(conn, sid, lock=True)
            if ship["status"] != "voiding":
                return
            if refused:  # the carrier keeps the label (e.g. already scanned): it stays, with the reason
                await history.move_shipment(conn, ship, "label_created", actor_kind="carrier",
                                            reason=f"void refused: {refused}"[:500], last_error=refused[:2000])
            else:
                await history.move_shipment(conn, ship, "voided", actor_kind="carrier", reason="label voided",
                                            voided_at=datetime.now(timezone.utc))
                if ship["kind"] == "outbound":
                    order = await orders_db.lock_order(conn, ship["order_id"])
                    if order["status"] == "label_created":
                        await history.move_order(conn, ship["order_id"], "paid", actor_kind="system",
                                                 reason="label voided", force=True)
        log.info("label_void", shipment_id=sid, refused=refused)
        await self.shipping.publish([ship["order_id"]])

    # ---- manual tracking ----

    async def manual(self, principal: Principal, order_id: str, carrier: str, tracking_number: str) -> str:
        """The seller shipped by themselves: a `manual` shipment and the order `shipped`. Returns its id."""
        number = check_tracking(carrier, tracking_number)
        url = MANUAL_CARRIERS[carrier][1]
        async with self.db.tx(SYSTEM) as conn:
            await self.shipping.labels._own(conn, principal, order_id)
            order = await orders_db.lock_order(conn, order_id)
            if order["status"] not in LABELABLE:
                raise DomainError("conflict", f"a {order['status']} order cannot be marked shipped")
            if await shipments_db.tracking_taken(conn, number, order_id):
                raise DomainError("conflict", f"the tracking number {number} belongs to another order's parcel: "
                                  "check the number on the carrier's receipt")
            now = datetime.now(timezone.utc)
            sid = await shipments_db.insert(conn, order_id=order_id, kind="outbound", provider="manual",
                                            status="in_transit", carrier=carrier, tracking_number=number,
                                            tracking_url=url.format(number) if url else None, shipped_at=now)
            if sid is None:
                raise DomainError("label_exists", "the order already has a label: void it first")
            kind, actor_id = actor_of(principal)
            await shipments_db.add_history(conn, sid, None, "in_transit", actor_id, kind, "shipped by the seller")
            await history.move_order(conn, order_id, "shipped", actor_kind=kind, actor_id=actor_id,
                                     reason=f"shipped by the seller: {carrier} {number}")
            if self.shipping.carrier.name == "shippo" and carrier != "other":
                await enqueue(conn, "shipping.register_tracking", {"shipment_id": sid}, key=f"track:{sid}")
        await self.shipping.publish([order_id])
        return sid

    async def register_tracking_job(self, payload: dict) -> None:
        async with self.db.tx(SYSTEM) as conn:
            ship = await shipments_db.get(conn, payload["shipment_id"])
        if ship is None or not ship["tracking_number"]:
            return
        try:
            await self.shipping.carrier.register_tracking(ship["carrier"], ship["tracking_number"],
                                                          metadata=f"shipment:{ship['id']}")
        except CarrierError as exc:
            if exc.retryable:
                raise
            log.warning("tracking_register_refused", shipment_id=ship["id"], error=exc.message)

    async def delivered_by_seller(self, conn, order_id: str, actor: Principal) -> None:
        """The seller marks a manually tracked order delivered (no carrier will say so without Shippo); a label's
        delivery comes from the carrier. In the seller's status transaction (the order locked)."""
        ship = await shipments_db.active(conn, order_id, lock=True)
        if ship is None or ship["provider"] != "manual":
            raise DomainError("conflict", "the carrier reports this parcel's delivery")
        kind, actor_id = actor_of(actor)
        await history.move_shipment(conn, ship, "delivered", actor_kind=kind, actor_id=actor_id,
                                    reason="delivered (the seller says)", delivered_at=datetime.now(timezone.utc))
