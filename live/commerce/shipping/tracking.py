"""Carrier tracking: verified webhook events stored once and answered at once; a `shipping.apply_tracking` job per
shipment then re-derives the shipment's state from all its events, moves the order after it, and pushes
`order:update` once committed.

The webhook (`receive`, one SYSTEM transaction for the whole delivery, shared with the deliveries that arrived while
the previous one was written: group commit, see `store`):
1. Carrier.parse_webhook verifies and reads it (forged or unreadable: DomainError, nothing stored).
2. Each event is stored once per (tracking number, status, status date) (Shippo sends no event id), with its
   shipment found by tracking number (else by the "shipment:<id>" metadata we attached), or none: an event for a
   number we do not know is stored with no shipment and answered 200.
3. For each shipment that got a new event, a `shipping.apply_tracking` job (payload: the shipment id, no dedupe
   key) is enqueued in the same transaction; the answer is `{received: true, events, stored, duplicates, unknown}`.
   No key on purpose: pgqueuer's dedupe covers queued and picked jobs alike, so a keyed enqueue while the
   shipment's job runs would be skipped and the new event missed. Several jobs for one shipment are fine: each
   replays everything stored before it became visible (its event committed with it).

The job (`apply_job`): lock the order, then the shipment (locks: payment, order, shipment, everywhere); replay the
shipment's events in status-date order from its state before any scan, an event applying only if its rank
(history.SHIPMENT_RANK) is >= the current one, so duplicates and any arrival order end the same; write the shipment
(status with a history row, last_event, shipped_at, delivered_at) and move the order forward
(history.order_status_for); a return shipment calls the returns hook instead. Safe to run twice.

A burst is bounded: at most TRACKING_WEBHOOK_CONCURRENCY transactions store deliveries at once per worker (each holds
one pooled connection and carries up to MAX_BATCH deliveries); the applies are bounded by the job workers'
concurrency."""
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
from live.jobs import Permanent, enqueue
from live.logging import get_logger
from live.notify import events as notices

if TYPE_CHECKING:
    from live.commerce.shipping import Shipping

log = get_logger("live.shipping.tracking")
JOB = "shipping.apply_tracking"
MAX_EVENTS_PER_WEBHOOK = 100  # of a longer tracking history in one delivery, the latest this many are kept
MAX_REPLAY_EVENTS = 1000  # a shipment's events replayed (the first this many by status date)
MAX_BATCH = 64  # deliveries stored in one transaction (group commit)
FIRST_DATE = datetime(2000, 1, 1, tzinfo=timezone.utc)  # a tracking event dated outside these is refused
LAST_DATE = datetime(2200, 1, 1, tzinfo=timezone.utc)


