"""The caller's own profile, sign-out, and the administration of users: roles (grant/revoke seller, admin)
and suspension.

Every change is one transaction as the caller (RLS), with its audit row written in it (`user.role`,
`user.suspend`, `user.unsuspend`). After the commit the change reaches every worker at once
(`AuthStates.changed`): a suspended user's tokens stop working and their open sockets are cut; a new role
applies to the next request and to open sockets (live/auth/sockets.py).
"""
from __future__ import annotations

import re
import time

from db import Database, audit
from db import users as users_db
from live.auth import policy
from live.auth.principal import ROLES, Principal
from live.auth.sessions import AuthStates
from live.errors import DomainError, not_found

MAX_PAGE = 100
MAX_OFFSET = 10_000


def _slug(name: str, user_id: str) -> str:
    return (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "seller") + "-" + user_id[:8]


async def change_role(conn, admin_id: str, user, role: str, **audit_data):
    """`user` (their row, locked) gets `role`, audited as `user.role` (with `audit_data`); the new auth state, for
    `AuthStates.changed` after the commit."""
    state = await users_db.set_role(conn, user["id"], role)
    await audit.record(conn, admin_id, "user.role", "user", user["id"], before={"role": user["role"]},
                       after={"role": role}, **audit_data)
    return state


async def grant_seller(conn, admin_id: str, user, shop_name: str, *, keep_admin: bool = False, **audit_data):
    """The one way a user becomes a seller (the admin's role change, an approved application): their role becomes
    seller (`change_role`; unchanged when seller already, or admin with `keep_admin`) and they have a seller row: a
    new one named `shop_name` (its slug made from it), or the one kept from an earlier time as a seller, its slug
    and name unchanged. Returns (the new auth state or None when the role did not change, the seller row)."""
    state = None
    if user["role"] != "seller" and not (keep_admin and user["role"] == "admin"):
        state = await change_role(conn, admin_id, user, "seller", **audit_data)
    seller = await users_db.seller_for_user(conn, user["id"])
    if seller is None:
        seller = await users_db.ensure_seller(conn, user["id"], shop_name[:100], _slug(shop_name, user["id"]))
    return state, seller


class Users:
    def __init__(self, db: Database, states: AuthStates):
        self._db = db
        self._states = states

    async def sign_out(self, principal: Principal) -> None:
        """Every token of the caller issued until now stops working (all devices)."""
        async with self._db.tx(principal) as conn:
            row = await users_db.revoke_tokens(conn, principal.user_id, time.time())
        if row is None:
            raise not_found("user")
        await self._states.changed(row)

    async def profile(self, principal: Principal):
        """The caller's own user row."""
        async with self._db.tx(principal) as conn:
            row = await users_db.get(conn, principal.user_id)
        if row is None:
            raise not_found("user")
        return row

    async def update_profile(self, principal: Principal, fields: dict):
        """The caller's name or avatar changed; their user row after."""
        async with self._db.tx(principal) as conn:
            row = await users_db.update_profile(conn, principal.user_id, fields)
        if row is None:
            raise not_found("user")
        return row

    async def list(self, admin: Principal, *, q: str | None, role: str | None, suspended: bool | None,
                   limit: int, offset: int) -> list:
        policy.admin(admin)
        async with self._db.tx(admin) as conn:
            return await users_db.search(conn, q=q, role=role, suspended=suspended,
                                         limit=min(limit, MAX_PAGE), offset=min(offset, MAX_OFFSET))

    async def get(self, admin: Principal, user_id: str):
        policy.admin(admin)
        async with self._db.tx(admin) as conn:
            row = await users_db.get(conn, user_id)
        if row is None:
            raise not_found("user")
        return row

    async def set_role(self, admin: Principal, user_id: str, role: str):
        """Grant or revoke seller (or admin). A new seller gets a seller profile (kept when the role is
        revoked: their products and orders stay theirs). Setting the role a user already has changes nothing."""
        policy.admin(admin)
        if role not in ROLES:
            raise DomainError("invalid", f"role must be one of {', '.join(ROLES)}")
        async with self._db.tx(admin) as conn:
            before = await self._target(conn, admin, user_id, "change your own role")
            if before["role"] == role:
                return before
            if role == "seller":
                state, _ = await grant_seller(conn, admin.user_id, before, before["name"])
            else:
                state = await change_role(conn, admin.user_id, before, role)
            after = await users_db.get(conn, user_id)
        await self._states.changed(state)
        return after

    async def suspend(self, admin: Principal, user_id: str, reason: str | None):
        """Suspend: no sign-in, every token stops working, open sockets are cut. Suspending again changes
        nothing."""
        policy.admin(admin)
        async with self._db.tx(admin) as conn:
            before = await self._target(conn, admin, user_id, "suspend yourself")
            if before["suspended_at"] is not None:
                return before
            state = await users_db.set_suspended(conn, user_id, time.time(), reason)
            await audit.record(conn, admin.user_id, "user.suspend", "user", user_id,
                               before={"suspended": False}, after={"suspended": True, "reason": reason})
            after = await users_db.get(conn, user_id)
        await self._states.changed(state)
        return after

    async def unsuspend(self, admin: Principal, user_id: str):
        """Lift a suspension: the user may sign in again (tokens from before the suspension stay void)."""
        policy.admin(admin)
        async with self._db.tx(admin) as conn:
            before = await self._target(conn, admin, user_id, "lift your own suspension")
            if before["suspended_at"] is None:
                return before
            state = await users_db.set_suspended(conn, user_id, None, None)
            await audit.record(conn, admin.user_id, "user.unsuspend", "user", user_id,
                               before={"suspended": True, "reason": before["suspended_reason"]},
                               after={"suspended": False})
            after = await users_db.get(conn, user_id)
        await self._states.changed(state)
        return after

    @staticmethod
    async def _target(conn, admin: Principal, user_id: str, what: str):
        if user_id == admin.user_id:
            raise DomainError("conflict", f"you cannot {what}; ask another admin")
        row = await users_db.get_for_update(conn, user_id)
        if row is None:
            raise not_found("user")
        return row
