"""Notification preferences: per user, per kind, per channel (email, push). Transactional kinds (an order paid,
a sign-in code) are always sent and cannot be turned off; the others are on until the user turns them off, one by
one or all at once (kind '*': the one-click unsubscribe of a mail's "all" link).

The channels apply these choices in SQL: db/prefs.py `allowed_sql` is the rule as a SQL boolean, used in their
set-based statements (the mail channel's INSERT ... SELECT in db/outbox.py, the push channel's subscriptions read
in db/push.py `for_users`); a transactional kind skips it."""
from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from db import Database
from db import prefs as prefs_db
from db import users as users_db
from live.auth.principal import SYSTEM, Principal
from live.errors import DomainError
from live.notify.kinds import KINDS
from live.notify.unsubscribe import UnsubscribeTokens

CHANNELS = prefs_db.CHANNELS
MAX_ITEMS = len(KINDS) + 1  # entries of one PUT: every kind once, and '*'


async def of_user(conn: asyncpg.Connection, user_id: str) -> dict:
    """The preferences page: every kind a user can get (not the mails to a bare address), with its effective
    email and push choice, and `all_optional` (false after an unsubscribe from all)."""
    rows = await prefs_db.of_user(conn, user_id)
    star = rows.get("*", {})
    items = []
    for k in KINDS.values():
        if k.audience == "address":
            continue
        own = rows.get(k.name, {})
        items.append({
            "kind": k.name, "label": k.label, "transactional": k.transactional,
            **{ch: True if k.transactional else _pick(own.get(ch), star.get(ch)) for ch in CHANNELS}})
    return {"items": items, "all_optional": {ch: _pick(star.get(ch), None) for ch in CHANNELS}}


def _pick(*values: bool | None) -> bool:
    return next((v for v in values if v is not None), True)


async def update(conn: asyncpg.Connection, user_id: str, items: Sequence[tuple[str, bool | None, bool | None]]):
    """Set (kind, email, push) choices ('*' for every optional kind). A transactional kind turned off, an unknown
    kind or one given twice: 422 naming it, and nothing is stored."""
    details, seen = [], set()
    for index, (kind, email, push) in enumerate(items):
        if kind in seen:
            details.append({"field": f"items.{index}.kind", "message": f"{kind} is given twice"})
            continue
        seen.add(kind)
        if kind == "*":
            continue
        spec = KINDS.get(kind)
        if spec is None or spec.audience == "address":
            details.append({"field": f"items.{index}.kind", "message": f"unknown notification kind {kind!r}"})
        elif spec.transactional and (email is False or push is False):
            details.append({"field": f"items.{index}.kind",
                            "message": f"{kind} is transactional and cannot be turned off"})
    if details:
        raise DomainError("validation_failed", "these preferences cannot be set", details=details)
    stored = [(kind, email, push) for kind, email, push in items if kind == "*" or not KINDS[kind].transactional]
    await prefs_db.upsert(conn, user_id, stored)


async def unsubscribe(conn: asyncpg.Connection, user_id: str, kind: str) -> None:
    """Turn the email of an optional kind off (`*`: of every optional kind)."""
    if kind == "*":
        await prefs_db.email_off_all(conn, user_id)
    else:
        await prefs_db.upsert(conn, user_id, [(kind, False, None)])


class Preferences:
    """The service behind the preferences page and the unsubscribe links (live/http/preferences.py)."""

    def __init__(self, db: Database, tokens: UnsubscribeTokens):
        self._db, self.tokens = db, tokens

    async def get(self, principal: Principal) -> dict:
        async with self._db.tx(principal) as conn:
            return await of_user(conn, principal.user_id)

    async def put(self, principal: Principal, items: Sequence[tuple[str, bool | None, bool | None]]) -> dict:
        async with self._db.tx(principal) as conn:
            await update(conn, principal.user_id, items)
            return await of_user(conn, principal.user_id)

    def describe(self, token: str) -> tuple[str, str, str]:
        """(user_id, kind, what: "Stream reminder emails" / "all optional emails") of a token; BadToken."""
        user_id, kind = self.tokens.read(token)
        return user_id, kind, "all optional emails" if kind == "*" else f"“{KINDS[kind].label}” emails"

    async def unsubscribe_token(self, token: str) -> str:
        """One-click unsubscribe: the email of the token's kind off for its user (a user gone: nothing to do).
        Returns what was turned off; BadToken for a bad token. Safe to repeat."""
        user_id, kind, what = self.describe(token)
        async with self._db.tx(SYSTEM) as conn:
            if await users_db.exists(conn, user_id):
                await unsubscribe(conn, user_id, kind)
        return what
