"""The carrier interface: value types every carrier speaks (addresses, parcels, rates, labels, tracking events),
the two errors, and the `Carrier` protocol the sandbox carrier and Shippo implement. docs/shipping.md, Carriers."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Mapping, Protocol

_ADDRESS_KEYS = ("name", "line1", "city", "country", "line2", "state", "postal_code", "phone", "email")


@dataclass(frozen=True, slots=True)
class Address:
    """What carriers need of an address; built from a dict with the same keys (addresses table, order snapshot)."""
    name: str
    line1: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    line2: str | None = None
    state: str | None = None
    postal_code: str | None = None
    phone: str | None = None
    email: str | None = None

    @classmethod
    def of(cls, d: Mapping) -> "Address":
        """The address of a dict: known keys only (others ignored), text stripped, empty text as None, the
        country in capitals. Missing required keys become "" (check_address reports them)."""
        values: dict[str, str | None] = {}
        for key in _ADDRESS_KEYS:
            raw = d.get(key)
            text = raw.strip() if isinstance(raw, str) else (None if raw is None else str(raw).strip())
            values[key] = text or None
        for key in ("name", "line1", "city", "country"):
            values[key] = values[key] or ""
        values["country"] = values["country"].upper()
        if values["state"]:
            values["state"] = values["state"].upper()
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Parcel:
    weight_g: int
    length_cm: float
    width_cm: float
    height_cm: float


@dataclass(frozen=True, slots=True)
class Rate:
    provider: str            # 'sandbox' | 'shippo'
    carrier: str             # 'sandbox', 'usps', 'ups', ...
    service: str             # service-level token: 'ground', 'express', 'usps_priority', ...
    service_name: str
    amount_minor: int
    currency: str
    estimated_days: int | None
    provider_rate_id: str | None   # Shippo's rate object_id; sandbox: a deterministic id
    expires_at: datetime | None    # when the provider stops honouring it (None: our TTL applies)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return d

    @classmethod
    def of(cls, d: Mapping) -> "Rate":
        """A Rate from a stored dict (e.g. orders.shipping_rate): the Rate's keys only, others ignored."""
        values = {f.name: d.get(f.name) for f in fields(cls)}
        if isinstance(values["expires_at"], str):
            values["expires_at"] = datetime.fromisoformat(values["expires_at"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Label:
    provider_ref: str        # the provider's transaction id (sandbox: derived from our shipment id)
    carrier: str
    tracking_number: str
    label_url: str | None    # Shippo's PDF URL; sandbox: None (we serve the PDF ourselves)
    tracking_url: str | None


# ISO 4217 currencies without minor units (amounts in them are whole units); all others here have 2 digits
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())


def minor_digits(currency: str) -> int:
    return 0 if currency.upper() in ZERO_DECIMAL else 2


TRACKING_STATUSES = ("pre_transit", "transit", "out_for_delivery", "delivered", "returned", "failure", "unknown")


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    provider: str
    carrier: str
    tracking_number: str
    status: str              # one of TRACKING_STATUSES (Shippo TRANSIT + substatus out_for_delivery: out_for_delivery)
    substatus: str | None
    status_date: datetime    # aware
    message: str | None
    location: str | None
    metadata: str | None     # what we attached when buying ("shipment:<uuid>"), when the carrier echoes it


class CarrierError(Exception):
    """A provider call failed. retryable: a later attempt may succeed (5xx, timeout, connection); fields: the
    [{field, message}] of an address the provider refused (then retryable is False)."""

    def __init__(self, message: str, *, retryable: bool = True, fields: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.fields = fields or []


class WebhookRejected(Exception):
    """A carrier webhook we refuse: code 'invalid_signature' (bad token/signature: 401/400) or 'invalid_payload'
    (unreadable body: 400)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Carrier(Protocol):
    name: str  # 'sandbox' | 'shippo'

    async def validate_address(self, addr: Address) -> list[dict]:
        """[] when valid, else one {field, message} per problem."""
        ...

    async def rates(self, from_: Address, to: Address, parcel: Parcel, currency: str) -> list[Rate]:
        ...

    async def buy_label(self, rate: Rate, *, shipment_id: str, from_: Address, to: Address,
                        parcel: Parcel) -> Label:
        """Carries "shipment:<id>" in the provider's metadata."""
        ...

    async def find_label(self, rate: Rate, *, shipment_id: str) -> Label | None:
        """The label already bought for this shipment with this rate (a retry's lookup first), else None."""
        ...

    async def void_label(self, label: Label) -> None:
        """Raises CarrierError(retryable=False) when the provider refuses."""
        ...

    async def register_tracking(self, carrier: str, tracking_number: str, *, metadata: str) -> None:
        ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str],
                      query: Mapping[str, str]) -> list[TrackingEvent]:
        """Verify (raises WebhookRejected) and parse a tracking webhook."""
        ...
