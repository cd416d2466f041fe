"""Seeding for the fulfillment benchmarks (loadtests/fulfillment.py), through the project's own services and db
modules on the benchmark's database, so the orders, rates and label jobs are the server's own rows:

- sellers (users with a shop) whose ship-from address is saved through `SellerShippingSettings.put` (checked by
  the carrier: the fake Shippo's /addresses/ or the sandbox rules), one product each;
- buyers; for every order a rate quoted through the carrier (`Carrier.rates`: POST /shipments/ at the fake
  Shippo, or the sandbox table), the cheapest kept in `orders.shipping_rate` in the shape the checkout stores;
- paid orders written with db.orders (insert_order, insert_items, history pending_payment -> paid) and
  db.shipping.set_order_shipping: the checkout's statements, without the cart, payment and stock steps, which
  labels never read (a shortcut to seed 1,000 orders in seconds);
- the label purchase as the seller asks for it (`Labels.buy`, the service of
  POST /api/v1/seller/orders/{id}/label): a `pending` shipment and its `shipping.buy_label` job per order.

`labelled` then runs those jobs in this process (`Jobs.drain`): used for the sandbox carrier's shipments of the
tracking storm, whose label purchase is not what is measured."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

from db import Database
from db import catalog as catalog_db
from db import orders as orders_db
from db import shipping as shipping_db
from db import users as users_db
from live.auth.principal import SYSTEM, Principal
from live.commerce.shipping.carriers.base import Address, Parcel
from live.config import Settings
from live.container import Services

SHIP_FROM = {"name": "Bench Shop", "line1": "1 Congress Ave", "city": "Austin", "state": "TX", "postal_code": "78701",
             "country": "US", "phone": "+15125550100"}
DESTINATIONS = ({"line1": "5 Broadway", "city": "New York", "state": "NY", "postal_code": "10001"},
                {"line1": "1 Market St", "city": "San Francisco", "state": "CA", "postal_code": "94105"},
                {"line1": "233 S Wacker Dr", "city": "Chicago", "state": "IL", "postal_code": "60606"},
                {"line1": "400 Broad St", "city": "Seattle", "state": "WA", "postal_code": "98109"})
PARCEL = Parcel(weight_g=500, length_cm=20.0, width_cm=15.0, height_cm=10.0)
PRICE_MINOR = 2500
SELLERS = 10  # at most; orders go round-robin over them
BUYERS = 100  # at most
QUOTE_CONCURRENCY = 16  # carrier quotes in flight
BUY_CONCURRENCY = 8  # label requests (one transaction each) in flight
ORDERS_PER_TX = 100


@dataclass
class Seeded:
    orders: list[str] = field(default_factory=list)  # order ids
    shipments: list[str] = field(default_factory=list)  # their outbound shipment ids, same order
    seconds: dict[str, float] = field(default_factory=dict)  # quote, orders, labels (, drain)


async def _parties(services: Services, tag: str, n: int) -> tuple[list[dict], list[str]]:
    """({seller_id, user_id, name, product_id, variant_id} per seller, buyer user ids)."""
    sellers, buyers = [], []
    async with services.db.tx(SYSTEM) as conn:
        for i in range(min(SELLERS, n)):
            name = f"{tag}-seller-{i}"
            user = await users_db.find_or_create_by_name(conn, name, "seller")
            shop = await users_db.ensure_seller(conn, str(user["id"]), name, name)
            product = await catalog_db.insert_product(conn, shop["id"], {"title": f"{name} mug"})
            variant = await catalog_db.insert_variant(conn, product, {"sku": f"{name}-mug", "price_minor": PRICE_MINOR,
                                                                      "currency": "USD", "stock": n})
            sellers.append({"seller_id": shop["id"], "user_id": str(user["id"]), "name": name,
                            "product_id": product, "variant_id": variant})
        for i in range(min(BUYERS, n)):
            buyers.append(str((await users_db.find_or_create_by_name(conn, f"{tag}-buyer-{i}", "customer"))["id"]))
    for s in sellers:  # the seller's own call: the address is checked by the carrier
        await services.commerce.shipping.seller_settings.put(Principal(s["user_id"], "seller", s["name"]),
                                                             {"ship_from": SHIP_FROM})
    return sellers, buyers


def _destination(i: int) -> dict:
    return {"name": f"Buyer {i}", **DESTINATIONS[i % len(DESTINATIONS)], "country": "US"}


async def _quotes(services: Services, n: int) -> list[dict]:
    """The cheapest rate for each order's destination, as orders.shipping_rate keeps it."""
    carrier = services.commerce.shipping.carrier
    slots = asyncio.Semaphore(QUOTE_CONCURRENCY)
    origin = Address.of(SHIP_FROM)

    async def one(i: int) -> dict:
        async with slots:
            rates = await carrier.rates(origin, Address.of(_destination(i)), PARCEL, "USD")
        best = min(rates, key=lambda r: r.amount_minor)
        return {**best.as_dict(), "rate_id": None, "carrier_amount_minor": best.amount_minor,
                "parcel": {"weight_g": PARCEL.weight_g, "length_cm": PARCEL.length_cm, "width_cm": PARCEL.width_cm,
                           "height_cm": PARCEL.height_cm}, "free_shipping": False}

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _orders(services: Services, tag: str, sellers: list[dict], buyers: list[str],
                  rates: list[dict]) -> list[tuple[str, dict]]:
    """Paid orders, ORDERS_PER_TX per transaction: [(order id, its seller)]."""
    out: list[tuple[str, dict]] = []
    for start in range(0, len(rates), ORDERS_PER_TX):
        async with services.db.tx(SYSTEM) as conn:
            for i in range(start, min(start + ORDERS_PER_TX, len(rates))):
                seller, buyer, rate = sellers[i % len(sellers)], buyers[i % len(buyers)], rates[i]
                oid = await orders_db.insert_order(
                    conn, user_id=buyer, seller_id=seller["seller_id"], livestream_id=None, subtotal=PRICE_MINOR,
                    discount=0, total=PRICE_MINOR, currency="USD", coupon_id=None, address=_destination(i),
                    checkout_key=f"{tag}-{uuid.uuid4().hex}", status="paid")
                await shipping_db.set_order_shipping(conn, oid, rate["amount_minor"], rate)
                await orders_db.insert_items(conn, oid, [{
                    "product_id": seller["product_id"], "variant_id": seller["variant_id"], "title": "Bench mug",
                    "sku": f"{seller['name']}-mug", "quantity": 1, "price_minor": PRICE_MINOR, "currency": "USD",
                    "livestream_id": None}])
                await orders_db.add_history(conn, [oid], None, "pending_payment", buyer, "user", "checkout")
                await orders_db.add_history(conn, [oid], "pending_payment", "paid", None, "system",
                                            "benchmark seed: paid")
                out.append((oid, seller))
    return out


