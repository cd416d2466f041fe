"""The buyer's cart over REST (the live room has the same operations as cart:* socket events)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from live.commerce.cart import MAX_LINE_QTY
from live.http.api import API, Api, Call
from live.http.catalog import UUID, uuid_param

api = Api()


class CartAddBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant_id: str = Field(pattern=UUID)
    qty: int = Field(default=1, ge=1, le=MAX_LINE_QTY)
    stream_id: str | None = Field(default=None, min_length=1, max_length=120,
                                  description="the live stream (id or slug) the buyer adds from")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200,
                                        description="a retry with the same key does not reserve again")


class CartQtyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qty: int = Field(ge=0, le=MAX_LINE_QTY, description="the new quantity; 0 removes the line")


def _cart(call: Call):
    return call.services.commerce.cart


@api.route("GET", f"{API}/me/cart", summary="Your cart (reservations, availability, subtotal)", tag="cart",
           auth="user")
async def get_cart(call: Call):
    return {"cart": await _cart(call).get(call.principal)}


@api.route("POST", f"{API}/me/cart/items", summary="Add to your cart, reserving the units", tag="cart",
           auth="user", body=CartAddBody, errors=(404, 409))
async def add_to_cart(call: Call):
    b = call.body
    key = b.idempotency_key or call.request.headers.get("Idempotency-Key") or None
    return await _cart(call).add(call.principal, b.variant_id.lower(), b.qty, stream=b.stream_id, key=key)


@api.route("PATCH", f"{API}/me/cart/items/{{variant_id}}", summary="Change a line's quantity (0 removes it)",
           tag="cart", auth="user", body=CartQtyBody, errors=(404, 409))
async def change_cart_item(call: Call):
    variant_id = uuid_param(call, "variant_id", "variant")
    return await _cart(call).set_quantity(call.principal, variant_id, call.body.qty)


@api.route("DELETE", f"{API}/me/cart/items/{{variant_id}}", summary="Remove a line, releasing its units",
           tag="cart", auth="user", errors=(404,))
async def remove_cart_item(call: Call):
    return await _cart(call).remove(call.principal, uuid_param(call, "variant_id", "variant"))
