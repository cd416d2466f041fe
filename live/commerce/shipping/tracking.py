"""Carrier tracking: verified webhook events stored once, then the shipment's state re-derived from all its events
and the order moved after it, pushed as `order:update` once committed.

For each event (Carrier.parse_webhook has verified and read it):
1. Find the shipment by tracking number (else by the "shipment:<id>" metadata we attached); lock its order, then
   the shipment (locks: payment, order, shipment, everywhere), so concurrent deliveries of one parcel's events
   apply one after the other.
2. Store the event once per (tracking number, status, status date) (Shippo sends no event id); an event for a
   number we do not know is stored with no shipment and answered 200.
3. Replay the shipment's events in status-date order from its state before any scan; an event applies only if its
   rank (history.SHIPMENT_RANK) is >= the current one, so duplicates and any arrival order end the same.
4. Write the shipment (status with a history row, last_event, shipped_at, delivered_at) and move the order forward
   (history.order_status_for); a return shipment calls the returns hook instead of moving the order.

A burst is bounded: at most TRACKING_WEBHOOK_CONCURRENCY deliveries apply at once (each holds one pooled
connection), the others wait their turn."""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from db import orders as orders_db
from db import shipments as shipments_db
from live.auth.principal import SYSTEM
from live.commerce.shipping import history
from live.commerce.shipping.carriers.base import TrackingEvent, WebhookRejected
from live.errors import DomainError
from live.logging import get_logger

if TYPE_CHECKING:
    from live.commerce.shipping import Shipping

log = get_logger("live.shipping.tracking")
MAX_EVENTS_PER_WEBHOOK = 100  # of a longer tracking history in one delivery, the latest this many are kept
MAX_REPLAY_EVENTS = 1000  # a shipment's events replayed (the first this many by status date)
FIRST_DATE = datetime(2000, 1, 1, tzinfo=timezone.utc)  # a tracking event dated outside these is refused
LAST_DATE = datetime(2200, 1, 1, tzinfo=timezone.utc)