class Tracking:
    def __init__(self, shipping: Shipping):
        self.shipping = shipping
        self.db = shipping.db
        # group commit: deliveries wait here while a transaction is written, then go together in the next one
        self._pending: list[tuple[list[TrackingEvent], asyncio.Future]] = []
        self._writers: set[asyncio.Task] = set()
        self._max_writers = shipping.settings.tracking_webhook_concurrency

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
        given = len(events)
        events = [k for e in events if (k := _storable(e)) is not None]
        if given and not events:
            raise DomainError("invalid_payload", "no event has a status_date in range")
        # a stable order (date, then status and number) so two deliveries sharing events lock their keys alike
        events = sorted(events, key=lambda e: (e.status_date, e.status, e.tracking_number))[-MAX_EVENTS_PER_WEBHOOK:]
        return await self.store(events)

    async def store(self, events: list[TrackingEvent]) -> dict:
        """Store one delivery's events once each and enqueue the apply job of every shipment that got a new one, in
        one transaction (the job exists iff its events do). Deliveries that arrive while TRACKING_WEBHOOK_CONCURRENCY
        transactions are being written wait and go together, up to MAX_BATCH in one transaction (group commit: the
        transaction's fixed cost is paid once per batch); a batch that fails is written again one delivery at a
        time, so one delivery cannot fail the others."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((events, done))
        if len(self._writers) < self._max_writers:
            writer = asyncio.create_task(self._write_pending())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        return await done

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                results = await self._store_batch([events for events, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], error=exc)
                    continue
                for events, done in batch:
                    try:
                        [result] = await self._store_batch([events])
                    except Exception as one:
                        _settle(done, error=one)
                    else:
                        _settle(done, result)
                continue
            for (_, done), result in zip(batch, results):
                _settle(done, result)

    async def _store_batch(self, deliveries: list[list[TrackingEvent]]) -> list[dict]:
        counts = [{"received": True, "events": len(d), "stored": 0, "duplicates": 0, "unknown": 0}
                  for d in deliveries]
        # one order for the whole batch (date, then status and number): two transactions lock their keys alike
        events = sorted(((e, i) for i, d in enumerate(deliveries) for e in d),
                        key=lambda p: (p[0].status_date, p[0].status, p[0].tracking_number))
        to_apply: list[str] = []
        async with self.db.tx(SYSTEM) as conn:
            for event, i in events:
                # one statement: the shipment by number, and the event stored once with it
                sid, new = await shipments_db.store_event_by_number(
                    conn, provider=event.provider, carrier=event.carrier, tracking_number=event.tracking_number,
                    status=event.status, substatus=event.substatus, status_date=event.status_date,
                    details={"message": event.message, "location": event.location, "metadata": event.metadata,
                             "carrier": event.carrier})
                if sid is None and (sid := await _by_metadata(conn, event)) is not None and new:
                    await shipments_db.attach_event(conn, sid, event.tracking_number, event.status,
                                                    event.status_date)
                counts[i]["stored" if new else "duplicates"] += 1
                if sid is None:
                    counts[i]["unknown"] += 1
                    log.info("tracking_unknown_number", provider=event.provider, tracking_number=event.tracking_number)
                elif new and sid not in to_apply:
                    to_apply.append(sid)
            for sid in to_apply:
                await enqueue(conn, JOB, {"shipment_id": sid})
        return counts

    async def apply_job(self, payload: dict) -> None:
        """The `shipping.apply_tracking` job of one shipment: replay its events (safe to run twice), push after."""
        try:
            sid = str(uuid.UUID(str(payload["shipment_id"])))
        except (KeyError, TypeError, ValueError):
            raise Permanent(f"not a {JOB} payload: {payload!r}"[:300]) from None
        async with self.db.tx(SYSTEM) as conn:
            order = await shipments_db.lock_order_of(conn, sid)  # the order first, then the shipment
            ship = await shipments_db.get(conn, sid, lock=True) if order is not None else None
            if ship is None:
                return
            changed = await self.replay(conn, ship, order)
        if changed:
            await self.shipping.publish([ship["order_id"]])

    async def replay(self, conn, ship, order) -> bool:
        """Re-derive the (locked) shipment's state from its events, `order` its locked order (status); True when
        the shipment or its order changed."""
        if ship["status"] not in history.TRACKABLE:
            return False  # pending, purchasing, voiding, voided, failed: the events are kept, nothing moves
        manual = ship["provider"] == "manual"
        status, scans = ("in_transit", 1) if manual else ("label_created", 0)
        shipped_at, delivered_at, last = ship["shipped_at"] if manual else None, None, None
        if manual and ship["status"] == "delivered":  # the seller said so (no event): nothing moves it back
            status, delivered_at = "delivered", ship["delivered_at"]
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
        if target is not None and history.order_may_move(order["status"], target):
            # history.move_order without its second lock: the order is locked (and read) above
            current = order["status"]
            for step in history.order_steps(current, target):
                await orders_db.set_status(conn, [ship["order_id"]], step)
                await orders_db.add_history(conn, [ship["order_id"]], current, step, None, "carrier", why[:500])
                await notices.order_moved(conn, [ship["order_id"]], step, reason=why)  # shipped, out for delivery...
                current = step
            changed = True
        return changed


def _settle(done: asyncio.Future, result: dict | None = None, *, error: BaseException | None = None) -> None:
    if done.done():  # the delivery's request went away
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


def _storable(event: TrackingEvent) -> TrackingEvent | None:
    """The event as PostgreSQL can keep it, text without NUL bytes; None for one dated outside FIRST_DATE and
    LAST_DATE (dropped and logged: the delivery's other events still count; a delivery with none left is refused
    as invalid_payload)."""
    try:
        when = event.status_date.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        when = None
    if when is None or not FIRST_DATE <= when <= LAST_DATE:
        log.warning("tracking_event_dropped", tracking_number=event.tracking_number[:64], why="status_date range")
        return None
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
