"""Labels, voids, manual tracking and shipments over REST (docs/shipping.md: Labels, Tracking)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from live.auth.policy import SELLERS
from live.commerce.shipping.voids import MANUAL_CARRIERS
from live.http.api import API, Api, Call
from live.http.catalog import uuid_param
from live.ids import UUID

api = Api()
ManualCarrier = Literal[tuple(MANUAL_CARRIERS)]  # type: ignore[valid-type]


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    service: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,64}$", description=(
        "another service level than the buyer's (quoted again by the label job), e.g. express"))
    rate_id: str | None = Field(default=None, pattern=UUID, description="a rate quoted for this order's buyer")


class TrackingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    carrier: ManualCarrier = Field(description="the carrier you handed the parcel to")
    tracking_number: str = Field(min_length=5, max_length=64, description="as the carrier printed it")


class OrderShipmentOut(BaseModel):
    """A shipment as an order carries it."""

    id: str
    kind: Literal["outbound", "return"]
    status: str
    provider: str | None
    carrier: str | None
    service: str | None
    tracking_number: str | None
    tracking_url: str | None
    label: bool = Field(description="a label PDF is served at GET /api/v1/shipments/{id}/label.pdf")
    eta: str | None
    last_event: dict | None
    last_error: str | None
    purchased_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    voided_at: datetime | None
    created_at: datetime


class ShipmentOut(OrderShipmentOut):
    """One shipment with its tracking timeline and status history (orders carry the shipment without them)."""

    events: list[dict] = Field(description="the tracking timeline, in status-date order (the latest 50)")
    history: list[dict] = Field(description="status changes: from, to, actor_kind, actor_id, reason, at")


@api.route("POST", f"{API}/seller/orders/{{id}}/label",
           summary="Buy the order's shipping label (a job buys it: 202 with the pending shipment)", tag="shipping",
           auth="user", roles=SELLERS, body=LabelIn, response=ShipmentOut, status=202, errors=(403, 404, 409))
async def buy_label(call: Call):
    b = call.body
    return await call.services.commerce.shipping.labels.buy(call.principal, uuid_param(call, what="order"),
                                                            service=b.service, rate_id=b.rate_id)


@api.route("POST", f"{API}/seller/orders/{{id}}/label/void",
           summary="Void the order's label before the carrier's first scan (a job asks the carrier: 202)",
           tag="shipping", auth="user", roles=SELLERS, response=ShipmentOut, status=202, errors=(403, 404, 409))
async def void_label(call: Call):
    return await call.services.commerce.shipping.voids.void(call.principal, uuid_param(call, what="order"))


@api.route("POST", f"{API}/seller/orders/{{id}}/tracking",
           summary="Shipped by yourself: the carrier and tracking number (the order becomes shipped)",
           tag="shipping", auth="user", roles=SELLERS, body=TrackingIn, status=201, errors=(403, 404, 409))
async def manual_tracking(call: Call):
    order_id = uuid_param(call, what="order")
    shipping = call.services.commerce.shipping
    await shipping.voids.manual(call.principal, order_id, call.body.carrier, call.body.tracking_number)
    return await call.services.commerce.orders.detail(call.principal, order_id)


@api.route("GET", f"{API}/shipments/{{id}}", summary="A shipment with its tracking timeline and status history",
           tag="shipping", auth="user", response=ShipmentOut, errors=(404,))
async def shipment(call: Call):
    return await call.services.commerce.shipping.labels.detail(call.principal, uuid_param(call, what="shipment"))


@api.route("GET", f"{API}/shipments/{{id}}/label.pdf",
           summary="The label to print (the seller and admins): the PDF, or a redirect to the carrier's",
           tag="shipping", auth="user", errors=(403, 404, 409), content_type="application/pdf")
async def label_pdf(call: Call):
    kind, value = await call.services.commerce.shipping.labels.label_file(call.principal,
                                                                          uuid_param(call, what="shipment"))
    if kind == "redirect":  # a Shippo label: the carrier's own URL
        return web.Response(status=302, headers={"Location": value, "Cache-Control": "private"})
    return web.Response(body=value, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="label-{call.param("id")}.pdf"', "Cache-Control": "private"})
