"""JWT bearer tokens: our own (HS256, JWT_SECRET) and, optionally, an external identity provider's (JWKS)."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import jwt

from live.auth.principal import ROLES, Principal
from live.errors import DomainError, unauthorized

# what a refused token is told, whatever the JWT library's reason (a short, stable message that tells a prober
# nothing); an expired token is told so, since a client then signs in again
INVALID = "invalid token"


@dataclass(frozen=True)
class ExternalIdentity:
    """A verified token from an external issuer (e.g. Supabase Auth); the user's role comes from our database."""
    user_id: str
    email: str | None
    name: str | None
    iat: float | None = None


class TokenService:
    def __init__(self, secret: str, *, ttl: int = 7 * 24 * 3600, issuer: str = "live",
                 jwks_url: str | None = None, external_issuer: str | None = None,
                 external_audience: str | None = None):
        self._secret = secret
        self.ttl = ttl
        self.issuer = issuer
        self._external_issuer = external_issuer
        self._external_audience = external_audience
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600) if jwks_url else None

    def issue(self, user_id: str, role: str, name: str, *, ttl: int | None = None) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        now = round(time.time(), 3)  # milliseconds: a token issued just after a sign-out is after its cut-off
        claims = {"sub": str(user_id), "role": role, "name": name, "iss": self.issuer,
                  "iat": now, "exp": int(now) + (ttl if ttl is not None else self.ttl)}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def decode(self, token: str) -> tuple[Principal, float | None]:
        """Verify one of our own tokens: its principal (as the token says) and issue time (`iat`, epoch s)."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], issuer=self.issuer,
                                options={"require": ["sub", "exp", "iss"]})
        except jwt.ExpiredSignatureError:
            raise unauthorized("token expired") from None
        except jwt.PyJWTError:
            raise unauthorized(INVALID) from None
        role = claims.get("role")
        if role not in ROLES:
            raise unauthorized(INVALID)
        return Principal(str(claims["sub"]), role, str(claims.get("name") or "")), _iat(claims)

    @property
    def accepts_external(self) -> bool:
        """Whether tokens of an external identity provider (JWKS) are accepted besides ours."""
        return self._jwks is not None

    def is_ours(self, token: str) -> bool:
        try:
            return jwt.decode(token, options={"verify_signature": False}).get("iss") == self.issuer
        except jwt.PyJWTError:
            return False

    async def verify_external(self, token: str) -> ExternalIdentity:
        if self._jwks is None:
            raise unauthorized(INVALID)
        try:
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            claims = jwt.decode(token, key.key, algorithms=["RS256", "ES256", "EdDSA"],
                                issuer=self._external_issuer, audience=self._external_audience,
                                options={"require": ["sub", "exp"], "verify_aud": self._external_audience is not None})
        except jwt.ExpiredSignatureError:
            raise unauthorized("token expired") from None
        except (jwt.PyJWTError, jwt.PyJWKClientError):
            raise unauthorized(INVALID) from None
        meta = claims.get("user_metadata") or {}
        return ExternalIdentity(str(claims["sub"]), claims.get("email"), meta.get("name") or meta.get("full_name"),
                                _iat(claims))


def _iat(claims: dict) -> float | None:
    iat = claims.get("iat")
    return float(iat) if isinstance(iat, (int, float)) and not isinstance(iat, bool) else None


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; DomainError when the header is malformed."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DomainError("unauthorized", "Authorization header must be 'Bearer <token>'")
    return token.strip()
