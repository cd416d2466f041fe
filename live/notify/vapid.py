"""VAPID keys (RFC 8292) of Web Push: VAPID_PRIVATE_KEY / VAPID_PUBLIC_KEY / VAPID_SUBJECT; outside production,
with none set, a key pair generated once and kept in LIVE_DATA_DIR (`vapid_private_key`, mode 0600) and reused at
every start; in production without keys, none (Web Push is off). The JWT of a push service's origin is signed
once and reused for a while (`Vapid.headers`), not once per push."""
from __future__ import annotations

import base64
import os
import re
import time
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid02

from live.config import Settings
from live.config_checks import SUBJECT

KEY_FILE = "vapid_private_key"
JWT_LIFETIME_SECONDS = 12 * 3600  # `exp` of a VAPID JWT (push services refuse more than 24 h)
JWT_REUSE_SECONDS = 3600  # a signed JWT is reused for this long per push service origin
JWT_CACHE_ORIGINS = 256  # origins whose JWT is kept (the cache is emptied past it)
_B64URL = re.compile(r"[A-Za-z0-9_-]{1,200}={0,2}")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    """base64url with or without padding; ValueError when it is not."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Vapid:
    private_key: ec.EllipticCurvePrivateKey
    subject: str
    public_key: str = ""  # base64url of the uncompressed point: the browser's `applicationServerKey`
    _signer: Vapid02 = field(init=False, repr=False)
    _jwts: dict[str, tuple[float, dict]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.public_key = b64url(self.private_key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint))
        self._signer = Vapid02(self.private_key)

    def headers(self, origin: str) -> dict[str, str]:
        """`Authorization: vapid t=<JWT>,k=<public key>` for a push service origin (`https://host[:port]`)."""
        now = time.time()
        cached = self._jwts.get(origin)
        if cached is not None and cached[0] > now:
            return cached[1]
        signed = self._signer.sign({"aud": origin, "sub": self.subject, "exp": int(now) + JWT_LIFETIME_SECONDS})
        if len(self._jwts) >= JWT_CACHE_ORIGINS:
            self._jwts.clear()
        self._jwts[origin] = (now + JWT_REUSE_SECONDS, signed)
        return signed


def _from_raw(raw: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def _stored_key(data_dir: Path) -> bytes:
    """The development key of `data_dir`, created once. Several workers starting together agree on one: each
    writes a fresh key to a file of its own and links it to the final name, which only the first link gets."""
    path = data_dir / KEY_FILE
    try:
        return unb64url(path.read_text().strip())
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{time.monotonic_ns()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b64url(key.private_numbers().private_value.to_bytes(32, "big")).encode())
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return unb64url(path.read_text().strip())


def load(settings: Settings) -> Vapid | None:
    """The server's VAPID keys, or None when Web Push is off (production without VAPID_PRIVATE_KEY). Settings
    validated the configured pair (live/config.py)."""
    if settings.vapid_private_key:
        raw = unb64url(settings.vapid_private_key)
    elif settings.live_env == "production":
        return None
    else:
        raw = _stored_key(settings.data_dir)
    subject = settings.vapid_subject or f"mailto:{parseaddr(settings.email_from)[1]}"
    if not SUBJECT.fullmatch(subject):  # an EMAIL_FROM the signer would refuse
        subject = "mailto:no-reply@localhost"
    return Vapid(_from_raw(raw), subject)


def new_pair() -> tuple[str, str]:
    """A fresh key pair for VAPID_PRIVATE_KEY / VAPID_PUBLIC_KEY (base64url)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big")), Vapid(key, "mailto:x@localhost").public_key


if __name__ == "__main__":  # `python -m live.notify.vapid`: print a pair for production's environment
    private, public = new_pair()
    print(f"VAPID_PRIVATE_KEY={private}\nVAPID_PUBLIC_KEY={public}")
