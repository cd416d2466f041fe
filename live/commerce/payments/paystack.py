"""Paystack over its REST API with aiohttp (Paystack publishes no official async Python library).

`start`: `POST /transaction/initialize` (amount in minor units, email, our reference, callback_url) ->
authorization_url. `verify`: `GET /transaction/verify/{reference}`. Webhooks: `x-paystack-signature` is the
hex HMAC-SHA512 of the raw body keyed with the secret key, compared in constant time. Paystack events carry no
id, so the dedup key is `event:id:status` of the data (see docs/payments.md). Before a `charge.success` is
applied, `confirm` asks Paystack's verify endpoint for the transaction and uses its amount and currency.
`refund`: `POST /refund` with the transaction reference and the amount; Paystack takes no idempotency key, so the
refund carries our refund id in `merchant_note` and a retry first looks for it (`GET /refund?reference=`).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import replace
from typing import Any, Mapping
from urllib.parse import quote

import aiohttp
import orjson

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
from live.logging import get_logger

log = get_logger("live.payments.paystack")

# Paystack event -> our kind; every other event (transfers, disputes, refund.pending...) is stored and ignored.
# Paystack sends no failure webhook for a card charge (there is no `charge.failed` event): a failed or abandoned
# transaction is seen through verify, and an unpaid order expires on our side.
EVENT_KINDS = {"charge.success": "succeeded", "refund.processed": "refunded"}
# transaction status (verify) -> our kind
STATUS_KINDS = {"success": "succeeded", "failed": "failed", "reversed": "refunded"}
PLACEHOLDER_EMAIL_DOMAIN = "example.com"  # reserved, never delivers: used when the buyer has no email


class _DuplicateReference(Exception):
    pass


def reference_for(payment_id: str) -> str:
    """Our Paystack reference for a payment (Paystack allows only alphanumerics, `-`, `.` and `=`)."""
    return "live-" + payment_id.replace("-", "")


def _amount(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class PaystackProvider(PaymentProvider):
    name = "paystack"

    def __init__(self, secret_key: str, api_base: str = "https://api.paystack.co"):
        self._key = secret_key
        self._base = api_base.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30),
                headers={"Authorization": f"Bearer {self._key}", "Accept": "application/json"})
        return self._session

    async def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        try:
            async with self._http().request(method, self._base + path,
                                            data=orjson.dumps(body) if body is not None else None,
                                            headers={"Content-Type": "application/json"} if body else None) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise provider_unreachable(f"paystack unreachable: {type(exc).__name__}") from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise provider_unreachable(f"paystack answered {status} without JSON") from None
        return status, data if isinstance(data, dict) else {}

    async def start(self, req: PaymentRequest) -> PaymentStart:
        """Initialize with the payment's reference. Paystack has no idempotency key and refuses a reference twice
        without telling the first authorization_url again; if a previous attempt got as far as Paystack (our side
        never saw the answer, so the buyer never saw that URL), initialize once more under a suffixed reference."""
        reference = reference_for(req.payment_id)
        try:
            return await self._initialize(req, reference)
        except _DuplicateReference:
            log.warning("paystack_duplicate_reference", reference=reference)
            return await self._initialize(req, f"{reference}-r{secrets.token_hex(4)}")

    async def _initialize(self, req: PaymentRequest, reference: str) -> PaymentStart:
        body: dict[str, Any] = {
            "email": req.email or f"buyer+{reference}@{PLACEHOLDER_EMAIL_DOMAIN}",
            "amount": req.amount_minor,
            "currency": req.currency.upper(),
            "reference": reference,
            "metadata": {**req.metadata, "payment_id": req.payment_id},
        }
        if req.return_url:
            body["callback_url"] = req.return_url
        status, data = await self._call("POST", "/transaction/initialize", body)
        if status >= 400 or not data.get("status"):
            message = str(data.get("message") or f"HTTP {status}")
            if "duplicate" in message.lower():
                raise _DuplicateReference(reference)
            raise provider_unreachable(f"paystack: {message}")
        out = data.get("data") or {}
        return PaymentStart(provider_ref=out.get("reference") or reference,
                            authorization_url=out.get("authorization_url"))

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        given = headers.get("x-paystack-signature") or ""
        expected = hmac.new(self._key.encode(), body, hashlib.sha512).hexdigest()
        if not given or not hmac.compare_digest(expected, given.strip().lower()):
            raise invalid_signature("x-paystack-signature does not verify")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise DomainError("invalid", "webhook body is not valid JSON") from None
        with payload_fields(payload):
            if not isinstance(payload.get("event"), str):
                raise TypeError("event")
            return map_event(payload)

    async def verify(self, provider_ref: str) -> PaymentEvent | None:
        status, data = await self._call("GET", f"/transaction/verify/{quote(provider_ref, safe='')}")
        if status in (400, 404) and not data.get("status"):
            return None  # "Transaction reference not found"
        if status >= 400:
            raise provider_unreachable(f"paystack: {data.get('message') or status}")
        tx = data.get("data") or {}
        tx_status = str(tx.get("status") or "")
        return PaymentEvent(
            provider=self.name, event_key=f"verify:{provider_ref}:{tx_status}", event_type=f"transaction.{tx_status}",
            kind=STATUS_KINDS.get(tx_status, "ignored"), provider_ref=tx.get("reference") or provider_ref,
            amount_minor=_amount(tx.get("amount")), currency=upper(tx.get("currency")), payload=tx,
            payment_id=_metadata(tx).get("payment_id"))

    async def refund(self, req: RefundRequest) -> RefundResult:
        """`POST /refund {transaction, amount, currency, merchant_note}`. Paystack has no idempotency key: when an
        earlier call may have reached Paystack (a timeout, a lost answer), the transaction's refunds are listed
        first and one carrying our note is taken instead of refunding twice."""
        note = refund_note(req.refund_id)
        if req.attempt > 1:
            found = await self._find_refund(req.payment_ref, note)
            if found is not None:
                return found
        status, data = await self._call("POST", "/refund", {
            "transaction": req.payment_ref, "amount": req.amount_minor, "currency": req.currency.upper(),
            "merchant_note": note, "customer_note": "Refund for a canceled order"})
        message = f"paystack: {data.get('message') or f'HTTP {status}'}"
        if status >= 500 or status in (401, 403, 429):
            raise provider_unreachable(message)
        if status >= 400 or not data.get("status"):
            raise refund_refused(message)
        out = data.get("data") or {}
        return RefundResult(provider_ref=str(out.get("id") or note), status=str(out.get("status") or "pending"))

    async def _find_refund(self, reference: str, note: str) -> RefundResult | None:
        status, data = await self._call("GET", f"/refund?reference={quote(reference, safe='')}")
        if status >= 400 or not data.get("status"):
            # without the list we cannot tell whether the earlier call refunded: try again later, do not risk two
            raise provider_unreachable(f"paystack: listing refunds failed: {data.get('message') or status}")
        for item in data.get("data") or []:
            if isinstance(item, dict) and item.get("merchant_note") == note:
                return RefundResult(provider_ref=str(item.get("id") or note), status=str(item.get("status") or ""))
        return None

    async def confirm(self, event: PaymentEvent) -> PaymentEvent:
        """A charge.success is applied with the amount and currency Paystack's verify reports. If verify does not
        (yet) say success, raise: the event's webhook.process job keeps it unprocessed and tries again later."""
        if event.kind != "succeeded" or not event.provider_ref:
            return event
        checked = await self.verify(event.provider_ref)
        if checked is None or checked.kind != "succeeded":
            raise DomainError("unavailable", f"paystack verify does not confirm {event.provider_ref} "
                              f"({checked.event_type if checked else 'not found'})")
        return replace(event, amount_minor=checked.amount_minor, currency=checked.currency,
                       payment_id=event.payment_id or checked.payment_id)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _metadata(data: dict) -> dict:
    meta = data.get("metadata")
    if isinstance(meta, str):  # Paystack may echo metadata back as a JSON string
        try:
            meta = orjson.loads(meta)
        except orjson.JSONDecodeError:
            return {}
    return meta if isinstance(meta, dict) else {}


