"""Shippo over its REST API (https://docs.goshippo.com) with aiohttp: one ClientSession, `Authorization:
ShippoToken <key>`, bounded timeouts and answers.

- validate_address: our own rules first (addresses.check_address), then `POST /addresses/` with validate=true;
  `validation_results.messages` are mapped to our fields (zip -> postal_code, ...; an unplaced one -> line1).
- rates: `POST /shipments/` (async false, grams and centimetres) -> its `rates`, in the requested currency (the
  rate's `currency`, else its `currency_local`; a rate in neither is left out), cheapest first.
- buy_label: `POST /transactions/` (rate, PDF, async false, metadata "shipment:<id>"); find_label: `GET
  /transactions/?rate=<id>`, the SUCCESS one whose metadata is ours (a QUEUED one: retry later, never buy twice).
- void_label: `POST /refunds/`; register_tracking: `POST /tracks/`.
- Errors: 5xx, 429, timeouts and connection errors are CarrierError(retryable=True); other 4xx are
  retryable=False with the fields Shippo named (`{"address_to": {"zip": ["..."]}}` -> to.postal_code).
- parse_webhook: `?token=` equal (constant time) to SHIPPO_WEBHOOK_TOKEN, and with SHIPPO_WEBHOOK_HMAC_SECRET a
  valid `Shippo-Auth-Signature: t=<unix>,v1=<hex>` (HMAC-SHA256 over "<t>.<body>", 5 minutes tolerance); a
  `track_updated` event gives its tracking_history and tracking_status as events (other events: none).
"""
from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

import aiohttp
import orjson

from live.commerce.shipping.addresses import check_address
from live.commerce.shipping.carriers import shippo_webhook
from live.commerce.shipping.carriers.base import Address, CarrierError, Label, Parcel, Rate, TrackingEvent, minor_digits

NAME = "shippo"
TIMEOUT_SECONDS = 30.0          # a whole Shippo call (labels can take several seconds)
CONNECT_TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
MAX_FIELDS = 20                 # at most this many {field, message} taken from one error answer
LOOKUP_PAGES = 4                # find_label reads at most this many pages of 25 transactions
RETRYABLE_STATUS = frozenset({408, 425, 429})

# Shippo's address keys <-> ours
TO_SHIPPO = {"name": "name", "line1": "street1", "line2": "street2", "city": "city", "state": "state",
             "postal_code": "zip", "country": "country", "phone": "phone", "email": "email"}
FROM_SHIPPO = {v: k for k, v in TO_SHIPPO.items()}
_SIDES = {"address_from": "from.", "address_to": "to.", "parcels": "parcel."}


def shippo_address(addr: Address) -> dict:
    return {TO_SHIPPO[k]: v for k, v in addr.as_dict().items() if v is not None}


def carrier_token(provider: str) -> str:
    """Shippo's carrier token of a rate's provider name: "USPS" -> usps, "DHL Express" -> dhl_express."""
    return "_".join(provider.lower().split())


def message_field(text: str) -> str:
    """Our field a Shippo validation message is about, from its words; an unplaced one is about line1."""
    low = text.lower()
    for words, field in ((("zip", "postal"), "postal_code"), (("state", "province"), "state"), (("city",), "city"),
                         (("country",), "country"), (("phone",), "phone"), (("email",), "email"),
                         (("street2", "apartment", "suite", "unit"), "line2")):
        if any(w in low for w in words):
            return field
    return "line1"


def error_fields(payload: Any, prefix: str = "") -> list[dict]:
    """Shippo's 400 body (`{"address_to": {"zip": ["..."]}}`, `{"detail": "..."}`, `{"messages": [...]}`) ->
    [{field, message}], at most MAX_FIELDS."""
    out: list[dict] = []

    def walk(node: Any, path: str) -> None:
        if len(out) >= MAX_FIELDS:
            return
        if isinstance(node, dict):
            if "text" in node and isinstance(node["text"], str):
                out.append({"field": path.rstrip(".") or message_field(node["text"]), "message": node["text"][:300]})
                return
            for key, value in node.items():
                name = _SIDES.get(key) or (FROM_SHIPPO.get(key, key) + ".")
                walk(value, path + name if key not in ("detail", "__all__", "messages", "non_field_errors") else path)
        elif isinstance(node, list):
            for item in node[:MAX_FIELDS]:
                walk(item, path)
        elif isinstance(node, str):
            out.append({"field": path.rstrip(".") or "shippo", "message": node[:300]})

    walk(payload, prefix)
    return out[:MAX_FIELDS]


