"""The built-in sandbox provider: no keys, no internet, the same flow as the real providers.

`start` returns the URL of our own confirm page (`/pay/sandbox/{reference}`, see live/http/sandbox_pay.py).
When the buyer presses Pay or Decline there, the page builds a webhook event, signs it like Stripe does
(`x-sandbox-signature: t=<unix>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>`, key derived from JWT_SECRET) and
POSTs it over HTTP to our own `/webhooks/sandbox`, so it passes the same verification and dedup as a real
provider's webhook. The event id is derived from (reference, outcome): pressing Pay twice is one event.

`refund` makes the sandbox's refund webhook (`refund.succeeded`, signed the same way, its id derived from our
refund record so a retried refund is one event) and hands it to `receive`, the same verify / store once / apply
once path as `POST /webhooks/sandbox` (see PaymentProviders.receive): a refund is sent by its job, with no
request whose socket would tell the server's own address.
"""
from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any, Awaitable, Callable, Literal, Mapping
from urllib.parse import urlencode

import orjson

from db import payments as payments_db
from db import webhooks as webhooks_db
from live import signatures
from live.auth.principal import SYSTEM
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
    upper,
)
from live.errors import DomainError, not_found

Outcome = Literal["succeeded", "failed"]
OUTCOME_KINDS = {"payment.succeeded": "succeeded", "payment.failed": "failed", "refund.succeeded": "refunded"}
PREFIX = "sbx_"
REFUND_PREFIX = "rf_sbx_"
# (body, headers) -> the webhook's answer (a Receipt with .status and .body)
Receive = Callable[[bytes, Mapping[str, str]], Awaitable[Any]]


def signing_key(jwt_secret: str) -> bytes:
    """The sandbox's webhook secret: derived from JWT_SECRET, so it needs no configuration of its own."""
    return hmac.new(jwt_secret.encode(), b"live/sandbox-webhook/v1", hashlib.sha256).digest()


sign = signatures.sign  # the x-sandbox-signature value of a body (tests and the confirm page use it)


def payment_id_for(reference: str) -> str | None:
    """The payments.id a sandbox reference stands for; None if it is not one of ours."""
    if not reference.startswith(PREFIX):
        return None
    try:
        return str(uuid.UUID(hex=reference[len(PREFIX):]))
    except ValueError:
        return None


