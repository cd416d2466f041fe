"""Admin REST: users, their roles (grant/revoke seller) and suspension. Admins only; every change is audited
(live/auth/users.py)."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from live.errors import not_found
from live.http.account import User, user_out
from live.http.api import API, Api, Call

api = Api()
UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
ADMIN = {"tag": "admin", "auth": "user", "roles": ("admin",)}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UserQuery(Strict):
    q: str | None = Field(default=None, min_length=1, max_length=254, description="part of the email or name, "
                          "or a whole wallet address")
    role: Literal["customer", "seller", "admin"] | None = None
    suspended: bool | None = Field(default=None, description="true: only suspended users; false: only the others")
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10_000)


class AdminUser(User):
    suspended: bool
    suspended_reason: str | None = None
    created_at: str


class AdminUsers(BaseModel):
    items: list[AdminUser]


class RoleIn(Strict):
    role: Literal["customer", "seller", "admin"]


class SuspendIn(Strict):
    reason: str | None = Field(default=None, min_length=1, max_length=500)


def admin_user_out(row) -> dict:
    return {**user_out(row), "suspended": row["suspended_at"] is not None,
            "suspended_reason": row["suspended_reason"], "created_at": row["created_at"].isoformat()}


def _user_id(call: Call) -> str:
    user_id = call.param("id")
    if not re.match(UUID, user_id):
        raise not_found("user")
    return user_id


@api.route("GET", f"{API}/admin/users", summary="List users (newest first)", query=UserQuery, response=AdminUsers,
           **ADMIN)
async def admin_list_users(call: Call):
    q = call.query
    rows = await call.services.users.list(call.principal, q=q.q, role=q.role, suspended=q.suspended,
                                          limit=q.limit, offset=q.offset)
    return {"items": [admin_user_out(r) for r in rows]}


@api.route("GET", f"{API}/admin/users/{{id}}", summary="One user", response=AdminUser, errors=(404,), **ADMIN)
async def admin_get_user(call: Call):
    return admin_user_out(await call.services.users.get(call.principal, _user_id(call)))


@api.route("PUT", f"{API}/admin/users/{{id}}/role", summary="Set a user's role (grant or revoke seller); audited "
           "as user.role; applies to the user's next request and open sockets", body=RoleIn, response=AdminUser,
           errors=(404, 409), **ADMIN)
async def admin_set_role(call: Call):
    row = await call.services.users.set_role(call.principal, _user_id(call), call.body.role)
    return admin_user_out(row)


@api.route("POST", f"{API}/admin/users/{{id}}/suspend", summary="Suspend a user: no sign-in, every token and "
           "open socket cut at once; audited as user.suspend", body=SuspendIn, response=AdminUser,
           errors=(404, 409), **ADMIN)
async def admin_suspend_user(call: Call):
    row = await call.services.users.suspend(call.principal, _user_id(call), call.body.reason)
    return admin_user_out(row)


@api.route("POST", f"{API}/admin/users/{{id}}/unsuspend", summary="Lift a suspension (earlier tokens stay void); "
           "audited as user.unsuspend", response=AdminUser, errors=(404, 409), **ADMIN)
async def admin_unsuspend_user(call: Call):
    return admin_user_out(await call.services.users.unsuspend(call.principal, _user_id(call)))