def _messages(payload: dict) -> str:
    texts = [m.get("text") for m in payload.get("messages") or [] if isinstance(m, dict) and m.get("text")]
    return "; ".join(str(t)[:300] for t in texts[:5]) or "no message"


class ShippoCarrier:
    name = NAME

    def __init__(self, api_key: str, api_base: str = "https://api.goshippo.com", *, webhook_token: str | None = None,
                 hmac_secret: str | None = None, session: aiohttp.ClientSession | None = None,
                 timeout: float = TIMEOUT_SECONDS):
        self._key = api_key
        self._base = api_base.rstrip("/")
        self._webhook_token = webhook_token
        self._hmac_secret = hmac_secret
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(CONNECT_TIMEOUT_SECONDS, timeout))

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # ---- HTTP ----

    async def _call(self, method: str, path: str, body: dict | None = None,
                    params: Mapping[str, str] | None = None) -> dict:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Authorization": f"ShippoToken {self._key}", "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = orjson.dumps(body)
        try:
            async with self._session.request(method, self._base + path, data=data, params=params, headers=headers,
                                             timeout=self._timeout) as resp:
                status = resp.status
                raw = await _read(resp, f"{method} {path}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise CarrierError(f"shippo: {method} {path} failed: {type(exc).__name__} {exc}".strip()) from None
        try:
            payload = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            payload = None
        if status >= 500 or status in RETRYABLE_STATUS:
            raise CarrierError(f"shippo: {method} {path} answered {status}")
        if status >= 400:
            fields = error_fields(payload) if payload is not None else []
            detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
            detail = detail or raw[:200].decode(errors="replace")
            raise CarrierError(f"shippo: {method} {path} answered {status}: {detail}", retryable=False,
                               fields=fields)
        if not isinstance(payload, dict):
            raise CarrierError(f"shippo: {method} {path} answered {status} with no JSON object")
        return payload

    # ---- addresses and rates ----

    async def validate_address(self, addr: Address) -> list[dict]:
        problems = check_address(addr.as_dict())
        if problems:
            return problems
        answer = await self._call("POST", "/addresses/", {**shippo_address(addr), "validate": True})
        results = answer.get("validation_results") or {}
        if results.get("is_valid") is not False:
            return []
        found = [{"field": message_field(f"{m.get('code') or ''} {m.get('text') or ''}"),
                  "message": str(m.get("text") or m.get("code"))[:300]}
                 for m in (results.get("messages") or [])[:MAX_FIELDS]
                 if isinstance(m, dict) and (m.get("text") or m.get("code")) and m.get("type") != "address_warning"]
        return found or [{"field": "line1", "message": "the carrier could not verify this address"}]

    async def rates(self, from_: Address, to: Address, parcel: Parcel, currency: str) -> list[Rate]:
        answer = await self._call("POST", "/shipments/", {
            "address_from": shippo_address(from_), "address_to": shippo_address(to),
            "parcels": [{"length": _number(parcel.length_cm), "width": _number(parcel.width_cm),
                         "height": _number(parcel.height_cm), "distance_unit": "cm",
                         "weight": str(parcel.weight_g), "mass_unit": "g"}],
            "async": False})
        offered = [r for r in answer.get("rates") or [] if isinstance(r, dict)]
        out = [rate for r in offered if (rate := _rate(r, currency)) is not None]
        if offered and not out:
            raise CarrierError(f"shippo: no rate in {currency} (rates are in "
                               f"{', '.join(sorted({str(r.get('currency')) for r in offered}))})", retryable=False)
        if not offered and answer.get("messages"):
            raise CarrierError(f"shippo: no rates: {_messages(answer)}", retryable=False,
                               fields=error_fields({"messages": answer["messages"]}))
        return sorted(out, key=lambda r: (r.amount_minor, r.estimated_days or 0, r.service))

    # ---- labels ----

    async def buy_label(self, rate: Rate, *, shipment_id: str, from_: Address, to: Address,
                        parcel: Parcel) -> Label:
        if not rate.provider_rate_id:
            raise CarrierError("shippo: the rate has no Shippo object_id", retryable=False)
        tx = await self._call("POST", "/transactions/", {"rate": rate.provider_rate_id, "label_file_type": "PDF",
                                                         "async": False, "metadata": f"shipment:{shipment_id}"})
        return _label(tx, rate.carrier)

    async def find_label(self, rate: Rate, *, shipment_id: str) -> Label | None:
        if not rate.provider_rate_id:
            return None
        metadata = f"shipment:{shipment_id}"
        params: dict[str, str] | None = {"rate": rate.provider_rate_id, "results": "25"}
        path = "/transactions/"
        for _ in range(LOOKUP_PAGES):
            page = await self._call("GET", path, params=params)
            for tx in page.get("results") or []:
                if isinstance(tx, dict) and tx.get("metadata") == metadata and tx.get("status") != "ERROR":
                    return _label(tx, rate.carrier)
            nxt = page.get("next")
            if not isinstance(nxt, str) or not nxt.startswith(self._base + "/"):
                return None
            path, params = nxt[len(self._base):], None
        raise CarrierError(f"shippo: rate {rate.provider_rate_id} has over {LOOKUP_PAGES * 25} transactions")

    async def void_label(self, label: Label) -> None:
        refund = await self._call("POST", "/refunds/", {"transaction": label.provider_ref, "async": False})
        if refund.get("status") == "ERROR":
            raise CarrierError(f"shippo: refund refused: {_messages(refund)}", retryable=False)

    async def register_tracking(self, carrier: str, tracking_number: str, *, metadata: str) -> None:
        await self._call("POST", "/tracks/", {"carrier": carrier, "tracking_number": tracking_number,
                                              "metadata": metadata})

    # ---- webhooks ----

    def parse_webhook(self, body: bytes, headers: Mapping[str, str],
                      query: Mapping[str, str]) -> list[TrackingEvent]:
        shippo_webhook.verify(body, headers, query, token=self._webhook_token, hmac_secret=self._hmac_secret)
        return shippo_webhook.events(body)


def _number(x: float) -> str:
    """A dimension as Shippo's decimal string: 30 -> "30", 12.5 -> "12.5", never an exponent."""
    return format(Decimal(str(x)).normalize(), "f")


async def _read(resp: aiohttp.ClientResponse, what: str) -> bytes:
    """The whole answer, refused (CarrierError) past MAX_RESPONSE_BYTES without reading the rest."""
    if (resp.content_length or 0) > MAX_RESPONSE_BYTES:
        raise CarrierError(f"shippo: {what} answered over {MAX_RESPONSE_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise CarrierError(f"shippo: {what} answered over {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _rate(r: dict, currency: str) -> Rate | None:
    """A Shippo rate object in `currency` (its amount or its local amount); None if in neither or unreadable."""
    for amount_key, currency_key in (("amount", "currency"), ("amount_local", "currency_local")):
        if str(r.get(currency_key) or "").upper() == currency:
            try:
                amount = Decimal(str(r.get(amount_key)))
            except InvalidOperation:
                return None
            break
    else:
        return None
    level = r.get("servicelevel") if isinstance(r.get("servicelevel"), dict) else {}
    provider = str(r.get("provider") or "")
    if not (r.get("object_id") and level.get("token") and provider) or not amount.is_finite() or amount < 0:
        return None
    days = r.get("estimated_days")
    return Rate(provider=NAME, carrier=carrier_token(provider), service=str(level["token"]),
                service_name=f"{provider} {level.get('name') or level['token']}".strip(),
                amount_minor=int((amount * 10 ** minor_digits(currency)).to_integral_value()), currency=currency,
                estimated_days=days if isinstance(days, int) and days >= 0 else None,
                provider_rate_id=str(r["object_id"]), expires_at=None)


def _label(tx: dict, carrier: str) -> Label:
    status = tx.get("status")
    if status == "SUCCESS" and tx.get("tracking_number") and tx.get("object_id"):
        return Label(provider_ref=str(tx["object_id"]), carrier=carrier, tracking_number=str(tx["tracking_number"]),
                     label_url=tx.get("label_url") or None, tracking_url=tx.get("tracking_url_provider") or None)
    if status in ("QUEUED", "WAITING"):
        raise CarrierError("shippo: the label is still being made (transaction QUEUED)")
    raise CarrierError(f"shippo: label not bought: {_messages(tx)}", retryable=False,
                       fields=error_fields({"messages": tx.get("messages") or []}))
