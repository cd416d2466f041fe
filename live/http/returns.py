"""Returns over REST (docs/shipping.md, "Returns"): the buyer asks for a return of a delivered order, lists and
cancels theirs; the seller (or an admin) lists the shop's, approves (a return label is bought), refuses, and marks
a return received with the refund and the units that go back to stock."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from live.auth.policy import SELLERS
from live.http.api import API, Api, Call
from live.http.catalog import uuid_param
from live.ids import UUID

api = Api()
REASON = Literal["damaged", "defective", "wrong_item", "not_as_described", "changed_mind", "other"]
STATUS = Literal["requested", "approved", "refused", "canceled", "in_transit", "delivered", "received", "refunded"]
MAX_LINES = 100         # live/commerce/shipping/returns.py MAX_LINES
MAX_QUANTITY = 10_000
NOTE_MAX = 1000
MAX_REFUND_MINOR = 10**12


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReturnLine(Strict):
    order_item_id: str = Field(pattern=UUID, description="an item (line) of the order")
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class ReturnIn(Strict):
    reason: REASON
    note: str | None = Field(default=None, max_length=NOTE_MAX)
    items: list[ReturnLine] = Field(min_length=1, max_length=MAX_LINES)


class CancelIn(Strict):
    reason: str | None = Field(default=None, max_length=NOTE_MAX)


class ApproveIn(Strict):
    note: str | None = Field(default=None, max_length=NOTE_MAX)


class RefuseIn(Strict):
    reason: str = Field(min_length=1, max_length=NOTE_MAX, description="told to the buyer")


class ReceiveIn(Strict):
    refund_minor: int | None = Field(
        default=None, ge=0, le=MAX_REFUND_MINOR,
        description="default: the returned lines' paid price (their share of the discount off, no shipping), at "
                    "most what is left to refund; 0: no refund")
    restock: list[ReturnLine] = Field(default_factory=list, max_length=MAX_LINES,
                                      description="the units that go back to stock (default: none)")
    note: str | None = Field(default=None, max_length=NOTE_MAX)


class ReturnsQuery(Strict):
    status: STATUS | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")


class ReturnItemOut(BaseModel):
    order_item_id: str
    variant_id: str
    title: str
    sku: str
    quantity: int
    restocked: int = Field(description="units put back in stock when received")
    unit_price_minor: int


class ReturnLabelOut(BaseModel):
    shipment_id: str = Field(description="GET /api/v1/shipments/{id}: its tracking; .../label.pdf: the label")
    status: str
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    label_url: str | None


class ReturnRefundOut(BaseModel):
    id: str
    status: Literal["requested", "succeeded", "failed"]
    amount_minor: int
    currency: str
    requested_at: datetime
    refunded_at: datetime | None


class ReturnHistoryOut(BaseModel):
    from_: STATUS | None = Field(alias="from")
    to: STATUS
    actor_kind: Literal["user", "seller", "admin", "system", "carrier"]
    actor_id: str | None
    reason: str | None
    at: datetime


class SellerOut(BaseModel):
    id: str
    name: str


class ReturnOut(BaseModel):
    id: str
    order_id: str
    order_number: str
    status: STATUS
    user_id: str
    seller: SellerOut
    reason: REASON
    note: str | None
    decision_note: str | None = Field(description="the seller's note; a refusal's reason")
    refund_minor: int | None = Field(description="what the receipt refunded (0: nothing)")
    currency: str
    items: list[ReturnItemOut]
    label: ReturnLabelOut | None = Field(description="the return label, once approved")
    refund: ReturnRefundOut | None
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    received_at: datetime | None


class ReturnDetailOut(ReturnOut):
    history: list[ReturnHistoryOut]


class ReturnPage(BaseModel):
    items: list[ReturnOut]
    next_cursor: str | None


def _lines(lines: list[ReturnLine]) -> list[tuple[str, int]]:
    return [(ln.order_item_id.lower(), ln.quantity) for ln in lines]


def _returns(call: Call):
    return call.services.commerce.shipping.returns


# ---- the buyer ----

@api.route("POST", f"{API}/me/orders/{{id}}/returns",
           summary="Ask to return items of a delivered order (within the seller's return window)", tag="returns",
           auth="user", body=ReturnIn, response=ReturnDetailOut, status=201, errors=(404, 409, 422))
async def request_return(call: Call):
    b = call.body
    return await _returns(call).request(call.principal, uuid_param(call, what="order"), reason=b.reason,
                                        note=b.note, items=_lines(b.items))


@api.route("GET", f"{API}/me/returns", summary="Your returns, newest first", tag="returns", auth="user",
           query=ReturnsQuery, response=ReturnPage)
async def my_returns(call: Call):
    q = call.query
    return await _returns(call).listing(call.principal, mine=True, status=q.status, cursor=q.cursor, limit=q.limit)


@api.route("GET", f"{API}/me/returns/{{id}}", summary="One of your returns: items, label, refund, history",
           tag="returns", auth="user", response=ReturnDetailOut, errors=(404,))
async def my_return(call: Call):
    return await _returns(call).detail(call.principal, uuid_param(call, what="return"), own=True)


@api.route("POST", f"{API}/me/returns/{{id}}/cancel", summary="Withdraw your return request (before it is decided)",
           tag="returns", auth="user", body=CancelIn, response=ReturnDetailOut, errors=(404, 409))
async def cancel_return(call: Call):
    return await _returns(call).cancel(call.principal, uuid_param(call, what="return"), call.body.reason)


# ---- the seller (or an admin) ----

@api.route("GET", f"{API}/seller/returns", summary="Your shop's returns (an admin's: every shop's), newest first",
           tag="returns", auth="user", roles=SELLERS, query=ReturnsQuery, response=ReturnPage)
async def seller_returns(call: Call):
    q = call.query
    return await _returns(call).listing(call.principal, mine=False, status=q.status, cursor=q.cursor,
                                        limit=q.limit)


@api.route("GET", f"{API}/seller/returns/{{id}}", summary="One of your shop's returns", tag="returns",
           auth="user", roles=SELLERS, response=ReturnDetailOut, errors=(404,))
async def seller_return(call: Call):
    return await _returns(call).detail(call.principal, uuid_param(call, what="return"))


@api.route("POST", f"{API}/seller/returns/{{id}}/approve",
           summary="Approve a return: a return label is bought from the buyer's address to your ship-from",
           tag="returns", auth="user", roles=SELLERS, body=ApproveIn, response=ReturnDetailOut,
           errors=(403, 404, 409, 422))
async def approve_return(call: Call):
    return await _returns(call).approve(call.principal, uuid_param(call, what="return"), call.body.note)


@api.route("POST", f"{API}/seller/returns/{{id}}/refuse", summary="Refuse a return, with the reason",
           tag="returns", auth="user", roles=SELLERS, body=RefuseIn, response=ReturnDetailOut,
           errors=(403, 404, 409))
async def refuse_return(call: Call):
    return await _returns(call).refuse(call.principal, uuid_param(call, what="return"), call.body.reason)


@api.route("POST", f"{API}/seller/returns/{{id}}/receive",
           summary="The return is back: refund (whole or partial) and put units back in stock",
           tag="returns", auth="user", roles=SELLERS, body=ReceiveIn, response=ReturnDetailOut,
           errors=(403, 404, 409, 422))
async def receive_return(call: Call):
    b = call.body
    return await _returns(call).receive(call.principal, uuid_param(call, what="return"), refund_minor=b.refund_minor,
                                        restock=_lines(b.restock), note=b.note)
