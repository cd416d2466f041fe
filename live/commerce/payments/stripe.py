"""Stripe through the official `stripe` library (v16 `StripeClient`) on its aiohttp HTTP client, so no call
blocks the event loop.

`start` creates a PaymentIntent with the caller's idempotency key (Stripe replays the first response for 24 h,
so a retried start never makes a second intent); the browser confirms it with `client_secret`.
`parse_webhook` verifies `Stripe-Signature` on the raw body with the library (`construct_event`: HMAC-SHA256,
300 s tolerance, any of several `v1` signatures during secret rotation). `verify` retrieves the PaymentIntent.
`refund` creates a Refund of the PaymentIntent with an idempotency key derived from our refund record.
"""
from __future__ import annotations

from typing import Any, Mapping

import aiohttp
import orjson
import stripe as stripe_lib

from live.commerce.payments.base import (
    PaymentEvent,
    PaymentProvider,
    PaymentRequest,
    PaymentStart,
    RefundRequest,
    RefundResult,
    invalid_signature,
    payload_fields,
    provider_unreachable,
    refund_refused,
    upper,
)
from live.errors import DomainError

# Stripe event type -> our kind; every other type is stored and ignored
EVENT_KINDS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "canceled",
    "charge.refunded": "refunded",
}


def _message(exc: stripe_lib.StripeError) -> str:
    return f"stripe: {exc.user_message or str(exc) or type(exc).__name__}"


def provider_error(exc: stripe_lib.StripeError) -> DomainError:
    if isinstance(exc, stripe_lib.IdempotencyError):
        return DomainError("idempotency_conflict", _message(exc))
    return provider_unreachable(_message(exc))


def refund_error(exc: stripe_lib.StripeError) -> DomainError:
    """Stripe refused the refund (a bad request: already refunded, more than is left, unknown intent) or could
    not make it now (network, 5xx, rate limit, keys): the first is final, the second is retried later."""
    if isinstance(exc, (stripe_lib.InvalidRequestError, stripe_lib.IdempotencyError, stripe_lib.CardError)):
        return refund_refused(_message(exc))
    return provider_unreachable(_message(exc))


class StripeProvider(PaymentProvider):
    name = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str | None, api_base: str | None = None,
                 *, tolerance: int = 300):
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret
        self._api_base = api_base
        self._tolerance = tolerance
        self._session: aiohttp.ClientSession | None = None
        self._client: stripe_lib.StripeClient | None = None

    @property
    def client(self) -> stripe_lib.StripeClient:
        """Built on first use (inside the running loop): the library's aiohttp client on our own session."""
        if self._client is None:
            self._session = aiohttp.ClientSession()
            http = stripe_lib.AIOHTTPClient(session=self._session, timeout=aiohttp.ClientTimeout(total=30))
            self._client = stripe_lib.StripeClient(
                self._secret_key, base_addresses={"api": self._api_base} if self._api_base else None,
                http_client=http, max_network_retries=2)
        return self._client

    async def start(self, req: PaymentRequest) -> PaymentStart:
        params: dict[str, Any] = {
            "amount": req.amount_minor,
            "currency": req.currency.lower(),
            # Stripe limits metadata values to 500 characters
            "metadata": {**{k: str(v)[:500] for k, v in req.metadata.items()}, "payment_id": req.payment_id},
            "automatic_payment_methods": {"enabled": True},
        }
        if req.description:
            params["description"] = req.description[:1000]
        if req.email:
            params["receipt_email"] = req.email
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params, options={"idempotency_key": req.idempotency_key})
        except stripe_lib.StripeError as exc:
            raise provider_error(exc) from None
        return PaymentStart(provider_ref=intent.id, client_secret=intent.client_secret, status=intent.status)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        if not self._webhook_secret:
            raise DomainError("unavailable", "STRIPE_WEBHOOK_SECRET is not set: Stripe webhooks cannot be verified")
        try:
            event = self.client.construct_event(body, headers.get("Stripe-Signature"), self._webhook_secret,
                                                tolerance=self._tolerance)
        except stripe_lib.SignatureVerificationError as exc:
            raise invalid_signature(f"Stripe-Signature does not verify: {exc}") from None
        except ValueError:  # signature fine, but not JSON (or not UTF-8)
            raise DomainError("invalid", "webhook body is not valid JSON") from None
        payload = orjson.loads(body)
        with payload_fields(payload):
            return map_event(event.id, event.type, payload)

    async def verify(self, provider_ref: str) -> PaymentEvent | None:
        try:
            intent = await self.client.v1.payment_intents.retrieve_async(provider_ref)
        except stripe_lib.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise provider_error(exc) from None
        except stripe_lib.StripeError as exc:
            raise provider_error(exc) from None
        obj = intent.to_dict(for_json=True)
        status = obj.get("status")
        if status == "succeeded":
            kind = "succeeded"
        elif status == "canceled":
            kind = "canceled"
        elif status == "requires_payment_method" and obj.get("last_payment_error"):
            kind = "failed"
        else:
            kind = "ignored"  # still in flight
        return PaymentEvent(
            provider=self.name, event_key=f"verify:{obj['id']}:{status}", event_type=f"payment_intent.{status}",
            kind=kind, provider_ref=obj["id"], amount_minor=_amount(obj, kind), currency=upper(obj.get("currency")),
            payload=obj, payment_id=(obj.get("metadata") or {}).get("payment_id"))

    async def refund(self, req: RefundRequest) -> RefundResult:
        """`POST /v1/refunds` for the PaymentIntent, `amount` in minor units. The idempotency key comes from our
        refund record, so a retry (ours, or the library's own after a network error) is the same refund."""
        params: dict[str, Any] = {
            "payment_intent": req.payment_ref,
            "amount": req.amount_minor,
            "metadata": {"refund_id": req.refund_id, "payment_id": req.payment_id, "reason": req.reason[:500]},
        }
        try:
            refund = await self.client.v1.refunds.create_async(params, options={"idempotency_key": req.idempotency_key})
        except stripe_lib.StripeError as exc:
            raise refund_error(exc) from None
        if refund.status in ("failed", "canceled"):
            raise refund_refused(f"stripe: refund {refund.id} is {refund.status}")
        return RefundResult(provider_ref=refund.id, status=refund.status or "pending")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._client = None


