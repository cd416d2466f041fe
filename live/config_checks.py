"""Checks of setting values too long to sit in live/config.py's model: the Web Push (VAPID) keys and subject, and
lists of host names. Each takes the raw value and returns the clean one, or raises ValueError with the message
that live/config.py reports next to the variable's name."""
from __future__ import annotations

import base64
import re

# a VAPID subject: a mailto: address, or an https origin without port or path (what the signer, py_vapid, accepts)
SUBJECT = re.compile(r"mailto:[^@\s]{1,64}@(localhost|[\w-]{1,63}(\.[\w-]{1,63})+)"
                     r"|https://(localhost|[\w-]{1,63}(\.[\w-]{1,63})+)")
HOST = re.compile(r"[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})*")


def _b64(v: str) -> bytes:
    return base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))


def vapid_key(v: str | None, *, private: bool) -> str | None:
    """A base64url P-256 key: the private scalar (32 bytes) or the uncompressed public point (65 bytes)."""
    if v is None or not v.strip():
        return None
    v = v.strip()
    size = 32 if private else 65
    try:
        raw = _b64(v) if re.fullmatch(r"[A-Za-z0-9_-]+=*", v) else b""
    except ValueError:
        raw = b""
    if len(raw) != size or (not private and raw[0] != 4):
        what = "private key (32 bytes)" if private else "public key (65 bytes, uncompressed)"
        raise ValueError(f"must be a base64url P-256 {what}")
    return v.rstrip("=")


def vapid_subject(v: str | None) -> str | None:
    if v is None or not v.strip():
        return None
    v = v.strip()
    if not SUBJECT.fullmatch(v):
        raise ValueError("must be a mailto: address or an https:// origin (https://shop.example, no path)")
    return v


def vapid_pair(private: str | None, public: str | None, subject: str | None, production: bool) -> None:
    """The two keys belong together (the public one is optional: derived), and production names a subject."""
    if public and not private:
        raise ValueError("VAPID_PRIVATE_KEY: is required with VAPID_PUBLIC_KEY")
    if not private:
        return
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    try:
        key = ec.derive_private_key(int.from_bytes(_b64(private), "big"), ec.SECP256R1())
    except ValueError:
        raise ValueError("VAPID_PRIVATE_KEY: is not a valid P-256 private key") from None
    derived = base64.urlsafe_b64encode(key.public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint)).decode().rstrip("=")
    if public and public != derived:
        raise ValueError("VAPID_PUBLIC_KEY: does not belong to VAPID_PRIVATE_KEY")
    if production and not subject:
        raise ValueError("VAPID_SUBJECT: is required with VAPID_PRIVATE_KEY when LIVE_ENV=production")


def host_names(v: object) -> tuple[str, ...]:
    """A comma-separated list (or a sequence) of host names, lowercased; `*` stands for any host."""
    items = [h.strip().lower() for h in v.split(",") if h.strip()] if isinstance(v, str) else list(v or ())
    for h in items:
        if h != "*" and not HOST.fullmatch(h):
            raise ValueError(f"{h!r} is not a host name like fcm.googleapis.com (or *)")
    if not items:
        raise ValueError("must name at least one host (or *)")
    return tuple(items)
