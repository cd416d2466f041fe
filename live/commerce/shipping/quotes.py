"""Shipping rates for the buyer's cart, per seller order, and the checkout's choice among them.

A quote asks the carrier (outside any transaction: a provider call never holds a connection or a lock) for the
rates of each seller's parcel from the seller's ship-from address to the buyer's address, and stores them in
`shipping_rates` under a quote key, the digest of (seller, lines with quantities, address, the seller's ship-from and
parcel defaults): a changed cart, address or seller setting is a new key, so rates of the old one are stale. A rate
expires at the sooner of the provider's expiry and now + SHIPPING_RATE_TTL_SECONDS. Quoting again while the rates
of the same key have more than half their life left returns them without asking the carrier. Each quote deletes the
buyer's expired rates, the seller's rates of other keys and any beyond MAX_RATES_KEPT; a sweeper deletes every
buyer's expired ones.

Free shipping: when the seller's order subtotal (after discounts, at checkout; before, at quote time) reaches
the seller's `free_shipping_over_minor`, the buyer's `amount_minor` is 0 (the carrier's amount is kept).
A seller without a ship-from address does not ship through a carrier: their order has no rate and no shipping
charge (they ship by themselves and enter the tracking number). docs/shipping.md, Rates."""
from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta, timezone

import orjson

from db import Database
from db import addresses as addresses_db
from db import shipping as shipping_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.commerce.shipping.addresses import verified
from live.commerce.shipping.carriers.base import Address, Carrier, CarrierError
from live.commerce.shipping.parcels import parcel_dict, parcel_for
from live.errors import DomainError
from live.logging import get_logger

log = get_logger("live.shipping.quotes")
MAX_RATES_PER_QUOTE = 10   # rates kept of one carrier answer (the cheapest)
MAX_SELLERS_PER_QUOTE = 20  # seller orders one cart may quote (each is a carrier call)
MAX_RATES_KEPT = MAX_RATES_PER_QUOTE * MAX_SELLERS_PER_QUOTE  # rates stored per buyer: a whole cart's quote fits
CARRIER_CALLS = 4          # carrier calls of one quote (one request) at a time


PARCEL_DEFAULTS = ("default_weight_g", "default_length_cm", "default_width_cm", "default_height_cm")


def quote_key(seller_id: str, lines, address: dict, settings: dict) -> str:
    """The digest of what a rate was quoted for: the seller, each variant with its quantity, the address, and the
    seller's ship-from and parcel defaults (a rate quoted before the seller changed them is stale)."""
    body = {"seller": seller_id, "lines": sorted([ln["variant_id"], int(ln["quantity"])] for ln in lines),
            "to": Address.of(address).as_dict(),
            "from": Address.of(settings["ship_from"]).as_dict() if settings["ship_from"] else None,
            "parcel": [float(settings[k]) for k in PARCEL_DEFAULTS]}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def is_free(settings: dict, subtotal_minor: int) -> bool:
    over = settings["free_shipping_over_minor"]
    return over is not None and subtotal_minor >= over


def rate_out(r: dict, free: bool) -> dict:
    """A rate as the buyer sees it (amount_minor: what they pay)."""
    return {"id": r["id"], "carrier": r["carrier"], "service": r["service"], "service_name": r["service_name"],
            "amount_minor": 0 if free else r["carrier_amount_minor"], "carrier_amount_minor": r["carrier_amount_minor"],
            "currency": r["currency"], "estimated_days": r["estimated_days"], "expires_at": r["expires_at"]}


def chosen(r: dict, free: bool) -> dict:
    """What orders.shipping_rate keeps of the chosen rate (labels are bought from it)."""
    return {"rate_id": r["id"], "provider": r["provider"], "provider_rate_id": r["provider_rate_id"],
            "carrier": r["carrier"], "service": r["service"], "service_name": r["service_name"],
            "amount_minor": 0 if free else r["carrier_amount_minor"], "carrier_amount_minor": r["carrier_amount_minor"],
            "currency": r["currency"], "estimated_days": r["estimated_days"],
            "expires_at": r["expires_at"].isoformat(), "parcel": r["parcel"], "free_shipping": free}


class RateStale(Exception):
    """Raised inside the checkout's transaction: the seller's rate is gone, expired or of another cart or address.
    The checkout rolls back, re-quotes outside the transaction and answers `rate_expired` (or, when the buyer
    chose no rate, tries once more with the fresh cheapest)."""

    def __init__(self, seller_id: str, chosen_id: str | None):
        super().__init__(seller_id)
        self.seller_id = seller_id
        self.chosen_id = chosen_id