def _amount(intent: dict, kind: str) -> int | None:
    if kind == "succeeded" and intent.get("amount_received"):
        return int(intent["amount_received"])
    return int(intent["amount"]) if intent.get("amount") is not None else None


def refunded_amount(charge: dict, previous: dict) -> int | None:
    """The amount a `charge.refunded` event is about. Fully refunded: the whole refunded amount (the order side
    closes the payment). Partially: what this refund added (`amount_refunded` is cumulative), from the event's
    previous_attributes, else the newest refund in the charge, else the cumulative amount (right for a first
    refund)."""
    total = charge.get("amount_refunded")
    if total is None or charge.get("refunded"):
        return total
    if isinstance(previous.get("amount_refunded"), int):
        return total - previous["amount_refunded"]
    refunds = (charge.get("refunds") or {}).get("data") or []
    if refunds and isinstance(refunds[0].get("amount"), int):
        return refunds[0]["amount"]
    return total


def map_event(event_id: str, event_type: str, payload: dict) -> PaymentEvent:
    """A verified Stripe event -> PaymentEvent."""
    obj = (payload.get("data") or {}).get("object") or {}
    kind = EVENT_KINDS.get(event_type, "ignored")
    metadata = obj.get("metadata") or {}
    refund: dict = {}
    if obj.get("object") == "charge":
        ref = obj.get("payment_intent")
        amount = (refunded_amount(obj, (payload.get("data") or {}).get("previous_attributes") or {})
                  if event_type == "charge.refunded" else obj.get("amount"))
        if event_type == "charge.refunded":
            refund = newest_refund(obj)
    elif obj.get("object") == "payment_intent":
        ref = obj.get("id")
        amount = _amount(obj, kind)
    else:
        ref, amount, kind = obj.get("payment_intent"), None, "ignored"
    return PaymentEvent(
        provider="stripe", event_key=event_id, event_type=event_type, kind=kind,
        provider_ref=ref if isinstance(ref, str) else None,
        amount_minor=int(amount) if amount is not None else None, currency=upper(obj.get("currency")),
        payload=payload, payment_id=metadata.get("payment_id"),
        refund_id=(refund.get("metadata") or {}).get("refund_id"), refund_ref=refund.get("id"))


def newest_refund(charge: dict) -> dict:
    """The refund a `charge.refunded` event is about, when the charge lists its refunds (newest first; API versions
    before 2022-11-15 include them, later ones do not, and the order side then matches by amount)."""
    refunds = (charge.get("refunds") or {}).get("data") or []
    return refunds[0] if refunds and isinstance(refunds[0], dict) else {}
