"""Sellers' shipping settings and the buyer's shipping rates over REST (docs/shipping.md: Seller settings, Rates)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from live.auth.policy import SELLERS
from live.http.api import API, Api, Call, patchable
from live.http.checkout import AddressIn
from live.ids import UUID

api = Api()
MAX_FREE_OVER = 10**12


class ShippingSettingsIn(BaseModel):
    """The fields to set; those left out keep their value."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    ship_from: AddressIn | None = Field(default=None, description=(
        "where parcels leave from, validated by the carrier (null: no carrier shipping for your orders)"))
    default_weight_g: int = patchable(ge=1, le=70_000, description="weight of a unit whose product has none")
    default_length_cm: float = patchable(ge=0.1, le=300)
    default_width_cm: float = patchable(ge=0.1, le=300)
    default_height_cm: float = patchable(ge=0.1, le=300)
    free_shipping_over_minor: int | None = Field(default=None, ge=0, le=MAX_FREE_OVER, description=(
        "an order whose subtotal after discounts reaches this ships free to the buyer (null: never)"))
    return_window_days: int = patchable(ge=0, le=365, description="days after delivery a return may be asked (0: none)")
    auto_purchase_label: bool = patchable(description="buy the label as soon as the order is paid")


class SellerQuery(BaseModel):
    seller_id: str | None = Field(default=None, pattern=UUID, description="admins: another seller's settings")


class ParcelOut(BaseModel):
    weight_g: int
    length_cm: float
    width_cm: float
    height_cm: float


class ShippingSettingsOut(BaseModel):
    seller_id: str
    ship_from: dict | None
    default_weight_g: int
    default_length_cm: float
    default_width_cm: float
    default_height_cm: float
    free_shipping_over_minor: int | None
    return_window_days: int
    auto_purchase_label: bool
    updated_at: datetime | None
    ships: bool = Field(description="a ship-from address is set: checkout quotes carrier rates for your orders")


class RatesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    address: AddressIn | None = Field(default=None, description="where to ship (or address_id)")
    address_id: str | None = Field(default=None, pattern=UUID, description="one of your saved addresses")

    @model_validator(mode="after")
    def _one_address(self) -> "RatesIn":
        if (self.address is None) == (self.address_id is None):
            raise ValueError("give exactly one of address and address_id")
        return self


class RateOut(BaseModel):
    id: str = Field(description="give it at checkout: shipping: {seller_id: id}")
    carrier: str
    service: str
    service_name: str
    amount_minor: int = Field(description="what you pay (0 with free shipping)")
    carrier_amount_minor: int
    currency: str
    estimated_days: int | None
    expires_at: datetime


class SellerRatesOut(BaseModel):
    seller_id: str
    ships: bool = Field(description="false: the seller ships by themselves, no shipping charge")
    parcel: ParcelOut | None
    rates: list[RateOut] = Field(description="cheapest first")
    free_shipping: bool
    unavailable: str | None = Field(description="why the carrier offers no rate (rates empty although ships)")


class RatesOut(BaseModel):
    currency: str
    sellers: list[SellerRatesOut]


def _settings(call: Call):
    return call.services.commerce.shipping.seller_settings


@api.route("GET", f"{API}/seller/shipping", summary="Your shop's shipping settings (admins: any seller's)",
           tag="shipping", auth="user", roles=SELLERS, query=SellerQuery, response=ShippingSettingsOut,
           errors=(404,))
async def get_seller_shipping(call: Call):
    return await _settings(call).get(call.principal, call.query.seller_id)


@api.route("PUT", f"{API}/seller/shipping", summary="Set your shop's shipping settings (ship-from address "
           "validated by the carrier)", tag="shipping", auth="user", roles=SELLERS, query=SellerQuery,
           body=ShippingSettingsIn, response=ShippingSettingsOut, errors=(404, 502))
async def put_seller_shipping(call: Call):
    fields = call.body.model_dump(exclude_unset=True)
    if fields.get("ship_from") is not None:
        fields["ship_from"] = call.body.ship_from.model_dump(exclude_none=True)
    return await _settings(call).put(call.principal, fields, call.query.seller_id)


@api.route("POST", f"{API}/cart/shipping-rates", summary="Shipping rates for your cart, per seller order "
           "(cheapest first)", tag="shipping", auth="user", body=RatesIn, response=RatesOut,
           errors=(404, 409, 502))
async def cart_shipping_rates(call: Call):
    body = call.body
    address = body.address.model_dump(exclude_none=True) if body.address else None
    return await call.services.commerce.shipping.quotes.for_buyer(call.principal, address, body.address_id)
