"""The one interface every payment provider (Stripe, Paystack, the built-in sandbox) implements.

Checkout creates a `payments` row, then asks the provider to start a payment for it (`start`). The provider's
webhook is verified and normalised by `parse_webhook` into a `PaymentEvent`; the webhook route stores it once
(`webhook_events`, unique per provider and event key) and hands it to the order side
(`services.commerce.apply_payment_event`), which moves the orders. `verify` asks the provider for the current
state of a payment (Paystack's verify-by-reference; Stripe's PaymentIntent retrieve) for reconciliation.
`refund` asks the provider to give back part or all of a payment (a canceled paid order); the provider's refund
webhook (an event of kind `refunded`) later says it happened.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal, Mapping, Protocol

import orjson

from live.errors import DomainError
from live.ids import is_uuid

EventKind = Literal["succeeded", "failed", "canceled", "refunded", "ignored"]


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    payment_id: str  # our payments.id
    amount_minor: int
    currency: str  # ISO 4217, upper case
    idempotency_key: str  # derived from the payment attempt, so a retried start never charges twice
    email: str | None = None
    description: str = ""
    return_url: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PaymentStart:
    provider_ref: str  # Stripe PaymentIntent id, Paystack reference, sandbox reference
    client_secret: str | None = None  # Stripe: the browser confirms with it
    authorization_url: str | None = None  # Paystack and the sandbox: where the buyer goes to pay
    status: str = "requires_action"


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    provider: str
    event_key: str  # unique per provider: what makes a replay a duplicate
    event_type: str  # the provider's own name, e.g. payment_intent.succeeded, charge.success
    kind: EventKind
    provider_ref: str | None
    amount_minor: int | None
    currency: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    payment_id: str | None = None  # our payments.id when the provider echoes it back (metadata), else None
    refund_id: str | None = None  # refunds: our payment_refunds.id when the provider echoes it back
    refund_ref: str | None = None  # refunds: the provider's id of the refund, when the event names it


@dataclass(frozen=True, slots=True)
class RefundRequest:
    refund_id: str  # our payment_refunds.id
    payment_id: str  # our payments.id
    payment_ref: str  # the payment at the provider: PaymentIntent id, Paystack reference, sandbox reference
    amount_minor: int
    currency: str  # ISO 4217, upper case
    idempotency_key: str  # derived from refund_id, so a retried call never refunds twice
    attempt: int = 1  # > 1: an earlier call may have reached the provider without us hearing the answer
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RefundResult:
    provider_ref: str  # the provider's id of the refund (Stripe re_..., Paystack refund id, sandbox rf_sbx_...)
    status: str = "pending"  # the provider's word for it; our record is settled by the refund webhook


class PaymentProvider(Protocol):
    """Providers subclass this explicitly so they inherit the default `confirm`."""

    name: str

    async def start(self, req: PaymentRequest) -> PaymentStart: ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        """Verify the signature over the raw body and normalise; DomainError('invalid_signature') if forged."""
        ...

    async def verify(self, provider_ref: str) -> PaymentEvent | None:
        """The provider's current state of a payment (kind `ignored` while still in flight); None if unknown."""
        ...

    async def refund(self, req: RefundRequest) -> RefundResult:
        """Ask the provider to refund `req.amount_minor` of the payment. Raises DomainError: status >= 500 when
        the provider could not be reached or failed (try again later, with the same request), below 500 when it
        refused (`refund_refused`: trying again would not help)."""
        ...

    async def confirm(self, event: PaymentEvent) -> PaymentEvent:
        """Re-check a verified webhook event with the provider before it is applied (Paystack: verify by
        reference). The default trusts the signed event."""
        return event

    async def close(self) -> None:
        """Release HTTP sessions (called at shutdown)."""
        return None


def invalid_signature(message: str) -> DomainError:
    """A webhook whose signature does not verify: 400 (not 401: the caller is a provider, not a user)."""
    return DomainError("invalid_signature", message)


def refund_refused(message: str) -> DomainError:
    """The provider will not make this refund (already refunded, more than is left, ...): retrying cannot help."""
    return DomainError("refund_refused", message)


def provider_unreachable(message: str) -> DomainError:
    """The provider could not be reached, failed, or would not start or verify a payment (502 to our caller); a
    refund call that ends so is tried again later (one it refused ends with refund_refused)."""
    return DomainError("payment_provider_error", message)


def upper(currency: Any) -> str | None:
    return str(currency).upper() if currency else None


# ---- a verified webhook whose content does not fit (issue 11 item 19) ----

MAX_MINOR = 2**63 - 1  # amounts are bigint columns
MAX_KEY = 255  # event keys, types and provider references
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class InvalidPayload(DomainError):
    """A webhook whose signature verifies but whose content does not fit (a field of the wrong type or out of
    range, a NUL byte PostgreSQL cannot store): 400 `invalid_payload`, stored as rejected, never applied.
    `event_key`/`event_type` are the event's own when they could be read."""

    def __init__(self, message: str, payload: Any = None, event_key: Any = None, event_type: Any = None):
        super().__init__("invalid_payload", message)
        self.payload = payload
        self.event_key = event_key if _short_text(event_key) else None
        self.event_type = event_type if _short_text(event_type) else None


def _short_text(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_KEY and "\x00" not in v


@contextmanager
def payload_fields(payload: Any) -> Iterator[None]:
    """Around the reading of a verified payload: a field of the wrong type (what `.get` on a list, `int("x")` or
    `payload["id"]` raise) is InvalidPayload, not a 500."""
    try:
        yield
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise InvalidPayload(f"webhook fields of the wrong type ({type(exc).__name__})", payload) from None


def storable(payload: Any) -> bool:
    """Whether a payload can be stored as a webhook row's jsonb: an object with no NUL anywhere in it."""
    return isinstance(payload, dict) and b"\\u0000" not in orjson.dumps(payload)


def check_event(event: PaymentEvent) -> PaymentEvent:
    """Every field of a normalised event has the type and range the order side and the database expect, and the
    payload can be stored (jsonb holds no NUL). Fields an ignored event never uses are not checked."""
    bad = []
    if not _short_text(event.event_key):
        bad.append("event id")
    if not _short_text(event.event_type):
        bad.append("event type")
    if not storable(event.payload):
        bad.append("payload")
    if event.kind != "ignored":
        if event.provider_ref is not None and not _short_text(event.provider_ref):
            bad.append("reference")
        if event.refund_ref is not None and not _short_text(event.refund_ref):
            bad.append("refund reference")
        if event.amount_minor is not None and (type(event.amount_minor) is not int
                                               or not 0 <= event.amount_minor <= MAX_MINOR):
            bad.append("amount")
        if event.currency is not None and not (isinstance(event.currency, str) and _CURRENCY.match(event.currency)):
            bad.append("currency")
        for name in ("payment_id", "refund_id"):
            value = getattr(event, name)
            if value is not None and not (isinstance(value, str) and is_uuid(value)):
                bad.append(name)
    if bad:
        raise InvalidPayload(f"webhook fields of the wrong type or range: {', '.join(bad)}", event.payload,
                             event.event_key, event.event_type)
    return event