async def _buy(services: Services, orders: list[tuple[str, dict]]) -> list[str]:
    labels = services.commerce.shipping.labels
    slots = asyncio.Semaphore(BUY_CONCURRENCY)

    async def one(oid: str, seller: dict) -> str:
        async with slots:
            return (await labels.buy(Principal(seller["user_id"], "seller", seller["name"]), oid))["id"]

    return list(await asyncio.gather(*(one(o, s) for o, s in orders)))


async def seed(settings: Settings, dsn: str, n: int, tag: str, *, labelled: bool = False) -> Seeded:
    """n paid orders with a quoted rate and a requested label (a queued `shipping.buy_label` job each); with
    `labelled`, those jobs are run here until none is left."""
    tag = f"{tag}-{uuid.uuid4().hex[:6]}"  # user, shop and SKU names unique per run (a reused database)
    db = await Database.connect(dsn, min_size=1, max_size=BUY_CONCURRENCY + 2)
    services = Services(settings, db)
    out = Seeded()
    try:
        sellers, buyers = await _parties(services, tag, n)
        t = time.monotonic()
        rates = await _quotes(services, n)
        out.seconds["quote"] = time.monotonic() - t
        t = time.monotonic()
        orders = await _orders(services, tag, sellers, buyers, rates)
        out.seconds["orders"] = time.monotonic() - t
        t = time.monotonic()
        out.shipments = await _buy(services, orders)
        out.orders = [o for o, _ in orders]
        out.seconds["labels"] = time.monotonic() - t
        if labelled:
            t = time.monotonic()
            await services.jobs.drain()
            out.seconds["drain"] = time.monotonic() - t
    finally:
        await services.commerce.stop()
        await db.close()
    return out
