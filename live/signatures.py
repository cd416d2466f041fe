"""The one timestamped-HMAC webhook signature scheme of the project (the sandbox payment provider's, the sandbox
carrier's, and Shippo's optional one are all of this shape): a header `t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256 over `"<t>." + body`; a header may carry several `v1` (a key being rotated). Accepted within
TOLERANCE_SECONDS of now, compared in constant time."""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Mapping

TOLERANCE_SECONDS = 300


class BadSignature(Exception):
    """Why a signature header was refused (the caller turns it into its own 400/401)."""


def mac(key: bytes, t: int, body: bytes) -> str:
    return hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(key: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The header value signing `body` at `timestamp` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={mac(key, t, body)}"


def verify(key: bytes, body: bytes, header: str | None, name: str) -> None:
    """Raise BadSignature (its message names the header `name`) unless `header` signs `body` with `key` within
    the tolerance."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        k, _, v = item.strip().partition("=")
        parts.setdefault(k, []).append(v)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        raise BadSignature(f"{name} missing or without a timestamp") from None
    expected = mac(key, t, body).encode()
    if not any(hmac.compare_digest(expected, v.encode()) for v in parts.get("v1", [])):
        raise BadSignature(f"{name} does not verify")
    if abs(time.time() - t) > TOLERANCE_SECONDS:
        raise BadSignature(f"{name} timestamp is outside the tolerance")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """`name` from `headers`, case-insensitively even in a plain dict."""
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value
