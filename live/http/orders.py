"""Orders over REST: the buyer's orders and cancellation, the seller's order list and status moves, and the
seller's per-stream analytics."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from live.auth.policy import SELLERS
from live.http.api import API, Api, Call
from live.http.catalog import uuid_param
from live.http.shipments import OrderShipmentOut, ShipmentOut

api = Api()
STATUSES = Literal["pending_payment", "paid", "processing", "label_created", "shipped", "in_transit",
                   "out_for_delivery", "delivered", "delivery_failed", "returned_to_sender", "canceled", "refunded"]


class MyOrdersQuery(BaseModel):
    status: STATUSES | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")


class SellerOrdersQuery(MyOrdersQuery):
    stream_id: str | None = Field(default=None, max_length=120,
                                  description="orders attributed to this stream (id or slug)")
    since: datetime | None = Field(default=None, alias="from", description="created at or after (ISO 8601)")
    until: datetime | None = Field(default=None, alias="to", description="created before (ISO 8601)")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str | None = Field(default=None, max_length=500)


class OrderSellerOut(BaseModel):
    id: str
    name: str


class OrderItemOut(BaseModel):
    id: str
    product_id: str
    variant_id: str
    title: str
    sku: str
    quantity: int
    unit_price_minor: int
    currency: str
    line_total_minor: int
    livestream_id: str | None


class OrderRefundOut(BaseModel):
    status: str
    amount_minor: int
    currency: str
    requested_at: datetime
    refunded_at: datetime | None


class ShippingRateOut(BaseModel):
    carrier: str
    service: str
    service_name: str
    estimated_days: int | None
    amount_minor: int = Field(description="what the buyer pays for shipping (0 with free shipping)")
    currency: str
    free_shipping: bool


class OrderOut(BaseModel):
    id: str
    number: str
    status: STATUSES
    user_id: str
    seller: OrderSellerOut
    livestream_id: str | None
    subtotal_minor: int
    discount_minor: int
    shipping_minor: int
    total_minor: int
    currency: str
    shipping_rate: ShippingRateOut | None = Field(
        description="the rate chosen at checkout (null: the seller ships without a carrier)")
    coupon_code: str | None
    shipping_address: dict | None
    created_at: datetime
    updated_at: datetime
    refund: OrderRefundOut | None = Field(description="the refund of a canceled paid order")
    items: list[OrderItemOut]
    shipment: OrderShipmentOut | None = Field(description="the outbound shipment (the live one first)")


class OrderHistoryOut(BaseModel):
    from_: str | None = Field(alias="from")
    to: str
    actor_id: str | None
    actor_kind: str
    reason: str | None
    at: datetime


class OrderPaymentOut(BaseModel):
    id: str
    provider: str
    status: str
    amount_minor: int
    currency: str
    refund_due_minor: int
    refunded_minor: int
    issue: str | None
    provider_ref: str | None = Field(default=None, description="the buyer only")
    client_secret: str | None = Field(default=None, description="the buyer only")
    authorization_url: str | None = Field(default=None, description="the buyer only")


class OrderDetailOut(OrderOut):
    history: list[OrderHistoryOut]
    shipments: list[ShipmentOut]
    payment: OrderPaymentOut | None


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # shipped: POST /seller/orders/{id}/tracking (or the carrier's first scan); delivered: manual tracking only
    status: Literal["processing", "delivered", "canceled"]
    reason: str | None = Field(default=None, max_length=500)


@api.route("GET", f"{API}/me/orders", summary="Your orders, newest first", tag="orders", auth="user",
           query=MyOrdersQuery, response=OrderPage)
async def my_orders(call: Call):
    q = call.query
    return await call.services.commerce.orders.listing(call.principal, status=q.status, cursor=q.cursor,
                                                       limit=q.limit, user_id=call.principal.user_id)


@api.route("GET", f"{API}/me/orders/{{id}}", summary="One of your orders: items, history, payment, refund, shipping",
           tag="orders", auth="user", response=OrderDetailOut, errors=(404,))
async def my_order(call: Call):
    return await call.services.commerce.orders.detail(call.principal, uuid_param(call, what="order"), own=True)


@api.route("POST", f"{API}/me/orders/{{id}}/cancel",
           summary="Cancel your order (unpaid: with the rest of its checkout; paid: refunded automatically)",
           tag="orders", auth="user", body=CancelIn, response=OrderDetailOut, errors=(404, 409))
async def cancel_my_order(call: Call):
    return await call.services.commerce.orders.cancel_by_buyer(call.principal, uuid_param(call, what="order"),
                                                               call.body.reason)


@api.route("GET", f"{API}/seller/orders", summary="Your shop's orders; filter by status, stream and dates",
           tag="orders", auth="user", roles=SELLERS, query=SellerOrdersQuery, response=OrderPage,
           errors=(404,))
async def seller_orders(call: Call):
    q = call.query
    p = call.principal
    return await call.services.commerce.orders.listing(p, status=q.status, cursor=q.cursor, limit=q.limit,
                                                       stream=q.stream_id, since=q.since, until=q.until,
                                                       sellers_of=None if p.is_admin else p.user_id)


@api.route("GET", f"{API}/seller/orders/{{id}}", summary="One of your shop's orders", tag="orders",
           auth="user", roles=SELLERS, response=OrderDetailOut, errors=(404,))
async def seller_order(call: Call):
    return await call.services.commerce.orders.detail(call.principal, uuid_param(call, what="order"))


@api.route("POST", f"{API}/seller/orders/{{id}}/status",
           summary="Move an order along (processing; delivered if tracked by hand) or cancel it before the first scan",
           tag="orders", auth="user", roles=SELLERS, body=StatusIn, response=OrderDetailOut,
           errors=(404, 409))
async def seller_order_status(call: Call):
    b = call.body
    return await call.services.commerce.orders.seller_set_status(call.principal, uuid_param(call, what="order"),
                                                                 b.status, b.reason)


@api.route("GET", f"{API}/livestreams/{{id}}/analytics",
           summary="The stream's sales analytics (its seller and admins)", tag="livestreams", auth="user",
           errors=(403, 404))
async def stream_analytics(call: Call):
    return await call.services.commerce.analytics.for_stream(call.principal, call.param("id"))