class SandboxProvider(PaymentProvider):
    name = "sandbox"

    def __init__(self, base_url: str, jwt_secret: str, db=None, receive: Receive | None = None):
        self._base = base_url.rstrip("/")
        self._key = signing_key(jwt_secret)
        self._db = db
        self._receive = receive

    # ---- start / confirm page helpers ----

    @staticmethod
    def reference_for(payment_id: str) -> str:
        return PREFIX + uuid.UUID(payment_id).hex

    def return_signature(self, reference: str, return_url: str) -> str:
        return hmac.new(self._key, f"return:{reference}:{return_url}".encode(), hashlib.sha256).hexdigest()[:32]

    def return_url_ok(self, reference: str, return_url: str | None, sig: str | None) -> bool:
        """The confirm page redirects only to a return_url that `start` signed (no open redirect)."""
        return bool(return_url and sig) and hmac.compare_digest(self.return_signature(reference, return_url), sig)

    async def start(self, req: PaymentRequest) -> PaymentStart:
        reference = self.reference_for(req.payment_id)
        url = f"{self._base}/pay/sandbox/{reference}"
        if req.return_url:
            url += "?" + urlencode({"return_url": req.return_url,
                                    "sig": self.return_signature(reference, req.return_url)})
        return PaymentStart(provider_ref=reference, authorization_url=url)

    def event_body(self, reference: str, outcome: Outcome, amount_minor: int, currency: str) -> bytes:
        """The webhook the confirm page sends for `outcome`; its id is the same for the same (reference, outcome)."""
        if outcome not in ("succeeded", "failed"):
            raise DomainError("validation_failed", "outcome must be succeeded or failed")
        event_id = "evt_sbx_" + hashlib.sha256(f"{reference}:{outcome}".encode()).hexdigest()[:24]
        return orjson.dumps({
            "id": event_id, "type": f"payment.{outcome}", "created": int(time.time()),
            "data": {"reference": reference, "payment_id": payment_id_for(reference), "status": outcome,
                     "amount_minor": amount_minor, "currency": currency.upper()},
        })

    def sign(self, body: bytes, timestamp: int | None = None) -> str:
        return sign(self._key, body, timestamp)

    # ---- refunds ----

    @staticmethod
    def refund_reference(refund_id: str) -> str:
        return REFUND_PREFIX + uuid.UUID(refund_id).hex

    def refund_body(self, req: RefundRequest) -> bytes:
        """The sandbox's refund webhook; its id is the same for the same refund record, so a retry is one event."""
        event_id = "evt_sbx_" + hashlib.sha256(f"refund:{req.refund_id}".encode()).hexdigest()[:24]
        return orjson.dumps({
            "id": event_id, "type": "refund.succeeded", "created": int(time.time()),
            "data": {"reference": req.payment_ref, "payment_id": req.payment_id, "refund_id": req.refund_id,
                     "refund_reference": self.refund_reference(req.refund_id), "status": "succeeded",
                     "amount_minor": req.amount_minor, "currency": req.currency.upper()},
        })

    async def refund(self, req: RefundRequest) -> RefundResult:
        """The sandbox refunds at once: its signed refund webhook goes through our webhook path before this
        returns. A webhook that was not processed (500) is a failed call, retried later as the same event."""
        if self._receive is None:
            raise provider_unreachable("sandbox: no webhook receiver to send the refund to")
        body = self.refund_body(req)
        headers = {"content-type": "application/json", "x-sandbox-signature": self.sign(body)}
        receipt = await self._receive(body, headers)
        if receipt.status != 200:
            raise provider_unreachable(f"sandbox: our refund webhook answered {receipt.status}")
        return RefundResult(provider_ref=self.refund_reference(req.refund_id), status="succeeded")

    # ---- webhook ----

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        try:
            signatures.verify(self._key, body, headers.get("x-sandbox-signature"), "x-sandbox-signature")
        except signatures.BadSignature as exc:
            raise invalid_signature(str(exc)) from None
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise DomainError("invalid", "webhook body is not a sandbox event") from None
        with payload_fields(payload):
            return _event(payload["id"], payload["type"], payload, (payload.get("data") or {}).get("reference"))

    @staticmethod
    def still_open(summary: dict) -> bool:
        """Whether the buyer may still pay or decline the payment a summary describes."""
        return summary["status"] in payments_db.OPEN

    async def payment_summary(self, reference: str) -> dict:
        """What the confirm page shows of the sandbox payment a reference stands for (amount, status, orders);
        not_found when the reference is not one of ours or names another provider's payment."""
        payment_id = payment_id_for(reference)
        if payment_id is None or self._db is None:
            raise not_found("payment")
        async with self._db.tx(SYSTEM) as conn:
            summary = await webhooks_db.payment_summary(conn, payment_id)
        if summary is None or summary["provider"] != self.name:
            raise not_found("payment")
        return summary

    async def verify(self, provider_ref: str) -> PaymentEvent | None:
        """The sandbox's state of a payment is the last event it sent us (None if none yet)."""
        if self._db is None:
            return None
        async with self._db.tx(SYSTEM) as conn:
            row = await webhooks_db.latest_for_reference(conn, self.name, provider_ref)
        if row is None:
            return None
        return _event(row["event_key"], row["event_type"], row["payload"], provider_ref)


def _event(event_key: str, event_type: str, payload: dict[str, Any], provider_ref: str | None) -> PaymentEvent:
    """A sandbox event (as event_body writes it) -> PaymentEvent."""
    data = payload.get("data") or {}
    return PaymentEvent(
        provider=SandboxProvider.name, event_key=event_key, event_type=event_type,
        kind=OUTCOME_KINDS.get(event_type, "ignored"), provider_ref=provider_ref,
        amount_minor=data.get("amount_minor"), currency=upper(data.get("currency")), payload=payload,
        payment_id=data.get("payment_id"), refund_id=data.get("refund_id"), refund_ref=data.get("refund_reference"))
