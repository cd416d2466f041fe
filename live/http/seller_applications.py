"""Becoming a seller (live/auth/seller_applications.py): a customer applies (`/me/seller-application`), an admin
lists the applications and approves (the user becomes a seller with a shop) or refuses them."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from live.http.api import API, Api, Call
from live.http.catalog import uuid_param
from live.http.contact import ONE_LINE

api = Api()
ADMIN = {"tag": "admin", "auth": "user", "roles": ("admin",)}
Status = Literal["pending", "approved", "refused"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApplicationIn(Strict):
    shop_name: str = Field(min_length=2, max_length=80, pattern=ONE_LINE,
                           description="the shop's name (one line)")
    about: str = Field(default="", max_length=2000, description="what the shop sells, in a few words")


class ApproveIn(Strict):
    note: str | None = Field(default=None, min_length=1, max_length=500, description="told to the applicant")


class RefuseIn(Strict):
    note: str = Field(min_length=1, max_length=500, description="why: told to the applicant")


class Applicant(BaseModel):
    id: str
    email: str | None = None
    name: str


class Application(BaseModel):
    id: str
    user: Applicant
    shop_name: str
    about: str
    status: Status
    created_at: str
    decided_at: str | None = None
    decided_by: str | None = Field(default=None, description="the deciding admin's user id")
    note: str | None = None


class ApplicationPage(BaseModel):
    items: list[Application]
    next_cursor: str | None = None


class ApplicationQuery(BaseModel):
    status: Status | None = Field(default=None, description="only this status (unset: all, pending first)")
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")


@api.route("POST", f"{API}/me/seller-application", summary="Apply to become a seller (a customer with no "
           "application pending; 409 otherwise)", tag="account", auth="user", body=ApplicationIn,
           response=Application, status=201, errors=(409,))
async def apply_to_sell(call: Call):
    return await call.services.seller_applications.apply(call.principal, call.body.shop_name, call.body.about)


@api.route("GET", f"{API}/me/seller-application", summary="The caller's latest application to become a seller "
           "(404: none)", tag="account", auth="user", response=Application, errors=(404,))
async def my_seller_application(call: Call):
    return await call.services.seller_applications.mine(call.principal)


@api.route("GET", f"{API}/admin/seller-applications", summary="Applications to become a seller: pending first, "
           "newest first (or one status; cursor pages)", query=ApplicationQuery, response=ApplicationPage, **ADMIN)
async def admin_list_seller_applications(call: Call):
    q = call.query
    return await call.services.seller_applications.listing(call.principal, q.status, q.cursor, q.limit)


@api.route("POST", f"{API}/admin/seller-applications/{{id}}/approve", summary="Approve: the user's role becomes "
           "seller (audited as user.role) and their shop is made, in one transaction; the applicant is notified",
           body=ApproveIn, response=Application, errors=(404, 409), **ADMIN)
async def admin_approve_seller_application(call: Call):
    return await call.services.seller_applications.approve(
        call.principal, uuid_param(call, what="seller application"), call.body.note)


@api.route("POST", f"{API}/admin/seller-applications/{{id}}/refuse", summary="Refuse with a note (shown to the "
           "applicant, who may apply again); the applicant is notified", body=RefuseIn, response=Application,
           errors=(404, 409), **ADMIN)
async def admin_refuse_seller_application(call: Call):
    return await call.services.seller_applications.refuse(
        call.principal, uuid_param(call, what="seller application"), call.body.note)