def refund_note(refund_id: str) -> str:
    """The merchant_note that marks a Paystack refund as the one for our refund record."""
    return f"live refund {refund_id}"


def event_key(payload: dict) -> str:
    """Paystack has no event id. `event:id:status` of the data makes a replay a duplicate and two different
    events distinct (a refund has no `id`: its refund_reference, else the transaction reference, stands in)."""
    data = payload.get("data") or {}
    ident = data.get("id") or data.get("refund_reference") or data.get("reference") \
        or data.get("transaction_reference") or ""
    return f"{payload['event']}:{ident}:{data.get('status') or ''}"


def map_event(payload: dict) -> PaymentEvent:
    data = payload.get("data") or {}
    event = payload["event"]
    kind = EVENT_KINDS.get(event, "ignored")
    refund_id = refund_ref = None
    if event.startswith("refund."):
        tx = data.get("transaction") if isinstance(data.get("transaction"), dict) else {}
        ref = data.get("transaction_reference") or tx.get("reference")
        note = str(data.get("merchant_note") or "")
        refund_id = note.removeprefix(refund_note("")) if note.startswith(refund_note("")) else None
        refund_ref = str(data["id"]) if data.get("id") is not None else None
    else:
        ref = data.get("reference")
    return PaymentEvent(
        provider="paystack", event_key=event_key(payload), event_type=event, kind=kind,
        provider_ref=str(ref) if ref else None, amount_minor=_amount(data.get("amount")),
        currency=upper(data.get("currency")), payload=payload, payment_id=_metadata(data).get("payment_id"),
        refund_id=refund_id, refund_ref=refund_ref)