class Quotes:
    def __init__(self, db: Database, carrier: Carrier, ttl_seconds: int):
        self.db = db
        self.carrier = carrier
        self.ttl = timedelta(seconds=ttl_seconds)

    # ---- quoting (no transaction is open while the carrier answers) ----

    async def destination(self, user_id: str, address: dict | None, address_id: str | None) -> dict:
        """The address to ship to: one of the buyer's saved ones as it is now (404 when not theirs), or the inline
        one once the rules and the carrier accept it (422 naming each field under `address.`)."""
        if address_id:
            async with self.db.tx(SYSTEM) as conn:
                saved = await addresses_db.shipping(conn, user_id, address_id)
            if saved is None:
                raise DomainError("not_found", "address not found")
            return saved
        await verified(self.carrier, address or {}, "address.")
        return address or {}

    async def for_buyer(self, principal: Principal, address: dict | None, address_id: str | None) -> dict:
        """POST /cart/shipping-rates."""
        user = policy.signed_in(principal).user_id
        return await self.for_cart(user, await self.destination(user, address, address_id))

    async def for_cart(self, user_id: str, address: dict) -> dict:
        """Per seller order of the buyer's active cart: {seller_id, parcel, rates (cheapest first),
        free_shipping, ships}."""
        async with self.db.tx(SYSTEM) as conn:
            lines = await shipping_db.cart_lines(conn, user_id)
        if not lines:
            raise DomainError("cart_empty", "your cart is empty")
        currencies = {ln["currency"] for ln in lines}
        if len(currencies) != 1:
            raise DomainError("conflict", "one currency per checkout: your cart mixes " + ", ".join(sorted(currencies)))
        by_seller = group(lines)
        if len(by_seller) > MAX_SELLERS_PER_QUOTE:
            raise DomainError("validation_failed", "your cart has too many sellers to quote at once",
                              details=[{"field": "cart", "message": f"at most {MAX_SELLERS_PER_QUOTE} sellers"}])
        currency = currencies.pop()
        calls = asyncio.Semaphore(CARRIER_CALLS)
        sellers = await asyncio.gather(*(self.seller_quote(user_id, s, by_seller[s], address, currency, calls=calls)
                                         for s in sorted(by_seller)))
        return {"currency": currency, "sellers": list(sellers)}

    async def seller_quote(self, user_id: str, seller_id: str, lines: list, address: dict, currency: str, *,
                           fresh: bool = False, calls: asyncio.Semaphore | None = None) -> dict:
        """The rates of one seller's part of the cart; the stored ones when they have half their life left
        (`fresh`: always ask the carrier). `calls` bounds the carrier calls of one request."""
        now = datetime.now(timezone.utc)
        async with self.db.tx(SYSTEM) as conn:
            settings = await shipping_db.seller_settings(conn, seller_id)
            if not settings["configured"]:
                return {"seller_id": seller_id, "ships": False, "parcel": None, "rates": [], "free_shipping": False,
                        "unavailable": None}
            key = quote_key(seller_id, lines, address, settings)
            dims = await shipping_db.dimensions(conn, [ln["variant_id"] for ln in lines])
            stored = [] if fresh else await shipping_db.fresh_rates(conn, user_id, seller_id, key, now + self.ttl / 2)
        parcel = parcel_for(lines, dims, settings, seller_id)
        free = is_free(settings, sum(ln["price_minor"] * ln["quantity"] for ln in lines))
        unavailable = None
        if not stored:
            stored, unavailable = await self._ask(user_id, seller_id, settings, address, parcel, currency, key,
                                                  calls or asyncio.Semaphore(1))
        return {"seller_id": seller_id, "ships": True, "parcel": parcel_dict(parcel),
                "rates": [rate_out(r, free) for r in stored], "free_shipping": free, "unavailable": unavailable}

    async def _ask(self, user_id: str, seller_id: str, settings: dict, address: dict, parcel, currency: str,
                   key: str, calls: asyncio.Semaphore) -> tuple[list[dict], str | None]:
        """The carrier's rates, stored; or none and why (the carrier refuses this parcel, route or currency)."""
        try:
            async with calls:
                got = await self.carrier.rates(Address.of(settings["ship_from"]), Address.of(address), parcel,
                                               currency)
        except CarrierError as exc:
            if exc.fields:  # the parcel (too big for this carrier) or the address
                raise DomainError("validation_failed", "the carrier cannot ship this parcel to this address",
                                  details=[_carrier_field(f, seller_id) for f in exc.fields]) from None
            if not exc.retryable:  # a refusal no retry mends: no rate, and why
                return [], exc.message[:300]
            log.warning("quote_failed", seller_id=seller_id, error=exc.message)
            raise DomainError("carrier_error", f"the carrier did not quote: {exc.message}") from None
        now = datetime.now(timezone.utc)
        limit = now + self.ttl
        usable = sorted((r for r in got if r.currency == currency and r.amount_minor >= 0),
                        key=lambda r: (r.amount_minor, r.estimated_days if r.estimated_days is not None else 1 << 30))
        rows = [{"carrier": r.carrier[:50], "service": r.service[:100], "service_name": r.service_name[:200],
                 "amount_minor": r.amount_minor, "carrier_amount_minor": r.amount_minor, "currency": r.currency,
                 "estimated_days": r.estimated_days if r.estimated_days is None or r.estimated_days >= 0 else None,
                 "provider": r.provider, "provider_rate_id": r.provider_rate_id,
                 "expires_at": min(r.expires_at, limit) if r.expires_at else limit}
                for r in usable[:MAX_RATES_PER_QUOTE] if r.expires_at is None or r.expires_at > now]
        if not rows:
            return [], (f"no rate in {currency}" if got else "the carrier offers no service for this parcel and "
                        "address")
        async with self.db.tx(SYSTEM) as conn:
            new = await shipping_db.insert_rates(conn, user_id, seller_id, rows, parcel_dict(parcel), address, key)
            await shipping_db.prune_rates(conn, user_id, seller_id, key, MAX_RATES_KEPT, [r["id"] for r in new])
            return new, None

    async def ensure(self, user_id: str, address: dict, skip: set[str]) -> None:
        """Before a checkout's transaction: the sellers of the cart the buyer chose no rate for (not in `skip`)
        have fresh rates to choose the cheapest from."""
        async with self.db.tx(SYSTEM) as conn:
            lines = await shipping_db.cart_lines(conn, user_id)
        currencies = {ln["currency"] for ln in lines}
        if len(currencies) != 1:
            return  # the checkout refuses it with the reason
        by_seller = group(lines)
        if len(by_seller) > MAX_SELLERS_PER_QUOTE:
            raise DomainError("validation_failed", "your cart has too many sellers to check out at once",
                              details=[{"field": "cart", "message": f"at most {MAX_SELLERS_PER_QUOTE} sellers"}])
        currency = currencies.pop()
        calls = asyncio.Semaphore(CARRIER_CALLS)
        await asyncio.gather(*(self.seller_quote(user_id, s, by_seller[s], address, currency, calls=calls)
                               for s in sorted(by_seller) if s not in skip))

    async def requote(self, user_id: str, seller_id: str, address: dict) -> dict:
        """A fresh quote for the seller's part of the buyer's current cart (the details of `rate_expired`)."""
        async with self.db.tx(SYSTEM) as conn:
            lines = [ln for ln in await shipping_db.cart_lines(conn, user_id) if ln["seller_id"] == seller_id]
        if not lines:
            return {"rates": [], "unavailable": "your cart has nothing from this seller"}
        return await self.seller_quote(user_id, seller_id, lines, address, lines[0]["currency"], fresh=True)

    # ---- inside the checkout's transaction ----

    async def choose(self, conn, user_id: str, seller_id: str, rate_id: str | None, lines, address: dict, *,
                     subtotal_minor: int, currency: str) -> dict | None:
        """The rate the order is charged (orders.shipping_rate), or None when the seller ships without a carrier.
        `rate_id` None: the cheapest fresh one. `subtotal_minor`: the order's subtotal after discounts (free
        shipping). Raises RateStale when there is no such fresh rate for these lines and this address."""
        settings = await shipping_db.seller_settings(conn, seller_id)
        if not settings["configured"]:
            return None
        key = quote_key(seller_id, lines, address, settings)
        now = datetime.now(timezone.utc)
        if rate_id is not None:
            row = await shipping_db.rate(conn, user_id, rate_id)
            ok = (row is not None and row["seller_id"] == seller_id and row["quote_key"] == key
                  and row["expires_at"] > now and row["currency"] == currency)
        else:
            rows = [r for r in await shipping_db.fresh_rates(conn, user_id, seller_id, key, now)
                    if r["currency"] == currency]
            row, ok = (rows[0] if rows else None), bool(rows)
        if not ok:
            raise RateStale(seller_id, rate_id)
        return chosen(row, is_free(settings, subtotal_minor))

    async def sweep(self) -> int:
        """Delete every buyer's expired rates (the sweeper)."""
        async with self.db.tx(SYSTEM) as conn:
            return await shipping_db.purge_expired(conn)


def _carrier_field(f: dict, seller_id: str) -> dict:
    field = f.get("field") or "address"
    if field in ("weight_g", "length_cm", "width_cm", "height_cm"):
        return {"field": "cart", "message": f"the parcel for seller {seller_id}: {field} {f['message']}",
                "seller_id": seller_id}
    return {"field": ("" if field == "currency" else "address.") + field, "message": f["message"]}


def group(lines) -> dict[str, list]:
    by_seller: dict[str, list] = {}
    for ln in lines:
        by_seller.setdefault(ln["seller_id"], []).append(ln)
    return by_seller
