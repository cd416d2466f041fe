"""The sandbox carrier: the default without a Shippo key. No account, no network, no memory: everything it
answers is derived from its inputs, so a restart changes nothing.

- Rates by zone (`zone`) and billable weight (the larger of the parcel's weight and its volumetric weight,
  L x W x H / 5 grams per cm3), from the `SERVICES` table in US cents, converted with the fixed sandbox figures
  of `CURRENCIES` into the requested currency's minor units. Its `provider_rate_id` encodes (service, zone,
  billable weight, currency), so a label can be bought from a stored rate after a restart.
- Labels: the tracking number is `SBX` + 16 digits of a hash of our shipment id, the provider ref is
  `sbx_tr_<shipment uuid hex>`: buying twice gives the same label, which is also what `find_label` returns.
- Tracking: `timeline(label, start)` gives the five events of a sandbox parcel, `pace` seconds apart; `event_body`
  and `sign` make the signed webhook (`X-Sandbox-Carrier-Signature: t=<unix>,v1=<hex HMAC-SHA256(key,
  "<t>.<body>")>`) that `parse_webhook` verifies (5 minutes tolerance, constant-time compare) and reads strictly.
docs/shipping.md, "Carriers", has the tables.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import re
import uuid
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Mapping

import orjson

from live import signatures
from live.commerce.shipping.addresses import COUNTRIES, check_address, postal_prefix
from live.commerce.shipping.carriers.base import (
    TRACKING_STATUSES,
    Address,
    CarrierError,
    Label,
    Parcel,
    Rate,
    TrackingEvent,
    WebhookRejected,
    minor_digits,
)

NAME = "sandbox"
SIGNATURE_HEADER = "X-Sandbox-Carrier-Signature"
MAX_WEBHOOK_BYTES = 16 * 1024
MAX_WEIGHT_G = 70_000          # heavier parcels get no rate (a freight carrier's job)
MAX_SIDE_CM = 150.0            # the longest side a parcel may have
VOLUMETRIC_G_PER_CM3 = Decimal("0.2")  # L x W x H / 5000 kg
WEIGHT_STEP_G = 500            # price steps: the first 500 g are in the base price, then per started 500 g
HUB = "Sandbox Sorting Hub"

# service -> (name, {zone: (base US cents, US cents per further started 500 g, estimated days)})
SERVICES: dict[str, tuple[str, dict[int, tuple[int, int, int]]]] = {
    "ground": ("Sandbox Ground", {1: (450, 60, 2), 2: (650, 90, 4), 3: (1200, 250, 7), 4: (1900, 450, 12)}),
    "express": ("Sandbox Express", {1: (900, 120, 1), 2: (1300, 160, 2), 3: (2400, 400, 3), 4: (3800, 700, 5)}),
    "overnight": ("Sandbox Overnight", {1: (1900, 200, 1), 2: (2600, 260, 1)}),  # within a country only
}

# currency -> units of it for one US dollar: fixed sandbox figures, not exchange rates. A currency not listed is
# priced 1:1 with the US dollar. Minor-unit digits: base.minor_digits (0 for JPY, KRW, XOF, ...; else 2).
CURRENCIES: dict[str, Decimal] = {
    "USD": Decimal(1), "EUR": Decimal("0.92"), "GBP": Decimal("0.79"), "CAD": Decimal("1.36"),
    "AUD": Decimal("1.52"), "NZD": Decimal("1.65"), "CHF": Decimal("0.88"), "NGN": Decimal(1500),
    "GHS": Decimal(15), "KES": Decimal(130), "ZAR": Decimal("18.5"), "INR": Decimal(83), "BRL": Decimal(5),
    "MXN": Decimal(17), "JPY": Decimal(150), "KRW": Decimal(1350), "XOF": Decimal(600), "UGX": Decimal(3800),
    "RWF": Decimal(1300),
}

# (status, substatus, message, where: "from" | "hub" | "to") of each step of a sandbox parcel's journey
STEPS = (
    ("pre_transit", "information_received", "Label created: the carrier awaits the parcel", "from"),
    ("transit", "package_accepted", "Accepted at the origin facility", "from"),
    ("transit", "package_departed", "Departed the sorting facility", "hub"),
    ("out_for_delivery", "out_for_delivery", "Out for delivery", "to"),
    ("delivered", "delivered", "Delivered", "to"),
)

_RATE_ID = re.compile(r"sbx_rate:(?P<service>[a-z]+):z(?P<zone>[1-4]):(?P<grams>\d{1,6})g:(?P<currency>[A-Z]{3})")
_TRACKING = re.compile(r"SBX\d{16}")
_REF_PREFIX = "sbx_tr_"
# webhook text fields and their longest length
_TEXT_FIELDS = {"substatus": 64, "message": 500, "location": 200, "metadata": 200}


def signing_key(secret: str | None, jwt_secret: str) -> bytes:
    """SANDBOX_CARRIER_SECRET, or when unset a key derived from JWT_SECRET (no configuration needed)."""
    if secret:
        return secret.encode()
    return hmac.new(jwt_secret.encode(), b"live/sandbox-carrier/v1", hashlib.sha256).digest()


def region(country: str) -> str | None:
    c = COUNTRIES.get(country.upper())
    return c.region if c else None


def zone(from_: Address, to: Address) -> int:
    """1: same country and same postal prefix (addresses.postal_prefix: first digit or leading letters; without
    postal codes, the same city); 2: same country; 3: same region (COUNTRIES' region: EU, NA, WAF, ...); 4:
    elsewhere."""
    if from_.country == to.country:
        a, b = postal_prefix(from_.country, from_.postal_code), postal_prefix(to.country, to.postal_code)
        if a and b:
            return 1 if a == b else 2
        if not a and not b and from_.city.casefold() == to.city.casefold():
            return 1
        return 2
    r = region(from_.country)
    return 3 if r is not None and r == region(to.country) else 4


def billable_grams(parcel: Parcel) -> int:
    volumetric = Decimal(str(parcel.length_cm)) * Decimal(str(parcel.width_cm)) * Decimal(str(parcel.height_cm))
    return max(int(parcel.weight_g), int((volumetric * VOLUMETRIC_G_PER_CM3).to_integral_value(ROUND_CEILING)))


def price(service: str, zone_: int, grams: int, currency: str) -> int:
    """The amount in `currency`'s minor units of `service` to `zone_` for `grams` billable grams."""
    base, per_step, _ = SERVICES[service][1][zone_]
    steps = max(1, math.ceil(grams / WEIGHT_STEP_G))
    usd_cents = base + per_step * (steps - 1)
    minor = Decimal(usd_cents) / 100 * CURRENCIES.get(currency, Decimal(1)) * (10 ** minor_digits(currency))
    return int(minor.to_integral_value(ROUND_CEILING))


def check_parcel(parcel: Parcel) -> list[dict]:
    problems = []
    if not isinstance(parcel.weight_g, int) or not 1 <= parcel.weight_g <= MAX_WEIGHT_G:
        problems.append({"field": "weight_g", "message": f"must be between 1 and {MAX_WEIGHT_G} grams"})
    for field in ("length_cm", "width_cm", "height_cm"):
        value = getattr(parcel, field)
        if not isinstance(value, (int, float)) or not 0 < value <= MAX_SIDE_CM:
            problems.append({"field": field, "message": f"must be above 0 and at most {MAX_SIDE_CM:g} cm"})
    return problems


def tracking_number_for(shipment_id: str) -> str:
    digest = hashlib.sha256(f"live/sandbox-carrier/tracking:{_uuid(shipment_id)}".encode()).digest()
    return "SBX" + f"{int.from_bytes(digest[:16], 'big') % 10 ** 16:016d}"


def shipment_id_of(label: Label) -> str | None:
    """Our shipment id a sandbox label was bought for (its provider ref encodes it); None if not a sandbox ref."""
    if not label.provider_ref.startswith(_REF_PREFIX):
        return None
    try:
        return str(uuid.UUID(hex=label.provider_ref[len(_REF_PREFIX):]))
    except ValueError:
        return None


def _uuid(shipment_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(shipment_id))
    except ValueError:
        raise CarrierError(f"sandbox: shipment id {shipment_id!r} is not a UUID", retryable=False) from None


class SandboxCarrier:
    name = NAME

    def __init__(self, key: bytes, pace_seconds: float = 20.0):
        self._key = key
        self.pace_seconds = pace_seconds

    async def close(self) -> None:
        """Nothing to close (Shippo's carrier closes its HTTP session): callers may close any carrier."""

    # ---- addresses and rates ----

    async def validate_address(self, addr: Address) -> list[dict]:
        return check_address(addr.as_dict())

    async def rates(self, from_: Address, to: Address, parcel: Parcel, currency: str) -> list[Rate]:
        """Every service to the parcel's zone, cheapest first; a parcel out of bounds or a currency that is not
        three capitals is CarrierError(retryable=False, fields=...)."""
        problems = check_parcel(parcel)
        if not re.fullmatch(r"[A-Z]{3}", currency or ""):
            problems.append({"field": "currency", "message": "must be an ISO 4217 code like USD"})
        if problems:
            raise CarrierError("sandbox: no rate for this parcel", retryable=False, fields=problems)
        z = zone(from_, to)
        grams = billable_grams(parcel)
        out = [self._rate(service, z, grams, currency) for service, (_, zones) in SERVICES.items() if z in zones]
        return sorted(out, key=lambda r: (r.amount_minor, r.estimated_days or 0, r.service))

    @staticmethod
    def _rate(service: str, z: int, grams: int, currency: str) -> Rate:
        service_name, zones = SERVICES[service]
        return Rate(provider=NAME, carrier=NAME, service=service, service_name=service_name,
                    amount_minor=price(service, z, grams, currency), currency=currency, estimated_days=zones[z][2],
                    provider_rate_id=f"sbx_rate:{service}:z{z}:{grams}g:{currency}", expires_at=None)

    @staticmethod
    def rate_of(provider_rate_id: str) -> Rate:
        """The rate a sandbox rate id stands for (as `rates` made it); CarrierError(retryable=False) when it is
        not one."""
        m = _RATE_ID.fullmatch(provider_rate_id or "")
        if m is None or m["service"] not in SERVICES or int(m["zone"]) not in SERVICES[m["service"]][1]:
            raise CarrierError(f"sandbox: {provider_rate_id!r} is not a sandbox rate", retryable=False)
        return SandboxCarrier._rate(m["service"], int(m["zone"]), int(m["grams"]), m["currency"])

    # ---- labels ----

    async def buy_label(self, rate: Rate, *, shipment_id: str, from_: Address, to: Address,
                        parcel: Parcel) -> Label:
        ours = self.rate_of(rate.provider_rate_id or "")
        if ours.service != rate.service:
            raise CarrierError(f"sandbox: rate {rate.provider_rate_id} is not for service {rate.service}",
                               retryable=False)
        return self._label(shipment_id)

    async def find_label(self, rate: Rate, *, shipment_id: str) -> Label | None:
        """The sandbox keeps nothing: a shipment's label is always the same, so this is it."""
        return self._label(shipment_id)

    @staticmethod
    def _label(shipment_id: str) -> Label:
        sid = _uuid(shipment_id)
        return Label(provider_ref=_REF_PREFIX + sid.hex, carrier=NAME, tracking_number=tracking_number_for(str(sid)),
                     label_url=None, tracking_url=None)

    async def void_label(self, label: Label) -> None:
        """Voids any sandbox label (the caller checks it has no scan); another provider's label is refused."""
        if shipment_id_of(label) is None or not _TRACKING.fullmatch(label.tracking_number or ""):
            raise CarrierError("sandbox: not a sandbox label", retryable=False)

    async def register_tracking(self, carrier: str, tracking_number: str, *, metadata: str) -> None:
        """Nothing to register: the sandbox's events come from `timeline` (sent by the sandbox_carrier.advance
        job)."""

    # ---- tracking timeline and webhooks ----

    def timeline(self, label: Label, start: datetime, pace: float | None = None, *,
                 from_: Address | None = None, to: Address | None = None) -> list[TrackingEvent]:
        """The five events of a sandbox parcel, the first at `start` (aware), then one every `pace` seconds
        (default SANDBOX_CARRIER_PACE_SECONDS): pre_transit, transit (accepted), transit (departed the hub),
        out_for_delivery, delivered. Locations are the from/to cities when given."""
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        step = timedelta(seconds=self.pace_seconds if pace is None else pace)
        sid = shipment_id_of(label)
        where = {"from": _place(from_), "hub": HUB, "to": _place(to)}
        return [TrackingEvent(provider=NAME, carrier=NAME, tracking_number=label.tracking_number, status=status,
                              substatus=substatus, status_date=start + i * step, message=message,
                              location=where[at], metadata=f"shipment:{sid}" if sid else None)
                for i, (status, substatus, message, at) in enumerate(STEPS)]

    @staticmethod
    def event_body(event: TrackingEvent) -> bytes:
        return orjson.dumps({"tracking_number": event.tracking_number, "carrier": NAME, "status": event.status,
                             "substatus": event.substatus, "status_date": event.status_date.isoformat(),
                             "message": event.message, "location": event.location, "metadata": event.metadata})

    def signature(self, body: bytes, timestamp: int | None = None) -> str:
        return signatures.sign(self._key, body, timestamp)

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers of a webhook request carrying `body`."""
        return {"Content-Type": "application/json", SIGNATURE_HEADER: self.signature(body, timestamp)}

    def parse_webhook(self, body: bytes, headers: Mapping[str, str],
                      query: Mapping[str, str]) -> list[TrackingEvent]:
        if len(body) > MAX_WEBHOOK_BYTES:
            raise WebhookRejected("invalid_payload", f"body over {MAX_WEBHOOK_BYTES} bytes")
        try:
            signatures.verify(self._key, body, signatures.header(headers, SIGNATURE_HEADER), SIGNATURE_HEADER)
        except signatures.BadSignature as exc:
            raise WebhookRejected("invalid_signature", str(exc)) from None
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise WebhookRejected("invalid_payload", "body is not JSON") from None
        return [_event(payload)]



def _place(addr: Address | None) -> str | None:
    if addr is None:
        return None
    return ", ".join(p for p in (addr.city, addr.state, addr.country) if p)


def _event(payload: object) -> TrackingEvent:
    """A sandbox webhook body -> TrackingEvent; anything not as event_body writes it is invalid_payload."""
    def bad(message: str) -> WebhookRejected:
        return WebhookRejected("invalid_payload", message)

    if not isinstance(payload, dict):
        raise bad("body is not a JSON object")
    number = payload.get("tracking_number")
    if not isinstance(number, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", number):
        raise bad("tracking_number must be 1-64 letters, digits or '-'")
    if payload.get("carrier") != NAME:
        raise bad("carrier must be 'sandbox'")
    status = payload.get("status")
    if status not in TRACKING_STATUSES:
        raise bad(f"status must be one of {', '.join(TRACKING_STATUSES)}")
    texts: dict[str, str | None] = {}
    for field, limit in _TEXT_FIELDS.items():
        value = payload.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise bad(f"{field} must be text of at most {limit} characters")
        texts[field] = value
    raw_date = payload.get("status_date")
    try:
        status_date = datetime.fromisoformat(raw_date) if isinstance(raw_date, str) and len(raw_date) <= 40 else None
    except ValueError:
        status_date = None
    if status_date is None or status_date.tzinfo is None:
        raise bad("status_date must be an ISO 8601 date-time with a time zone")
    return TrackingEvent(provider=NAME, carrier=NAME, tracking_number=number, status=status,
                         substatus=texts["substatus"], status_date=status_date, message=texts["message"],
                         location=texts["location"], metadata=texts["metadata"])
