"""Sign-in with a one-time code sent by email. Codes are stored as HMACs, expire, and allow few attempts."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from db import Database
from db import users as users_db
from live.auth.principal import SYSTEM
from live.errors import DomainError
from live.outbox import enqueue_email

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
MAX_CODES_PER_HOUR = 5


class EmailCodes:
    def __init__(self, db: Database, secret: str):
        self._db = db
        self._key = secret.encode()

    def _hash(self, email: str, code: str) -> str:
        return hmac.new(self._key, f"{email}:{code}".encode(), hashlib.sha256).hexdigest()

    async def start(self, email: str) -> None:
        email = email.strip().lower()
        code = f"{secrets.randbelow(1_000_000):06d}"
        async with self._db.tx(SYSTEM) as conn:
            # serialize starts for one address, so parallel requests cannot all pass the count below
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('email_codes:' || $1, 0))", email)
            recent = await conn.fetchval(
                "SELECT count(*) FROM email_codes WHERE email = $1 AND created_at > now() - interval '1 hour'", email)
            if recent >= MAX_CODES_PER_HOUR:
                raise DomainError("rate_limited", "too many codes requested for this address; try again later")
            await conn.execute(
                "INSERT INTO email_codes (email, code_hash, expires_at) VALUES ($1, $2, now() + $3::interval)",
                email, self._hash(email, code), CODE_TTL)
            await enqueue_email(conn, email, "Your sign-in code",
                                f"Your live sign-in code is {code}. It expires in {CODE_TTL.seconds // 60} minutes.")

    async def verify(self, email: str, code: str):
        """Consume the code and return the user row (created on first sign-in)."""
        email = email.strip().lower()
        async with self._db.tx(SYSTEM) as conn:
            row = await conn.fetchrow(
                """SELECT id, code_hash, expires_at < now() AS expired, attempts FROM email_codes
                   WHERE email = $1 AND consumed_at IS NULL ORDER BY created_at DESC LIMIT 1 FOR UPDATE""", email)
            if row is None:
                raise DomainError("invalid_code", "no pending code for this address; request a new one")
            if row["expired"]:
                raise DomainError("code_expired", "the code has expired; request a new one")
            if row["attempts"] >= MAX_ATTEMPTS:
                raise DomainError("rate_limited", "too many wrong codes; request a new one")
            if not hmac.compare_digest(row["code_hash"], self._hash(email, code.strip())):
                await conn.execute("UPDATE email_codes SET attempts = attempts + 1 WHERE id = $1", row["id"])
                failed = DomainError("invalid_code", "wrong code")
            else:
                await conn.execute("UPDATE email_codes SET consumed_at = now() WHERE id = $1", row["id"])
                return await users_db.upsert_by_email(conn, email)
        raise failed  # raised after commit so the attempt counts
