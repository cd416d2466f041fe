"""The live room's cart events: cart:add, cart:update, cart:remove. Each acks with the buyer's cart.
Registered on the gateway (`register(gateway)`); parsing and error mapping are the gateway's.

The buyer is not looked up (a flash sale's thousands of adds cost no query of their own): a token of a user who
does not exist fails in the cart statement (`unauthorized`, `unknown user`, nothing written), and the connection's
later cart events are refused at once."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from live.auth import policy
from live.commerce.cart import MAX_LINE_QTY
from live.errors import UnknownUser
from live.ids import UUID


class CartIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    variant_id: str = Field(pattern=UUID)
    stream_id: str | None = Field(default=None, min_length=1, max_length=120)


class CartAddIn(CartIn):
    qty: int = Field(default=1, ge=1, le=MAX_LINE_QTY)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class CartUpdateIn(CartIn):
    qty: int = Field(ge=0, le=MAX_LINE_QTY)


def register(gateway) -> None:
    def cart():
        return gateway.services.commerce.cart

    def signed_in(conn):
        policy.signed_in(conn.principal, "sign in to add to your cart")
        if conn.unknown:
            raise UnknownUser()
        return conn.principal

    def stream_of(conn, p: CartIn) -> str | None:
        """Where the buyer is shopping from: the stream named, else the one stream the socket is in."""
        if p.stream_id:
            return p.stream_id
        return next(iter(conn.rooms)) if len(conn.rooms) == 1 else None

    async def add(conn, p: CartAddIn) -> dict:
        return await cart().add(signed_in(conn), p.variant_id.lower(), p.qty, stream=stream_of(conn, p),
                                key=p.idempotency_key)

    async def update(conn, p: CartUpdateIn) -> dict:
        return await cart().set_quantity(signed_in(conn), p.variant_id.lower(), p.qty, stream=stream_of(conn, p))

    async def remove(conn, p: CartIn) -> dict:
        return await cart().remove(signed_in(conn), p.variant_id.lower())

    gateway.add_events({"cart:add": (CartAddIn, add), "cart:update": (CartUpdateIn, update),
                        "cart:remove": (CartIn, remove)})
