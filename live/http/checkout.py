"""Checkout (with the Idempotency-Key header) and sellers' coupons over REST."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from live.appkeys import HTTP_METRICS
from live.auth.policy import SELLERS
from live.errors import DomainError
from live.http.api import API, Api, Call, json_response, patchable
from live.http.catalog import UUID, uuid_param

api = Api()
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
MAX_SHIPPING_CHOICES = 20  # seller orders one checkout may name a rate for (quotes.MAX_SELLERS_PER_QUOTE)


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    state: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    phone: str | None = Field(default=None, max_length=40)


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    address: AddressIn | None = Field(default=None, description="where to ship (or address_id)")
    address_id: str | None = Field(default=None, pattern=UUID, description="one of your saved addresses")
    provider: Literal["stripe", "paystack", "sandbox"] | None = Field(
        default=None, description="default: the configured one (sandbox when no provider keys are set)")
    coupon_code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$",
                              description="receipt address when your account has none")
    return_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://",
                                   description="where the provider sends the buyer back")
    shipping: dict[Annotated[str, StringConstraints(pattern=UUID)], Annotated[str, StringConstraints(pattern=UUID)]] \
        | None = Field(default=None, max_length=MAX_SHIPPING_CHOICES, description=(
            "the shipping rate chosen per seller order: {seller_id: rate id from POST /cart/shipping-rates}; a "
            "seller left out ships at its cheapest fresh rate"))

    @field_validator("shipping")
    @classmethod
    def _lower(cls, v: dict | None) -> dict | None:
        return {k.lower(): r.lower() for k, r in v.items()} if v else None

    @model_validator(mode="after")
    def _one_address(self) -> "CheckoutIn":
        if (self.address is None) == (self.address_id is None):
            raise ValueError("give exactly one of address and address_id")
        return self


class SavedAddressIn(AddressIn):
    default: bool = Field(default=False, description="make it the default address")


class CouponIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    kind: Literal["amount", "percent"]
    value: int = Field(gt=0, le=10**12, description="minor units (amount) or 1-100 (percent)")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="amount coupons only")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = Field(default=None, ge=0, le=10**9)
    min_subtotal_minor: int = Field(default=0, ge=0, le=10**12)
    active: bool = True
    platform: bool = Field(default=False, description="admins: a platform-wide coupon (every seller)")

    @model_validator(mode="after")
    def _consistent(self) -> "CouponIn":
        if self.kind == "percent" and (self.value > 100 or self.currency is not None):
            raise ValueError("a percent coupon has a value of 1-100 and no currency")
        if self.kind == "amount" and self.currency is None:
            raise ValueError("an amount coupon needs a currency")
        if self.starts_at and self.ends_at and self.starts_at >= self.ends_at:
            raise ValueError("starts_at must be before ends_at")
        return self


class CouponPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool = patchable()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = Field(default=None, ge=0, le=10**9)
    min_subtotal_minor: int = patchable(ge=0, le=10**12)


class CouponQuery(BaseModel):
    platform: bool = Field(default=False, description="admins: the platform-wide coupons")


class PaymentConfigOut(BaseModel):
    providers: list[str] = Field(description="the providers a checkout may name (`provider`)")
    default: str = Field(description="the one a checkout without `provider` uses")
    stripe_publishable_key: str | None = Field(description=(
        "Stripe.js's key for confirming a Stripe payment's client_secret in the browser (null: not set)"))


@api.route("GET", f"{API}/payments/config", summary="How a browser pays here: the providers and Stripe.js's "
           "publishable key", tag="checkout", response=PaymentConfigOut)
async def payments_config(call: Call):
    payments = call.services.payments
    stripe_key = call.services.settings.stripe_publishable_key if "stripe" in payments.names() else None
    return {"providers": payments.names(), "default": payments.default_name(), "stripe_publishable_key": stripe_key}


@api.route("POST", f"{API}/checkout",
           summary="Check out your cart: one order per seller, one payment (needs an Idempotency-Key header)",
           tag="checkout", auth="user", body=CheckoutIn, status=201, errors=(404, 409, 502, 503),
           extra={"parameters": [{"name": "Idempotency-Key", "in": "header", "required": True,
                                  "schema": {"type": "string", "maxLength": 200},
                                  "description": "a retry with the same key returns the first result"}]})
async def checkout(call: Call):
    metrics = call.request.app[HTTP_METRICS]
    try:
        key = call.request.headers.get("Idempotency-Key", "")
        if not _KEY.match(key):
            raise DomainError("invalid", "an Idempotency-Key header (1-200 printable characters) is required")
        body = call.body.model_dump(mode="json", exclude_none=True)
        response, replayed = await call.services.commerce.checkout.checkout(call.principal, key, body)
    except DomainError as exc:
        metrics.checkout(exc.code)  # out_of_stock, idempotency_conflict, ...: the outcomes worth watching
        raise
    metrics.checkout("replayed" if replayed else "created")
    return json_response(response, 201, headers={"Idempotent-Replayed": "true"} if replayed else None)


@api.route("POST", f"{API}/coupons", summary="Create a coupon for your shop (admins: platform-wide)",
           tag="checkout", auth="user", roles=SELLERS, body=CouponIn, status=201, errors=(409,))
async def create_coupon(call: Call):
    return await call.services.commerce.coupons.create(call.principal, call.body.model_dump())


@api.route("PATCH", f"{API}/coupons/{{id}}", summary="Change your coupon (activate, window, usage limit)",
           tag="checkout", auth="user", roles=SELLERS, body=CouponPatch, errors=(404,))
async def patch_coupon(call: Call):
    return await call.services.commerce.coupons.update(call.principal, uuid_param(call, what="coupon"),
                                                       call.body.model_dump(exclude_unset=True))


@api.route("GET", f"{API}/me/coupons", summary="Your shop's coupons", tag="checkout", auth="user",
           roles=SELLERS, query=CouponQuery)
async def my_coupons(call: Call):
    return await call.services.commerce.coupons.mine(call.principal, call.query.platform)


@api.route("GET", f"{API}/me/addresses", summary="Your saved shipping addresses (default first)", tag="checkout",
           auth="user")
async def my_addresses(call: Call):
    return {"items": await call.services.commerce.addresses.mine(call.principal)}


@api.route("POST", f"{API}/me/addresses", summary="Save a shipping address, validated (checkout takes its id)",
           tag="checkout", auth="user", body=SavedAddressIn, status=201, errors=(502,))
async def add_address(call: Call):
    fields = call.body.model_dump(exclude={"default"})
    return await call.services.commerce.addresses.add(call.principal, fields, call.body.default)


@api.route("POST", f"{API}/me/addresses/{{id}}/default", summary="Make a saved address your default",
           tag="checkout", auth="user", errors=(404,))
async def default_address(call: Call):
    return await call.services.commerce.addresses.make_default(call.principal, uuid_param(call, what="address"))


@api.route("DELETE", f"{API}/me/addresses/{{id}}", summary="Delete a saved address", tag="checkout",
           auth="user", status=204, errors=(404,))
async def delete_address(call: Call):
    await call.services.commerce.addresses.delete(call.principal, uuid_param(call, what="address"))
    return web.Response(status=204)
