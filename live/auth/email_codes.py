"""Sign-in with a one-time code sent by email. Codes are stored as HMACs, expire, and allow few attempts.

Limits, so that nobody can lock someone else out: code requests and guesses are counted per requester (client
address) and e-mail address (`email_code_per_address`, `email_guess_per_address` in live/ratelimit.py), on top of
the per-client-address limits of the routes. Per address alone there are only wide caps against mail bombing
and distributed guessing (MAX_CODES_PER_HOUR, MAX_ATTEMPTS). Any of the address's last MAX_LIVE_CODES unexpired
codes signs in, so a code requested by someone else does not void the one the owner just received.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from db import Database
from db import auth as auth_db
from db import users as users_db
from live.auth.principal import SYSTEM
from live.errors import DomainError
from live.notify.mail import queue_mail
from live.ratelimit import Limits, RateLimited

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 20  # wrong guesses a code survives, from all requesters together
MAX_CODES_PER_HOUR = 10  # codes sent to one address per hour, from all requesters together
MAX_LIVE_CODES = 5  # the newest unexpired codes of an address that are accepted


class EmailCodes:
    def __init__(self, db: Database, secret: str, limits: Limits):
        self._db = db
        self._key = secret.encode()
        self._limits = limits

    def _hash(self, email: str, code: str) -> str:
        return hmac.new(self._key, f"{email}:{code}".encode(), hashlib.sha256).hexdigest()

    async def start(self, email: str, requester: str) -> None:
        email = email.strip().lower()
        await self._limits.check("email_code_per_address", f"{requester}:{email}",
                                 "too many codes requested for this address; try again later")
        code = f"{secrets.randbelow(1_000_000):06d}"
        async with self._db.tx(SYSTEM) as conn:
            # serialize starts for one address, so parallel requests cannot all pass the count below
            await auth_db.lock_address(conn, email)
            recent, wait = await auth_db.codes_last_hour(conn, email)
            if recent >= MAX_CODES_PER_HOUR:
                raise RateLimited("too many codes requested for this address; try again later", wait)
            await auth_db.add_code(conn, email, self._hash(email, code), CODE_TTL)
            # each request is its own event (its own mail): a random key
            await queue_mail(conn, "auth.sign_in_code", email, {"code": code, "minutes": CODE_TTL.seconds // 60},
                             f"auth.sign_in_code:{secrets.token_hex(16)}")

    async def verify(self, email: str, code: str, requester: str):
        """Consume the code and return the user row (created on first sign-in)."""
        email = email.strip().lower()
        await self._limits.check("email_guess_per_address", f"{requester}:{email}",
                                 "too many attempts for this address; try again later")
        async with self._db.tx(SYSTEM) as conn:
            rows = await auth_db.pending_codes(conn, email, MAX_LIVE_CODES)
            live = [r for r in rows if not r["expired"] and r["attempts"] < MAX_ATTEMPTS]
            if not live:
                if not rows:
                    raise DomainError("invalid_code", "no pending code for this address; request a new one")
                if all(r["expired"] for r in rows):
                    raise DomainError("code_expired", "the code has expired; request a new one")
                raise DomainError("rate_limited", "too many wrong codes; request a new one")
            given = self._hash(email, code.strip())
            match = next((r for r in live if hmac.compare_digest(r["code_hash"], given)), None)
            if match is None:
                await auth_db.count_wrong_guess(conn, [r["id"] for r in live])
                failed = DomainError("invalid_code", "wrong code")
            else:
                await auth_db.consume_codes(conn, email)
                return await users_db.upsert_by_email(conn, email)  # a suspended user gets no token (token_for)
        raise failed  # raised after commit so the attempt counts
