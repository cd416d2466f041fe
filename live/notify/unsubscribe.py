"""Signed unsubscribe links: `/unsubscribe?t=<token>`, the token naming a user and a kind (`*`: every optional
kind), signed with HMAC-SHA256 under a key derived from JWT_SECRET (a key of its own: a token is never a valid
JWT signature and the other way round). No expiry: a link in a mail from last year still works (RFC 8058 asks that
the one-click link keep working); it can only ever turn mail off, so a leaked link costs little.

Token: base64url(`<user uuid>:<kind>`) "." base64url(first 16 bytes of the MAC); at most MAX_TOKEN characters."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid

from live.notify.kinds import KINDS

MAX_TOKEN = 200
_KIND = re.compile(r"^(\*|[a-z_]{1,40}\.[a-z_]{1,40})$")


class BadToken(ValueError):
    """The token is malformed, its signature wrong, or it names a kind that cannot be unsubscribed from."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UnsubscribeTokens:
    def __init__(self, secret: str):
        self._key = hmac.new(secret.encode(), b"live.notify.unsubscribe.v1", hashlib.sha256).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]

    def token(self, user_id: str, kind: str) -> str:
        payload = f"{user_id}:{kind}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def path(self, user_id: str, kind: str) -> str:
        return f"/unsubscribe?t={self.token(user_id, kind)}"

    def read(self, token: str) -> tuple[str, str]:
        """(user_id, kind) of a token; BadToken for anything else (a transactional kind included)."""
        if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
            raise BadToken("the unsubscribe link is incomplete or damaged")
        body, mac = token.split(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (ValueError, TypeError):
            raise BadToken("the unsubscribe link is incomplete or damaged") from None
        if not hmac.compare_digest(self._mac(payload), given):
            raise BadToken("the unsubscribe link is not valid (its signature does not match)")
        user_id, _, kind = payload.decode("utf-8", "replace").partition(":")
        try:
            user_id = str(uuid.UUID(user_id))
        except ValueError:
            raise BadToken("the unsubscribe link is not valid") from None
        if not _KIND.match(kind) or (kind != "*" and (kind not in KINDS or KINDS[kind].transactional)):
            raise BadToken("the unsubscribe link names no kind of mail that can be turned off")
        return user_id, kind