class Tracking:
    def __init__(self, shipping: Shipping):
        self.shipping = shipping
        self.db = shipping.db
        self._slots = asyncio.Semaphore(shipping.settings.tracking_webhook_concurrency)

    def _carrier(self, provider: str):
        if provider == "sandbox":
            return self.shipping.sandbox_run.sandbox
        if provider == "shippo" and self.shipping.carrier.name == "shippo":
            return self.shipping.carrier
        raise DomainError("not_found", f"no {provider} webhooks on this server (SHIPPO_API_KEY is not set)")

    async def receive(self, provider: str, body: bytes, headers, query) -> dict:
        """A carrier webhook: verified (forged: DomainError 401/400, nothing stored), stored, applied. Returns
        {received, stored, unknown}."""
        carrier = self._carrier(provider)
        try:
            events = carrier.parse_webhook(body, headers, query)
        except WebhookRejected as exc:
            log.warning("tracking_webhook_rejected", provider=provider, code=exc.code, error=exc.message)
            if exc.code != "invalid_signature":
                raise DomainError("invalid_payload", exc.message) from None
            if provider == "shippo":  # a wrong ?token= is a wrong credential
                raise DomainError("unauthorized", exc.message) from None
            raise DomainError("invalid_signature", exc.message) from None
        events = sorted((_storable(e) for e in events), key=lambda e: e.status_date)[-MAX_EVENTS_PER_WEBHOOK:]
        async with self._slots:
            return await self.apply(events)

    async def apply(self, events: list[TrackingEvent]) -> dict:
        stored = unknown = 0
        moved: list[str] = []
        for event in events:
            new, order_id, known = await self._one(event)
            stored += new
            unknown += not known
            if order_id and order_id not in moved:
                moved.append(order_id)
        if moved:
            await self.shipping.publish(moved)
        return {"received": len(events), "stored": stored, "unknown": unknown}

    async def _one(self, event: TrackingEvent) -> tuple[bool, str | None, bool]:
        """(stored as new, the order to push, known shipment)."""
        details = {"message": event.message, "location": event.location, "metadata": event.metadata,
                   "carrier": event.carrier}
        async with self.db.tx(SYSTEM) as conn:
            sid = await shipments_db.by_tracking(conn, event.tracking_number) or await _by_metadata(conn, event)
            ship = None
            if sid is not None:
                first = await shipments_db.get(conn, sid)
                await orders_db.lock_order(conn, first["order_id"])
                ship = await shipments_db.get(conn, sid, lock=True)
            new = await shipments_db.store_event(
                conn, shipment_id=sid, provider=event.provider, carrier=event.carrier,
                tracking_number=event.tracking_number, status=event.status, substatus=event.substatus,
                status_date=event.status_date, details=details)
            if ship is None:
                log.info("tracking_unknown_number", provider=event.provider, tracking_number=event.tracking_number)
                return new, None, False
            if not new:
                return False, None, True  # a duplicate: the state already includes it
            changed = await self.replay(conn, ship)
        return True, ship["order_id"] if changed else None, True

    async def replay(self, conn, ship) -> bool:
        """Re-derive the (locked) shipment's state from its events; True when the shipment or its order changed."""
        if ship["status"] not in history.TRACKABLE:
            return False  # pending, purchasing, voiding, voided, failed: the events are kept, nothing moves
        manual = ship["provider"] == "manual"
        status, scans = ("in_transit", 1) if manual else ("label_created", 0)
        shipped_at, delivered_at, last = ship["shipped_at"] if manual else None, None, None
        applied, skipped = [], []
        for ev in await shipments_db.events(conn, ship["id"], MAX_REPLAY_EVENTS):
            to = history.FROM_TRACKING.get(ev["status"])
            if to is None or history.SHIPMENT_RANK[to] < history.SHIPMENT_RANK[status]:
                skipped.append(ev["id"])
                continue
            applied.append(ev["id"])
            if to == "in_transit":
                scans += 1
                shipped_at = shipped_at or ev["status_date"]
            if to == "delivered" and delivered_at is None:
                delivered_at = ev["status_date"]
            status, last = to, ev
        await shipments_db.set_applied(conn, applied, skipped)
        if last is None:
            return False
        last_event = {"status": last["status"], "substatus": last["substatus"],
                      "status_date": last["status_date"].isoformat(), **(last["details"] or {})}
        fields = {}
        for key, value in (("last_event", last_event), ("shipped_at", shipped_at), ("delivered_at", delivered_at)):
            if ship[key] != value:
                fields[key] = value
        why = f"{last['details'].get('carrier') or ship['carrier']}: {last['status']}" + (
            f" ({last['details']['message']})" if last["details"].get("message") else "")
        changed = await history.move_shipment(conn, ship, status, actor_kind="carrier", reason=why[:500], **fields)
        if ship["kind"] == "return":
            if status != ship["status"]:
                await self.shipping.returns.on_shipment(conn, await shipments_db.get(conn, ship["id"]), status)
            return changed
        target = history.order_status_for(status, scans)
        if target is not None:
            changed |= await history.move_order(conn, ship["order_id"], target, actor_kind="carrier",
                                                reason=why[:500]) is not None
        return changed


def _storable(event: TrackingEvent) -> TrackingEvent:
    """The event as PostgreSQL can keep it: a status date between FIRST_DATE and LAST_DATE (else the whole delivery
    is refused as invalid_payload before anything is stored), text without NUL bytes."""
    try:
        when = event.status_date.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        when = None
    if when is None or not FIRST_DATE <= when <= LAST_DATE:
        raise DomainError("invalid_payload", "status_date is out of range")
    clean = {f: getattr(event, f).replace("\x00", "") for f in ("tracking_number", "carrier", "substatus", "message",
                                                                "location", "metadata")
             if isinstance(getattr(event, f), str) and "\x00" in getattr(event, f)}
    return replace(event, **clean) if clean else event


async def _by_metadata(conn, event: TrackingEvent) -> str | None:
    """Our shipment named by the "shipment:<uuid>" metadata (a registered manual number the carrier spells
    differently), only when its tracking number matches once normalised."""
    meta = event.metadata or ""
    if not meta.startswith("shipment:"):
        return None
    try:
        sid = str(uuid.UUID(meta.removeprefix("shipment:")))
    except ValueError:
        return None
    ship = await shipments_db.get(conn, sid)
    if ship is None or _norm(ship["tracking_number"]) != _norm(event.tracking_number):
        return None
    return sid


def _norm(number: str | None) -> str:
    return "".join((number or "").split()).upper()
