"""Shippo's tracking webhook: who may send it (the `?token=` of the URL, and an HMAC when configured) and what it
says (`track_updated`: the parcel's tracking_history and tracking_status as TrackingEvents).

Shippo sends no event id and may repeat or reorder: every event it reports is returned (history first, bounded
by MAX_HISTORY) and the caller dedupes on (tracking number, status, status date). Statuses: PRE_TRANSIT, TRANSIT
(with substatus out_for_delivery: our out_for_delivery), DELIVERED, RETURNED, FAILURE, UNKNOWN; anything else is
an invalid payload. Text fields are cut to their bound (a real carrier's long message is kept, shortened).
"""
from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any, Mapping

import orjson

from live import signatures
from live.commerce.shipping.carriers.base import TrackingEvent, WebhookRejected

SIGNATURE_HEADER = "Shippo-Auth-Signature"
MAX_BODY_BYTES = 256 * 1024
MAX_HISTORY = 100  # the newest entries of tracking_history taken from one webhook
STATUSES = {"PRE_TRANSIT": "pre_transit", "TRANSIT": "transit", "DELIVERED": "delivered", "RETURNED": "returned",
            "FAILURE": "failure", "UNKNOWN": "unknown"}
_LIMITS = {"substatus": 64, "message": 500, "location": 200, "metadata": 200, "carrier": 64}


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The Shippo-Auth-Signature value of `body` (what Shippo sends; tests and the fake use it)."""
    return signatures.sign(secret.encode(), body, timestamp)


def verify(body: bytes, headers: Mapping[str, str], query: Mapping[str, str], *, token: str | None,
           hmac_secret: str | None) -> None:
    """Raises WebhookRejected('invalid_signature') unless `?token=` is SHIPPO_WEBHOOK_TOKEN (an unset token refuses
    everything) and, with a secret, Shippo-Auth-Signature verifies within the tolerance."""
    given = query.get("token")
    if not (token and given) or not hmac.compare_digest(given.encode(), token.encode()):
        raise WebhookRejected("invalid_signature", "the webhook URL's token is missing or wrong")
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected("invalid_payload", f"body over {MAX_BODY_BYTES} bytes")
    if not hmac_secret:
        return
    try:
        signatures.verify(hmac_secret.encode(), body, signatures.header(headers, SIGNATURE_HEADER), SIGNATURE_HEADER)
    except signatures.BadSignature as exc:
        raise WebhookRejected("invalid_signature", str(exc)) from None


def events(body: bytes) -> list[TrackingEvent]:
    """The events of a Shippo webhook body (verified before); [] for events other than track_updated."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected("invalid_payload", "body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        raise WebhookRejected("invalid_payload", "body is not a Shippo webhook (no event)")
    if payload["event"] != "track_updated":
        return []
    data = payload.get("data")
    if not isinstance(data, dict):
        raise WebhookRejected("invalid_payload", "track_updated without data")
    number = data.get("tracking_number")
    if not isinstance(number, str) or not 1 <= len(number) <= 64 or not number.isprintable():
        raise WebhookRejected("invalid_payload", "tracking_number must be text of 1-64 characters")
    carrier = _text(data.get("carrier"), "carrier") or "unknown"
    metadata = _text(data.get("metadata"), "metadata")
    history = data.get("tracking_history") or []
    if not isinstance(history, list):
        raise WebhookRejected("invalid_payload", "tracking_history must be a list")
    entries = [*history[-MAX_HISTORY:], data.get("tracking_status")]
    out: list[TrackingEvent] = []
    seen: set[tuple[str, datetime]] = set()
    for entry in entries:
        event = _event(entry, number, carrier, metadata)
        if event is not None and (event.status, event.status_date) not in seen:
            seen.add((event.status, event.status_date))
            out.append(event)
    return out


def _text(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WebhookRejected("invalid_payload", f"{field} must be text")
    return value[:_LIMITS[field]]


def _event(entry: Any, number: str, carrier: str, metadata: str | None) -> TrackingEvent | None:
    """One tracking_status (or history entry) -> TrackingEvent; None for an entry without a status or a date of
    status UNKNOWN (Shippo's placeholder before the first scan)."""
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise WebhookRejected("invalid_payload", "tracking_status must be an object")
    raw = entry.get("status")
    if raw not in STATUSES:
        raise WebhookRejected("invalid_payload", f"status must be one of {', '.join(STATUSES)}")
    sub = entry.get("substatus")
    code = sub.get("code") if isinstance(sub, dict) else sub
    substatus = _text(code, "substatus")
    status = STATUSES[raw]
    if status == "transit" and substatus == "out_for_delivery":
        status = "out_for_delivery"
    when = entry.get("status_date")
    try:
        date = datetime.fromisoformat(when.replace("Z", "+00:00")) if isinstance(when, str) and len(when) <= 40 \
            else None
    except ValueError:
        date = None
    if date is None and when is None and status == "unknown":
        return None
    if date is None or date.tzinfo is None:
        raise WebhookRejected("invalid_payload", "status_date must be an ISO 8601 date-time with a time zone")
    loc = entry.get("location")
    where = None
    if isinstance(loc, dict):
        where = ", ".join(str(loc[k]) for k in ("city", "state", "country") if isinstance(loc.get(k), str) and loc[k])
    return TrackingEvent(provider="shippo", carrier=carrier, tracking_number=number, status=status,
                         substatus=substatus, status_date=date, message=_text(entry.get("status_details"), "message"),
                         location=_text(where, "location"), metadata=metadata)
