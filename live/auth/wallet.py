"""Solana wallet sign-in: the server issues a nonce inside a message, the wallet signs the whole message (ed25519),
the server verifies the signature against the base58 public key and burns the nonce. A user is created on first
sign-in. Nonces are limited per client address by the route (`auth_wallet_nonce`); new accounts per client
address here (`wallet_new_account`, live/ratelimit.py), checked only when the wallet has no account yet."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import base58
import nacl.exceptions
import nacl.signing

from db import Database
from db import auth as auth_db
from db import users as users_db
from live.auth.principal import SYSTEM
from live.errors import DomainError
from live.ratelimit import Limits

NONCE_TTL = timedelta(minutes=5)


def decode_address(address: str) -> bytes:
    try:
        raw = base58.b58decode(address.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise DomainError("invalid", "address must be a base58 ed25519 public key (32 bytes)")
    return raw


def sign_in_message(domain: str, address: str, nonce: str, issued: datetime, expires: datetime) -> str:
    return (f"{domain} wants you to sign in with your Solana account:\n{address}\n\n"
            f"Sign in to live.\n\nNonce: {nonce}\nIssued At: {issued.isoformat()}\n"
            f"Expiration Time: {expires.isoformat()}")


class WalletSignIn:
    def __init__(self, db: Database, domain: str, limits: Limits):
        self._db = db
        self._domain = domain
        self._limits = limits

    async def nonce(self, address: str) -> dict:
        decode_address(address)
        nonce = secrets.token_urlsafe(18)
        issued = datetime.now(timezone.utc).replace(microsecond=0)
        expires = issued + NONCE_TTL
        message = sign_in_message(self._domain, address, nonce, issued, expires)
        async with self._db.tx(SYSTEM) as conn:
            await auth_db.add_nonce(conn, nonce, address, message, expires)
        return {"nonce": nonce, "message": message, "expires_at": expires.isoformat()}

    async def verify(self, address: str, nonce: str, signature: str, requester: str):
        """Burn the nonce (one attempt each), check the signature, return the user row."""
        key = decode_address(address)
        try:
            sig = base58.b58decode(signature.strip())
        except ValueError:
            sig = b""
        if len(sig) != 64:
            raise DomainError("invalid", "signature must be a base58 ed25519 signature (64 bytes)")
        async with self._db.tx(SYSTEM) as conn:
            row = await auth_db.burn_nonce(conn, nonce, address)
        if row is None:
            raise DomainError("nonce_used", "unknown or already used nonce; request a new one")
        if row["expired"]:
            raise DomainError("nonce_expired", "the nonce has expired; request a new one")
        try:
            nacl.signing.VerifyKey(key).verify(row["message"].encode(), sig)
        except nacl.exceptions.BadSignatureError:
            raise DomainError("signature_mismatch", "the signature does not match the address") from None
        async with self._db.tx(SYSTEM) as conn:
            user = await users_db.by_wallet(conn, address)
        if user is not None:
            return user
        await self._limits.check("wallet_new_account", requester,
                                 "too many new accounts from this address; try again later")
        async with self._db.tx(SYSTEM) as conn:
            return await users_db.upsert_by_wallet(conn, address)
