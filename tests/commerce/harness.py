"""Helpers of the commerce tests (tests/commerce/; the `shop` fixture is in tests/conftest.py): the app on a
real port with a real PostgreSQL, users with tokens, products created through the REST API, stock read straight
from the database, and the ledger invariant checked against the counters."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from db import inventory as inventory_db
from live.appkeys import SERVICES
from live.auth.principal import SYSTEM
from tests.helpers import Viewer, make_settings
from tests.rooms.harness import make_user

API = "/api/v1"
ADDRESS = {"name": "Ada Buyer", "line1": "1 Market St", "city": "Lagos", "postal_code": "100001", "country": "NG"}


@dataclass
class Actor:
    id: str
    token: str
    name: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


class Shop:
    def __init__(self, client):
        self.client = client

    @property
    def services(self):
        return self.client.app[SERVICES]

    @property
    def base(self) -> str:
        return str(self.client.make_url("/")).rstrip("/")

    async def user(self, name: str | None = None, role: str = "customer") -> Actor:
        name = name or f"{role}-{uuid.uuid4().hex[:8]}"
        async with self.services.db.tx(SYSTEM) as conn:
            user = await make_user(conn, name, role)
        return Actor(user["id"], self.services.token_for(user), name)

    async def seller(self, name: str | None = None) -> Actor:
        return await self.user(name or f"seller-{uuid.uuid4().hex[:8]}", "seller")

    async def call(self, method: str, path: str, actor: Actor | None = None, *, json=None, headers=None,
                   expect: int | None = 200):
        h = dict(actor.headers) if actor else {}
        h.update(headers or {})
        resp = await self.client.request(method, API + path, json=json, headers=h)
        body = await resp.json() if resp.status != 204 else None
        if expect is not None:
            assert resp.status == expect, (resp.status, body)
        return body if expect is not None else (resp.status, body, resp.headers)

    async def product(self, seller: Actor, *, title: str = "Thing", description: str | None = None,
                      variants: list[dict] | None = None, stock: int = 10, price: int = 1000,
                      currency: str = "USD", status: str = "active", category_id: str | None = None) -> dict:
        variants = variants or [{"sku": f"SKU-{uuid.uuid4().hex[:10]}", "price_minor": price, "currency": currency,
                                 "stock": stock}]
        body = {"title": title, "variants": variants, "status": status}
        if description:
            body["description"] = description
        if category_id:
            body["category_id"] = category_id
        return await self.call("POST", "/products", seller, json=body, expect=201)

    async def counters(self, variant_id: str) -> dict:
        async with self.services.db.tx(SYSTEM) as conn:
            row = await conn.fetchrow("SELECT on_hand, reserved, sold FROM product_variants WHERE id = $1::uuid",
                                      variant_id)
        return dict(row)

    async def assert_ledger(self, variant_id: str) -> dict:
        """The counters equal what the ledger sums to, and never oversell."""
        counters = await self.counters(variant_id)
        async with self.services.db.tx(SYSTEM) as conn:
            totals = await inventory_db.ledger_totals(conn, variant_id)
        assert counters == totals, (counters, totals)
        assert counters["reserved"] >= 0 and counters["sold"] >= 0
        assert counters["reserved"] + counters["sold"] <= counters["on_hand"]
        return counters

    async def cart_units(self, variant_id: str) -> int:
        """Units held by cart lines (reservation not yet released) for a variant."""
        async with self.services.db.tx(SYSTEM) as conn:
            return await conn.fetchval(
                """SELECT coalesce(sum(quantity), 0) FROM cart_items ci JOIN carts c ON c.id = ci.cart_id
                   WHERE ci.variant_id = $1::uuid AND ci.reserved_until IS NOT NULL AND c.status = 'active'""",
                variant_id)

    async def live_stream(self, seller: Actor, slug: str | None = None, product_ids: list[str] = ()) -> dict:
        slug = slug or f"s-{uuid.uuid4().hex[:8]}"
        stream = await self.call("POST", "/livestreams", seller,
                                 json={"title": "Flash sale", "slug": slug, "product_ids": list(product_ids)},
                                 expect=201)
        await self.call("POST", f"/livestreams/{stream['id']}/start", seller)
        return stream

    async def viewer(self, actor: Actor | None = None) -> Viewer:
        return await Viewer(self.base, actor.token if actor else None).connect()

    async def checkout(self, buyer: Actor, key: str | None = None, *, expect: int | None = 201, **body):
        payload = {"address": ADDRESS, **body}
        return await self.call("POST", "/checkout", buyer, json=payload,
                               headers={"Idempotency-Key": key or uuid.uuid4().hex}, expect=expect)

    async def expire_reservations(self, variant_id: str | None = None, *, ago: float = 1.0) -> None:
        """Time passes: every (or one variant's) reservation, and the hold it belongs to, ended `ago` seconds ago."""
        async with self.services.db.tx(SYSTEM) as conn:
            await conn.execute(
                """UPDATE cart_items SET reserved_until = now() - make_interval(secs => $2)
                   WHERE reserved_until IS NOT NULL AND ($1::uuid IS NULL OR variant_id = $1::uuid)""",
                variant_id, ago)
            await conn.execute(
                """UPDATE cart_holds SET expires_at = now() - make_interval(secs => $2)
                   WHERE $1::uuid IS NULL OR variant_id = $1::uuid""", variant_id, ago)


async def make_client(tmp_path, dsn, aiohttp_client, **settings):
    from live.app import create_app

    return await aiohttp_client(create_app(make_settings(tmp_path, **settings), dsn, run_migrations=False))


async def crowd(shop, n: int) -> list:
    """n customers created in one statement (fast), with tokens."""
    async with shop.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch(
            """INSERT INTO users (name, role) SELECT 'crowd-' || $1 || '-' || g, 'customer'
               FROM generate_series(1, $2) g RETURNING id::text AS id, name, role""", uuid.uuid4().hex[:6], n)
    return [Actor(r["id"], shop.services.token_for(r), r["name"]) for r in rows]


async def assert_sold_exactly(shop, vid: str, units: int, winners: int, reservations: int | None = None) -> None:
    counters = await shop.assert_ledger(vid)
    assert counters == {"on_hand": units, "reserved": winners, "sold": 0}
    assert await shop.cart_units(vid) == winners
    async with shop.services.db.tx(SYSTEM) as conn:
        events = await conn.fetchval(
            "SELECT count(*) FROM inventory_events WHERE variant_id = $1::uuid AND kind = 'reservation'", vid)
    assert events == (winners if reservations is None else reservations)
