"""Which tokens still work, checked without a database round trip.

A token names its user (`sub`), role and issue time (`iat`). Three things can make it stale: the user signed out
or was suspended (every token issued before `users.tokens_valid_after` stops working), or their role changed.
Each worker keeps in memory the few users whose sign-in state changed within the tokens' lifetime, plus every
suspended user (`AuthStates`): checking a token is one dict lookup. The map stays current three ways:

* the worker that makes a change applies it at once and publishes it on Redis (`live:auth`) to the others;
* every worker polls `users.auth_changed_at` (set by a trigger on any change of role, suspension or cut-off,
  whatever path made it) every `AUTH_REFRESH_SECONDS`, which covers a Redis outage and changes made by hand;
* after Redis comes back the worker polls at once.

REST also needs the user to exist (`ensure_known`): a primary-key lookup per user and worker, remembered for
`KNOWN_SECONDS`; the lookups that miss at the same time share one query (at most `KNOWN_BATCH` ids, one query in
flight), so a thousand viewers chatting for the first time at a show's start cost a few queries, not a thousand.
A socket's connect skips it (a join storm of thousands of viewers costs no query); its chat, moderation and seller
events ask it once per connection (live/rooms/gateway.py), and its cart events learn of an unknown user from the
cart statement's foreign key, without a query of their own (live/commerce/stock.py).
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import orjson

from db import Database
from db import auth as auth_db
from db import users as users_db
from live.auth.principal import SYSTEM, Principal
from live.errors import DomainError, UnknownUser, unauthorized
from live.logging import get_logger
from live.redis.link import FAILURES, RedisLink

log = get_logger("live.auth")
CHANNEL = b"live:auth"
OVERLAP = 30.0  # each poll re-reads this many seconds before the last one (transactions that committed late)
KNOWN_SECONDS = 60.0  # how long a worker remembers that a user exists
MAX_KNOWN = 100_000  # remembered user ids per worker (then the expired ones are dropped, or all)
KNOWN_BATCH = 500  # user ids looked up in one query


@dataclass(frozen=True, slots=True)
class AuthState:
    role: str
    suspended: bool
    valid_after: float | None  # epoch seconds; tokens issued before do not work
    changed: float  # epoch seconds of the change (users.auth_changed_at)


def suspended_error() -> DomainError:
    return DomainError("suspended", "this account is suspended")


OnChange = Callable[[str, "AuthState | None", AuthState], None]


class AuthStates:
    def __init__(self, db: Database, *, token_ttl: int, refresh_seconds: float, link: RedisLink | None = None,
                 on_change: OnChange | None = None):
        self._db = db
        self._ttl = token_ttl
        self._refresh = refresh_seconds
        self._link = link
        self._states: dict[str, AuthState] = {}
        self._known: dict[str, float] = {}
        self._asking: dict[str, asyncio.Future] = {}  # user id -> its lookup's outcome (True, False or an error)
        self._lookup: asyncio.Task | None = None
        self._since: float | None = None  # database clock of the last poll, minus OVERLAP
        self._task: asyncio.Task | None = None
        self._poll_lock = asyncio.Lock()
        self._on_change = on_change  # (user_id, old, new): open sockets follow (live/auth/sockets.py)
        if link is not None:
            link.listen(CHANNEL, self._on_message)
            link.on_up.append(self._poll_quietly)  # messages may have been missed while Redis was away

    # ---- the hot path ----

    def check(self, principal: Principal, iat: float | None) -> Principal:
        """The principal of a verified token as it stands now: DomainError when the token was revoked or the
        user is suspended; the current role when it changed."""
        state = self._states.get(principal.user_id) if principal.user_id else None
        if state is None:
            return principal
        if state.suspended:
            raise suspended_error()
        if state.valid_after is not None and (iat is None or iat < state.valid_after):
            raise unauthorized("token revoked: sign in again")
        if state.role != principal.role:
            return Principal(principal.user_id, state.role, principal.name)
        return principal

    async def ensure_known(self, user_id: str) -> None:
        """DomainError('unauthorized') when no such user exists (a deleted user, a forged or foreign `sub`)."""
        now = time.monotonic()
        until = self._known.get(user_id)
        if until is not None and until > now:
            return
        try:
            uuid.UUID(user_id)
        except ValueError:
            raise UnknownUser() from None
        outcome = self._asking.get(user_id)
        if outcome is None:
            loop = asyncio.get_running_loop()
            outcome = self._asking[user_id] = loop.create_future()
            if self._lookup is None:
                self._lookup = loop.create_task(self._look_up())
        found = await asyncio.shield(outcome)  # one waiter cancelled leaves the lookup to the others
        if isinstance(found, BaseException):  # one instance for the batch's waiters: each raises it afresh
            raise found.with_traceback(None)
        if not found:
            raise UnknownUser()

    async def _look_up(self) -> None:
        """Answer every waiting `ensure_known`, KNOWN_BATCH ids a query, one query at a time."""
        try:
            while True:
                await asyncio.sleep(0)  # the misses of this loop turn join the batch
                batch = [u for u, f in self._asking.items() if not f.done()][:KNOWN_BATCH]
                if not batch:
                    return
                try:
                    async with self._db.tx(SYSTEM) as conn:
                        found = await users_db.existing(conn, batch)
                except Exception as exc:  # noqa: BLE001 - each waiter raises it, as its own query would have
                    outcomes: dict[str, object] = dict.fromkeys(batch, exc)
                else:
                    outcomes = {u: str(uuid.UUID(u)) in found for u in batch}
                for u, result in outcomes.items():
                    if result is True:
                        self.remember(u)
                    fut = self._asking.pop(u, None)
                    if fut is not None and not fut.done():
                        fut.set_result(result)
        finally:
            self._lookup = None

    def remember(self, user_id: str) -> None:
        now = time.monotonic()
        if len(self._known) >= MAX_KNOWN:
            self._known = {k: t for k, t in self._known.items() if t > now}
            if len(self._known) >= MAX_KNOWN:
                self._known.clear()
        self._known[user_id] = now + KNOWN_SECONDS

    # ---- changes ----

    def apply(self, user_id: str, state: AuthState) -> None:
        old = self._states.get(user_id)
        if old is not None and (old == state or old.changed > state.changed):
            return
        self._states[user_id] = state
        if self._on_change is not None:
            try:
                self._on_change(user_id, old, state)
            except Exception:
                log.exception("auth_change_hook_failed", user_id=user_id)

    async def changed(self, row) -> None:
        """A change this worker just committed (a row of db.users.AUTH_COLS): applied here now, and on the
        other workers through Redis (or by their next poll)."""
        state = _state(row)
        self.apply(row["id"], state)
        link = self._link
        if link is not None and link.up:
            message = orjson.dumps({"id": row["id"], "role": state.role, "suspended": state.suspended,
                                    "valid_after": state.valid_after, "changed": state.changed})
            try:
                await link.client.publish(CHANNEL, message)
            except FAILURES as exc:
                link.failed(exc)

    def _on_message(self, data: bytes) -> None:
        try:
            m = orjson.loads(data)
            self.apply(str(m["id"]), AuthState(str(m["role"]), bool(m["suspended"]), m["valid_after"],
                                               float(m["changed"])))
        except (ValueError, KeyError, TypeError):
            log.warning("auth_message_invalid", size=len(data))

    # ---- polling ----

    async def poll(self) -> None:
        """Read the changes since the last poll (all of the tokens' lifetime, and every suspension, the first
        time); forget users whose change is older than any token that could still be valid."""
        async with self._poll_lock:
            first = self._since is None
            async with self._db.tx(SYSTEM) as conn:
                since = time.time() - self._ttl - OVERLAP if first else self._since
                rows = await users_db.auth_changes(conn, since, with_suspended=first)
                db_now = rows[0]["now"] if rows else await auth_db.now(conn)
            for row in rows:
                self.apply(row["id"], _state(row))
            self._since = db_now - OVERLAP
            horizon = db_now - self._ttl - OVERLAP
            stale = [k for k, s in self._states.items() if not s.suspended and s.changed < horizon]
            for k in stale:
                del self._states[k]

    async def start(self) -> None:
        if self._link is not None:
            await self._link.subscribe(CHANNEL)  # before the link starts: subscribed when it connects
        await self.poll()
        self._task = asyncio.create_task(self._run(), name="auth-states")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh)
            await self._poll_quietly()

    async def _poll_quietly(self) -> None:
        """poll(), a failure logged (the database away): the next poll catches up."""
        try:
            await self.poll()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("auth_poll_failed")


def _state(row) -> AuthState:
    return AuthState(row["role"], row["suspended"], row["valid_after"], row["changed"] or time.time())
