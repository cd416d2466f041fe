"""The sandbox carrier's timeline driver: when a sandbox label is created, one `sandbox_carrier.advance` job per step
of its timeline is enqueued in the label's transaction (step i runs SANDBOX_CARRIER_PACE_SECONDS x (i + 1) after
it). Each job builds its event (SandboxCarrier.timeline), signs it like the carrier does, and hands it to the
same verification and receive path as `POST /webhooks/sandbox-carrier` (in process, like the sandbox payment's
refund webhooks: stored, then applied by its `shipping.apply_tracking` job), so `make run` shows a parcel go from
label to `delivered` with no account anywhere."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from db import shipments as shipments_db
from live.auth.principal import SYSTEM
from live.commerce.shipping.carriers import Address, Label, sandbox_for
from live.jobs import enqueue
from live.logging import get_logger

if TYPE_CHECKING:
    from live.commerce.shipping import Shipping

log = get_logger("live.shipping.sandbox")
JOB = "sandbox_carrier.advance"
STOPPED = ("voiding", "voided", "purchase_failed")  # a timeline goes no further for these


class SandboxRun:
    def __init__(self, shipping: Shipping):
        self.shipping = shipping
        self.sandbox = sandbox_for(shipping.settings)  # signs and verifies, whichever carrier buys labels

    async def start(self, conn, shipment_id: str, label: Label) -> None:
        """In the label's transaction: the timeline's jobs (nothing for another carrier's label)."""
        if self.shipping.carrier.name != "sandbox" or not label.tracking_number.startswith("SBX"):
            return
        start = datetime.now(timezone.utc)
        pace = self.sandbox.pace_seconds
        for step in range(len(self.sandbox.timeline(label, start))):
            await enqueue(conn, JOB, {"shipment_id": shipment_id, "step": step, "start": start.isoformat()},
                          key=f"sandbox:{shipment_id}:{step}", delay=pace * (step + 1))

    async def advance_job(self, payload: dict) -> None:
        sid, step = payload["shipment_id"], int(payload["step"])
        async with self.shipping.db.tx(SYSTEM) as conn:
            ship = await shipments_db.get(conn, sid)
        if ship is None or ship["status"] in STOPPED or not ship["tracking_number"]:
            return
        label = Label(provider_ref=ship["provider_ref"] or "", carrier="sandbox",
                      tracking_number=ship["tracking_number"], label_url=None, tracking_url=None)
        events = self.sandbox.timeline(label, datetime.fromisoformat(payload["start"]),
                                       from_=Address.of(ship["from_address"] or {}),
                                       to=Address.of(ship["to_address"] or {}))
        if step >= len(events):
            return
        body = self.sandbox.event_body(events[step])
        result = await self.shipping.tracking.receive("sandbox", body, self.sandbox.sign(body), {})
        log.info("sandbox_carrier_event", shipment_id=sid, step=step, status=events[step].status, result=result)
