"""Labels: a seller's purchase (or the auto-purchase on payment) makes a `pending` shipment and a
`shipping.buy_label` job in one transaction; the job buys the label from the carrier, never twice.

Never two labels for one shipment (docs/shipping.md, Labels): the job marks the shipment `purchasing` in its own
committed transaction before any provider call, the call carries "shipment:<id>" in the provider's metadata, and
every run asks the carrier for a label already bought for this shipment and rate (`find_label`) before buying. A
re-quoted rate is stored on the shipment before it is bought from, so a retry looks it up with the same rate.
Voids and manual tracking: live/commerce/shipping/voids.py."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from db import orders as orders_db
from db import shipments as shipments_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.commerce.shipping import history
from live.commerce.shipping.carriers.base import Address, CarrierError, Label, Parcel, Rate
from live.commerce.shipping.tracking import JOB as TRACKING_JOB
from live.errors import DomainError, forbidden, not_found
from live.jobs import enqueue
from live.logging import get_logger
from live.notify import events as notices

if TYPE_CHECKING:
    from live.commerce.shipping import Shipping

log = get_logger("live.shipping.labels")
LABELABLE = ("paid", "processing")  # order statuses a seller may buy an outbound label for
BUY_JOB = "shipping.buy_label"
DONE = ("label_created", "pre_transit", "in_transit", "out_for_delivery", "delivered", "failure", "returned")


def label_of(ship) -> Label:
    return Label(provider_ref=ship["provider_ref"] or "", carrier=ship["carrier"] or "",
                 tracking_number=ship["tracking_number"] or "", label_url=ship["label_url"],
                 tracking_url=ship["tracking_url"])


def parcel_of(d: dict) -> Parcel:
    return Parcel(int(d["weight_g"]), float(d["length_cm"]), float(d["width_cm"]), float(d["height_cm"]))


def _stale(rate: dict) -> bool:
    exp = rate.get("expires_at")
    if isinstance(exp, str):
        exp = datetime.fromisoformat(exp)
    return exp is not None and exp <= datetime.now(timezone.utc)


class Labels:
    def __init__(self, shipping: Shipping):
        self.shipping = shipping
        self.db = shipping.db

    @property
    def carrier(self):
        return self.shipping.carrier

    # ---- creating shipments ----

    async def create(self, conn, *, order_id: str, kind: str = "outbound", from_address: dict, to_address: dict,
                     parcel: dict, rate: dict | None, actor: Principal | None,
                     reason: str | None = None) -> str:
        """A `pending` shipment and its buy job, in the caller's transaction (the returns flow's entry point).
        rate None: the job quotes and takes the cheapest. DomainError label_exists when the order already has a
        live shipment of this kind."""
        if rate is None:  # quoted by the job, in the order's currency
            rate = {"currency": await shipments_db.order_currency(conn, order_id)}
        sid = await shipments_db.insert(
            conn, order_id=order_id, kind=kind, provider=self.carrier.name, status="pending",
            carrier=(rate or {}).get("carrier"), service=(rate or {}).get("service"), rate=rate,
            from_address=from_address, to_address=to_address, parcel=parcel)
        if sid is None:
            raise DomainError("label_exists", f"the order already has a {kind} label")
        actor_kind, actor_id = actor_of(actor)
        await shipments_db.add_history(conn, sid, None, "pending", actor_id, actor_kind, reason or "label requested")
        await enqueue(conn, BUY_JOB, {"shipment_id": sid}, key=f"label:{sid}")
        return sid

    async def _outbound(self, conn, info, rate: dict | None, actor: Principal | None, reason: str) -> str:
        if not info["ship_from"]:
            raise DomainError("conflict", "set your ship-from address first (PUT /api/v1/seller/shipping)")
        if not info["shipping_address"]:
            raise DomainError("conflict", "the order has no shipping address")
        parcel = (info["shipping_rate"] or {}).get("parcel") or info["default_parcel"]
        return await self.create(conn, order_id=info["id"], from_address=info["ship_from"],
                                 to_address=info["shipping_address"], parcel=parcel, rate=rate, actor=actor,
                                 reason=reason)

    async def buy(self, principal: Principal, order_id: str, *, service: str | None = None,
                  rate_id: str | None = None) -> dict:
        """The seller's purchase: 202 with the `pending` shipment; the job does the rest."""
        async with self.db.tx(SYSTEM) as conn:
            info = await self._own(conn, principal, order_id)
            order = await orders_db.lock_order(conn, order_id)
            if order["status"] not in LABELABLE:
                raise DomainError("conflict", f"a {order['status']} order gets no label")
            rate = await self._chosen_rate(conn, info, service, rate_id)
            sid = await self._outbound(conn, info, rate, principal, "label bought by the seller")
            out = await shipments_db.for_order(conn, order_id, limit=history.TIMELINE)
        return next(s for s in out if s["id"] == sid)

    async def _chosen_rate(self, conn, info, service: str | None, rate_id: str | None) -> dict | None:
        chosen = info["shipping_rate"]
        if rate_id:
            row = await shipments_db.quoted_rate(conn, rate_id, seller_id=info["seller_id"], user_id=info["user_id"])
            if row is None:
                raise not_found("rate")
            return row
        if service and (chosen or {}).get("service") != service:
            return {"service": service, "currency": info["currency"]}  # quoted by the job for this service
        if chosen:
            # the label is bought at what the carrier charges (the buyer may have paid less: free shipping)
            return {**chosen, "amount_minor": chosen.get("carrier_amount_minor", chosen.get("amount_minor"))}
        return None

    async def _own(self, conn, principal: Principal, order_id: str):
        info = await shipments_db.order_for_label(conn, order_id)
        if info is None:
            raise not_found("order")
        if not policy.owns(principal, info["seller_user_id"]):
            if info["user_id"] == principal.user_id:
                raise forbidden("only the seller ships an order")
            raise not_found("order")
        return info

    # ---- reading ----

    async def detail(self, principal: Principal, shipment_id: str) -> dict:
        """A shipment as its buyer, its seller or an admin sees it (row-level security)."""
        async with self.db.tx(principal) as conn:
            out = await shipments_db.detail(conn, shipment_id, limit=history.TIMELINE)
        if out is None:
            raise not_found("shipment")
        return out

    async def label_file(self, principal: Principal, shipment_id: str) -> tuple[str, str | bytes]:
        """("pdf", bytes) for a sandbox label, ("redirect", url) for a carrier's: the seller and admins print an
        outbound label, and the order's buyer too a return label (they send the parcel back)."""
        async with self.db.tx(SYSTEM) as conn:
            ship = await shipments_db.label_parties(conn, shipment_id)
        buyer = ship is not None and principal.user_id is not None and principal.user_id == ship["user_id"]
        if ship is None or not (policy.owns(principal, ship["seller_user_id"]) or buyer):
            raise not_found("shipment")
        if not policy.owns(principal, ship["seller_user_id"]) and ship["kind"] != "return":
            raise forbidden("only the seller prints the label")
        if not ship["tracking_number"] or ship["provider"] == "manual" or ship["status"] in ("voiding", "voided"):
            raise DomainError("conflict", f"no label to print: the shipment is {ship['status']}")
        if ship["label_url"]:
            return "redirect", ship["label_url"]
        from live.commerce.shipping.carriers.label_pdf import render_label

        # ~15 ms of CPU: in a thread, so the event loop serves the other clients meanwhile
        return "pdf", await asyncio.to_thread(
            render_label, label_of(ship), from_=Address.of(ship["from_address"]), to=Address.of(ship["to_address"]),
            parcel=parcel_of(ship["parcel"]), service=ship["service"] or "", order_number=ship["order_number"])

    async def on_paid(self, conn, order_ids: list[str]) -> None:
        """In the payment's transaction: a label job for each newly paid order whose seller buys labels on payment
        (and has a ship-from address)."""
        for order_id in await shipments_db.auto_purchase_orders(conn, order_ids):
            info = await shipments_db.order_for_label(conn, order_id)
            if not info["ship_from"] or not info["shipping_address"]:
                log.warning("auto_label_skipped", order_id=order_id, why="no ship-from or shipping address")
                continue
            try:
                await self._outbound(conn, info, await self._chosen_rate(conn, info, None, None), None,
                                     "auto-purchase on payment")
            except DomainError as exc:
                log.warning("auto_label_skipped", order_id=order_id, why=exc.message)

    # ---- the job ----

    async def buy_job(self, payload: dict) -> None:
        sid = payload["shipment_id"]
        async with self.db.tx(SYSTEM) as conn:
            ship = await self._lock(conn, sid)
            if ship is None or ship["status"] in DONE + ("purchase_failed", "voided"):
                return  # already done (a second run), failed for good, or voided
            if ship["status"] == "voiding" and ship["tracking_number"]:
                return  # the void job has what it needs
            canceled = ship["status"] == "voiding"  # canceled while the purchase ran: find, never buy
            if ship["status"] == "pending":
                await history.move_shipment(conn, ship, "purchasing", actor_kind="system", reason="buying the label")
        try:
            bought = await self._purchase(ship, canceled)
        except CarrierError as exc:
            if exc.retryable:
                raise  # the job retries (with backoff); find_label first on the next run
            return await self._failed(sid, exc.message)
        if bought is None:
            return await self._nothing_bought(sid)
        await self._store(sid, *bought)

    async def _purchase(self, ship, canceled: bool) -> tuple[Rate, Label] | None:
        """The label bought for this shipment before (find_label), else bought now; None when the order was
        canceled and nothing had been bought."""
        sid = ship["id"]
        stored = ship["rate"] or {}
        looked = bool(stored.get("provider") == self.carrier.name and stored.get("provider_rate_id"))
        if looked:
            # a run before this one may have bought from the stored rate and lost the answer: look under that rate
            # first, even if it has expired since (a fresh quote would look under another rate and buy again)
            label = await self.carrier.find_label(Rate.of(stored), shipment_id=sid)
            if label is not None:
                return Rate.of(stored), label
        if canceled:  # every purchase is made from the stored rate (a re-quote is stored first): nothing bought
            return None
        rate, requoted = await self._rate_for(ship), False
        same = looked and rate.provider_rate_id == stored.get("provider_rate_id")  # already looked under it
        label = None if same else await self.carrier.find_label(rate, shipment_id=sid)
        while label is None:
            try:
                label = await self.carrier.buy_label(rate, shipment_id=sid, from_=Address.of(ship["from_address"]),
                                                     to=Address.of(ship["to_address"]),
                                                     parcel=parcel_of(ship["parcel"]))
            except CarrierError as exc:
                if exc.retryable or requoted:
                    raise
                # a refusal may be a stale rate: quote the same service again once (stored first, see above)
                log.info("label_requote", shipment_id=sid, error=exc.message)
                rate, requoted = await self._requote(ship, force=True), True
                label = await self.carrier.find_label(rate, shipment_id=sid)
        return rate, label

    async def _lock(self, conn, sid: str):
        """The shipment, locked after its order (locks: payment, order, shipment, everywhere)."""
        ship = await shipments_db.get(conn, sid)
        if ship is None:
            return None
        await orders_db.lock_order(conn, ship["order_id"])
        return await shipments_db.get(conn, sid, lock=True)

    async def _rate_for(self, ship) -> Rate:
        rate = ship["rate"] or {}
        usable = (rate.get("provider") == self.carrier.name and rate.get("provider_rate_id")
                  and rate.get("amount_minor") is not None and not _stale(rate))
        return Rate.of(rate) if usable else await self._requote(ship)

    async def _requote(self, ship, *, force: bool = False) -> Rate:
        """A fresh rate for the shipment's service (any service when none was chosen: the cheapest), stored on the
        shipment before it is used."""
        want = (ship["rate"] or {}).get("service")
        currency = (ship["rate"] or {}).get("currency") or "USD"
        rates = await self.carrier.rates(Address.of(ship["from_address"]), Address.of(ship["to_address"]),
                                         parcel_of(ship["parcel"]), currency)
        fitting = [r for r in rates if want is None or r.service == want]
        if not fitting:
            raise CarrierError(f"the carrier offers no {want or 'service'} for this parcel", retryable=False)
        rate = min(fitting, key=lambda r: r.amount_minor)
        async with self.db.tx(SYSTEM) as conn:
            await shipments_db.update(conn, ship["id"], rate=rate.as_dict(), carrier=rate.carrier,
                                      service=rate.service, rate_minor=rate.amount_minor, currency=rate.currency)
        log.info("label_rate_quoted", shipment_id=ship["id"], service=rate.service, forced=force)
        return rate

    async def _store(self, sid: str, rate: Rate, label: Label) -> None:
        order_id = None
        async with self.db.tx(SYSTEM) as conn:
            ship = await self._lock(conn, sid)
            fields = dict(tracking_number=label.tracking_number, provider_ref=label.provider_ref,
                          label_url=label.label_url, tracking_url=label.tracking_url, carrier=label.carrier,
                          service=rate.service, purchased_at=datetime.now(timezone.utc))
            if ship["status"] == "purchasing":
                eta = (datetime.now(timezone.utc) + timedelta(days=rate.estimated_days)
                       if rate.estimated_days is not None else None)
                await history.move_shipment(conn, ship, "label_created", actor_kind="system", reason="label bought",
                                            eta=eta, last_error=None, **fields)
                if ship["kind"] == "outbound":
                    await history.move_order(conn, ship["order_id"], "label_created", actor_kind="system",
                                             reason=f"label bought: {label.carrier} {label.tracking_number}")
                await self.shipping.sandbox_run.start(conn, sid, label)
                # the carrier may have reported the parcel before we knew its number (a late purchase answer)
                if await shipments_db.link_events(conn, sid, label.tracking_number):
                    await enqueue(conn, TRACKING_JOB, {"shipment_id": sid})
                order_id = ship["order_id"]
            elif ship["status"] == "voiding" and not ship["tracking_number"]:
                await shipments_db.update(conn, sid, **fields)  # bought while being canceled: void it now
                await enqueue(conn, "shipping.void_label", {"shipment_id": sid}, key=f"void:{sid}")
        log.info("label_bought", shipment_id=sid, tracking_number=label.tracking_number, provider=self.carrier.name)
        if order_id:
            await self.shipping.publish([order_id])

    async def _failed(self, sid: str, error: str) -> None:
        """The provider refused the purchase: the shipment is purchase_failed with the reason, the order stays
        paid, and the seller sees why (order:update)."""
        async with self.db.tx(SYSTEM) as conn:
            ship = await self._lock(conn, sid)
            if ship["status"] == "purchasing":
                await history.move_shipment(conn, ship, "purchase_failed", actor_kind="system", reason=error[:500],
                                            last_error=error[:2000])
                await notices.label_failed(conn, sid, error)  # the seller is told why
            elif ship["status"] == "voiding":
                await history.move_shipment(conn, ship, "voided", actor_kind="system", reason="nothing was bought",
                                            voided_at=datetime.now(timezone.utc))
        log.warning("label_failed", shipment_id=sid, error=error)
        await self.shipping.publish([ship["order_id"]])

    async def _nothing_bought(self, sid: str) -> None:
        async with self.db.tx(SYSTEM) as conn:
            ship = await self._lock(conn, sid)
            if ship["status"] == "voiding":
                await history.move_shipment(conn, ship, "voided", actor_kind="system", reason="nothing was bought",
                                            voided_at=datetime.now(timezone.utc))
        await self.shipping.publish([ship["order_id"]])


def actor_of(actor: Principal | None) -> tuple[str, str | None]:
    if actor is None or actor.user_id is None:
        return "system", None
    return {"admin": "admin", "seller": "seller"}.get(actor.role, "user"), actor.user_id
