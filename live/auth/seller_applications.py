"""Becoming a seller: a customer applies (a shop name and a few words about it); an admin approves or refuses.

One pending application per user at most, and none from a seller or an admin (409 `conflict`). Approving is one
transaction as the admin: the application becomes approved, the user's role becomes seller and their seller row (the
shop, named after the application) is made, by `grant_seller` as the admin's role change in live/auth/users.py
(audited as `user.role`); a former seller's kept shop (the role was revoked, the shop stays) keeps its id and slug
and takes the name applied for (the change in the `seller_application.approve` audit row). The decision itself is
audited as `seller_application.approve` or `seller_application.refuse` (with the note). Deciding an application that
is no longer pending: 409. After the commit the new role reaches every worker at once (`AuthStates.changed`), so the
applicant's next request and open sockets are a seller's. The applicant is told in the same transaction
(notification `account.seller_approved` or `account.seller_refused`: in-app, email, web push).
"""
from __future__ import annotations

import asyncpg

from db import Database, audit
from db import seller_applications as applications_db
from db import users as users_db
from live.auth import policy
from live.auth.principal import Principal
from live.auth.sessions import AuthStates
from live.auth.users import grant_seller
from live.cursors import decode_cursor, encode_cursor
from live.errors import DomainError, not_found
from live.notify.notices import notify

STATUSES = ("pending", "approved", "refused")
MAX_PAGE = 100


class SellerApplications:
    def __init__(self, db: Database, states: AuthStates):
        self._db = db
        self._states = states

    async def apply(self, principal: Principal, shop_name: str, about: str) -> dict:
        """A new pending application of the caller; 409 when they are a seller (or admin) or have one pending."""
        policy.signed_in(principal)
        try:
            async with self._db.tx(principal) as conn:
                user = await users_db.get(conn, principal.user_id)
                if user is None:
                    raise not_found("user")
                if user["role"] != "customer":
                    raise DomainError("conflict", f"you are already a{'n' if user['role'] == 'admin' else ''} "
                                      f"{user['role']}: there is nothing to apply for")
                if await applications_db.has_pending(conn, principal.user_id):
                    raise _pending()
                application_id = await applications_db.insert(conn, principal.user_id, shop_name, about)
                row = await applications_db.get(conn, application_id)
        except asyncpg.UniqueViolationError:  # a second submission raced this one
            raise _pending() from None
        return _out(row)

    async def mine(self, principal: Principal) -> dict:
        """The caller's latest application; 404 when they never applied."""
        policy.signed_in(principal)
        async with self._db.tx(principal) as conn:
            row = await applications_db.latest_of(conn, principal.user_id)
        if row is None:
            raise not_found("seller application")
        return _out(row)

    async def listing(self, admin: Principal, status: str | None, cursor: str | None, limit: int) -> dict:
        """Admins: `status` None lists every application, pending first, newest first; else that status."""
        policy.admin(admin)
        after = tuple(decode_cursor(cursor, "bigint", "ts", "uuid")) if cursor else None
        if after is not None and after[0] not in (0, 1):  # the rank: 0 pending, 1 decided; else not ours (nor an int4)
            raise DomainError("invalid", "cursor is not one this server gave out",
                              details=[{"field": "cursor", "message": "not a cursor of this server"}])
        limit = max(1, min(limit, MAX_PAGE))
        async with self._db.tx(admin) as conn:
            rows = await applications_db.listing(conn, status, after, limit + 1)
        page = rows[:limit]
        last = page[-1] if len(rows) > limit else None
        return {"items": [_out(r) for r in page],
                "next_cursor": encode_cursor(last["rank"], last["created_at"].isoformat(), last["id"])
                if last else None}

    async def approve(self, admin: Principal, application_id: str, note: str | None) -> dict:
        """The applicant becomes a seller with a shop named after the application, in this one transaction."""
        policy.admin(admin)
        async with self._db.tx(admin) as conn:
            app = await self._pending_one(conn, admin, application_id)
            user_id = app["user_id"]
            user = await users_db.get_for_update(conn, user_id)
            state, seller = await grant_seller(conn, admin.user_id, user, app["shop_name"], keep_admin=True,
                                               seller_application=application_id)
            renamed = {}
            if seller["display_name"] != app["shop_name"]:  # a former seller's kept shop: named as applied now
                await applications_db.name_shop(conn, seller["id"], app["shop_name"])
                renamed = {"shop": {"before": seller["display_name"], "after": app["shop_name"]}}
            await applications_db.decide(conn, application_id, "approved", admin.user_id, note)
            await audit.record(conn, admin.user_id, "seller_application.approve", "seller_application",
                               application_id, before={"status": "pending"}, after={"status": "approved"},
                               user_id=user_id, note=note, **renamed)
            await notify(conn, "account.seller_approved", [user_id], {"shop": app["shop_name"], "note": note},
                         f"account.seller_approved:{application_id}")
            row = await applications_db.get(conn, application_id)
        if state is not None:
            await self._states.changed(state)
        return _out(row)

    async def refuse(self, admin: Principal, application_id: str, note: str) -> dict:
        """The application is refused with `note` (shown to the applicant, who may apply again)."""
        policy.admin(admin)
        async with self._db.tx(admin) as conn:
            app = await self._pending_one(conn, admin, application_id)
            await applications_db.decide(conn, application_id, "refused", admin.user_id, note)
            await audit.record(conn, admin.user_id, "seller_application.refuse", "seller_application",
                               application_id, before={"status": "pending"}, after={"status": "refused"},
                               user_id=app["user_id"], note=note)
            await notify(conn, "account.seller_refused", [app["user_id"]],
                         {"shop": app["shop_name"], "note": note}, f"account.seller_refused:{application_id}")
            row = await applications_db.get(conn, application_id)
        return _out(row)

    @staticmethod
    async def _pending_one(conn, admin: Principal, application_id: str) -> dict:
        app = await applications_db.get(conn, application_id, lock=True)
        if app is None:
            raise not_found("seller application")
        if app["status"] != "pending":
            raise DomainError("conflict", f"this application was {app['status']} already")
        if app["user_id"] == admin.user_id:
            raise DomainError("conflict", "you cannot decide your own application; ask another admin")
        return app


def _pending() -> DomainError:
    return DomainError("conflict", "you have an application waiting for a decision already")


def _out(row: dict) -> dict:
    return {"id": row["id"], "user": {"id": row["user_id"], "email": row["user_email"], "name": row["user_name"]},
            "shop_name": row["shop_name"], "about": row["about"], "status": row["status"],
            "created_at": row["created_at"].isoformat(),
            "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None,
            "decided_by": row["decided_by"], "note": row["note"]}
