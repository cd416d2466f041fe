"""Helpers shared by the payments tests (their fixtures are in tests/payments/conftest.py): a recording order
side (installed as `services.commerce` where a test checks only the webhook route's part), and a payment with
one order written straight into the database."""
from __future__ import annotations

import uuid

from db import webhooks as webhooks_db
from live.auth.principal import SYSTEM
from live.commerce.payments.base import PaymentEvent
from live.errors import DomainError


class RecordingCommerce:
    """Stands in for commerce's `apply_payment_event`: records every call; can be told to fail."""

    def __init__(self) -> None:
        self.events: list[PaymentEvent] = []
        self.fail_with: Exception | None = None

    async def apply_payment_event(self, event: PaymentEvent) -> str:
        self.events.append(event)
        if self.fail_with is not None:
            raise self.fail_with
        return f"recorded {event.kind}"


async def stored_event(services, provider: str, event_key: str):
    async with services.db.tx(SYSTEM) as conn:
        return await webhooks_db.get(conn, provider, event_key)


async def count_events(services) -> int:
    async with services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT count(*) FROM webhook_events")


async def insert_payment(services, *, provider: str = "sandbox", amount_minor: int = 1234, currency: str = "USD",
                         status: str = "requires_action", title: str = "Red scarf") -> dict:
    """A buyer, a seller with one product, one order and its payment (rows only; no commerce logic)."""
    suffix = uuid.uuid4().hex[:8]
    async with services.db.tx(SYSTEM) as conn:
        buyer = await conn.fetchval("INSERT INTO users (name, role) VALUES ($1, 'customer') RETURNING id::text",
                                    f"buyer-{suffix}")
        seller_user = await conn.fetchval("INSERT INTO users (name, role) VALUES ($1, 'seller') RETURNING id::text",
                                          f"seller-{suffix}")
        seller = await conn.fetchval(
            "INSERT INTO sellers (user_id, display_name, slug) VALUES ($1::uuid, $2, $2) RETURNING id::text",
            seller_user, f"Shop {suffix}")
        product = await conn.fetchval(
            "INSERT INTO products (seller_id, title, status) VALUES ($1::uuid, $2, 'active') RETURNING id::text",
            seller, title)
        variant = await conn.fetchval(
            """INSERT INTO product_variants (product_id, sku, price_minor, currency, on_hand, sold)
               VALUES ($1::uuid, $2, $3, $4, 5, 1) RETURNING id::text""", product, f"SKU-{suffix}",
            amount_minor, currency)
        order = await conn.fetchrow(
            """INSERT INTO orders (user_id, seller_id, subtotal_minor, total_minor, currency)
               VALUES ($1::uuid, $2::uuid, $3, $3, $4) RETURNING id::text, number""",
            buyer, seller, amount_minor, currency)
        await conn.execute(
            """INSERT INTO order_items (order_id, product_id, variant_id, title, sku, quantity, unit_price_minor,
                                        currency) VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, 1, $6, $7)""",
            order["id"], product, variant, title, f"SKU-{suffix}", amount_minor, currency)
        payment = await conn.fetchval(
            """INSERT INTO payments (user_id, provider, status, amount_minor, currency)
               VALUES ($1::uuid, $2, $3, $4, $5) RETURNING id::text""",
            buyer, provider, status, amount_minor, currency)
        await conn.execute("INSERT INTO payment_orders (payment_id, order_id) VALUES ($1::uuid, $2::uuid)",
                           payment, order["id"])
    return {"buyer_id": buyer, "seller_id": seller, "order_id": order["id"], "order_number": order["number"],
            "payment_id": payment, "amount_minor": amount_minor, "currency": currency}


def domain_error(code: str, status: int) -> DomainError:
    """A DomainError of `code`, whose registered status is `status` (live/errors.py Code)."""
    error = DomainError(code, f"test {code}")
    assert error.status == status
    return error
