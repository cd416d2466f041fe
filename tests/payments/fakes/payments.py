"""Helpers shared by the payments tests (their fixtures are in tests/payments/conftest.py): a recording order
side (installed as `services.commerce` where a test checks only the webhook route's part), and a payment with
one order written straight into the database."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from db import webhooks as webhooks_db
from live.auth.principal import SYSTEM
from live.commerce.payments.base import PaymentEvent
from live.errors import DomainError
from tests.helpers import until


class RecordingCommerce:
    """Stands in for commerce's `apply_payment_event`: records every call; can be told to fail."""

    def __init__(self) -> None:
        self.events: list[PaymentEvent] = []
        self.fail_with: Exception | None = None

    async def wait(self, count: int = 1) -> list[PaymentEvent]:
        """The events applied, once there are `count` (their webhooks' jobs ran)."""
        await until(lambda: len(self.events) >= count, what=f"{count} events applied")
        return self.events

    async def apply_payment_event(self, event: PaymentEvent) -> str:
        self.events.append(event)
        if self.fail_with is not None:
            raise self.fail_with
        return f"recorded {event.kind}"


async def settled(services, reply: dict, timeout: float = 10.0) -> dict:
    """A webhook's reply once its `webhook.process` job has run: a `queued` reply is waited on until the stored
    event is processed (or its processing failed), then answered as {"received", "result"} (what the order side made
    of it), {"received", "error": code} (refused for good) or {"received", "processing_error": message} (its job
    is to try again); other replies (duplicate, ignored) as they are."""
    if not reply.get("queued"):
        return reply
    row = None

    async def done() -> bool:
        nonlocal row
        async with services.db.tx(SYSTEM) as conn:
            row = await conn.fetchrow("SELECT processed_at, error, result FROM webhook_events WHERE id = $1",
                                      reply["event_id"])
        return row["processed_at"] is not None or row["error"] is not None

    await until(done, timeout, what="the webhook's job")
    if row["processed_at"] is None:
        return {"received": True, "processing_error": row["error"]}
    if row["error"]:
        return {"received": True, "error": row["error"].split(":")[0]}
    return {"received": True, "result": row["result"]}


@dataclass
class Answer:
    """A webhook's HTTP answer whose body is what `settled` makes of it (read once the event's job has run)."""
    status: int
    body: dict

    async def json(self) -> dict:
        return self.body

    async def text(self) -> str:
        return str(self.body)


async def answered(services, resp) -> Answer:
    body = await resp.json()
    return Answer(resp.status, await settled(services, body) if resp.status == 200 else body)


async def retries_due(services, kind: str = "webhook.process") -> None:
    """The jobs of `kind` waiting for a retry are due now (instead of waiting out their backoff)."""
    async with services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE pgqueuer SET execute_after = now() WHERE entrypoint = $1 AND status = 'queued'",
                           kind)


async def processed(services, provider: str, event_key: str) -> dict:
    """The stored event once its job has processed it."""
    row = None

    async def done() -> bool:
        nonlocal row
        row = await stored_event(services, provider, event_key)
        return row is not None and row["processed_at"] is not None

    await until(done, what=f"event {event_key} processed")
    return dict(row)


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
