"""Seeding for the notification benchmark (loadtests/notify.py), set-based, straight into the benchmark's database:

- the followers (`users` with an email each, one INSERT ... SELECT over generate_series), made once and reused by
  every run; the chatters of the audience room likewise;
- per run a new seller (so the follows' email cap, one email per seller per follower per hour, never holds a
  later run back) with a few active products, and the follows of every follower (one INSERT ... SELECT);
- tokens signed with the server's JWT_SECRET for the seller, the online followers and the chatters (the claims
  live/auth/tokens.py issues).

The streams themselves are made through the server's REST API by the seller (loadtests/notify.py)."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import asyncpg
import jwt

from db import catalog as catalog_db
from db import users as users_db

PRODUCTS = 3  # per seller, attached to its stream
TOKEN_TTL_SECONDS = 6 * 3600


def token(secret: str, issuer: str, user_id: str, role: str, name: str) -> str:
    now = round(time.time(), 3)
    return jwt.encode({"sub": user_id, "role": role, "name": name, "iss": issuer, "iat": now,
                       "exp": int(now) + TOKEN_TTL_SECONDS}, secret, algorithm="HS256")


@dataclass
class Seller:
    user_id: str
    seller_id: str
    name: str
    slug: str
    product_ids: list[str]
    token: str


async def users(dsn: str, prefix: str, n: int) -> list[str]:
    """The ids of users `<prefix>-1` .. `<prefix>-n` (email `<prefix>-i@bench.example`), made if missing; in order."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO users (name, email, role)
                   SELECT $1 || '-' || g, $1 || '-' || g || '@bench.example', 'customer'
                   FROM generate_series(1, $2) AS g
                   WHERE NOT EXISTS (SELECT 1 FROM users u WHERE lower(u.email) = $1 || '-' || g || '@bench.example')
                """, prefix, n)
            rows = await conn.fetch(
                """SELECT u.id::text FROM generate_series(1, $2) AS g
                   JOIN users u ON lower(u.email) = $1 || '-' || g || '@bench.example' ORDER BY g""", prefix, n)
    finally:
        await conn.close()
    return [r["id"] for r in rows]


async def seller(dsn: str, tag: str, secret: str, issuer: str) -> Seller:
    """A new seller (user, shop) with PRODUCTS active products, and its token."""
    name = f"bench-{tag}"
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            user = await users_db.find_or_create_by_name(conn, name, "seller")
            shop = await users_db.ensure_seller(conn, str(user["id"]), f"Bench shop {tag}", name)
            products = []
            for i in range(PRODUCTS):
                pid = await catalog_db.insert_product(conn, shop["id"], {"title": f"{name} item {i}",
                                                                         "status": "active"})
                await catalog_db.insert_variant(conn, pid, {"sku": f"{name}-{i}", "price_minor": 1500 + 100 * i,
                                                            "currency": "USD", "stock": 1000})
                products.append(pid)
    finally:
        await conn.close()
    return Seller(str(user["id"]), shop["id"], name, shop["slug"], products,
                  token(secret, issuer, str(user["id"]), "seller", name))


async def follow(dsn: str, seller_id: str, follower_ids: list[str]) -> float:
    """Every follower follows the seller (one statement); the seconds it took."""
    conn = await asyncpg.connect(dsn)
    try:
        t = time.perf_counter()
        await conn.execute("INSERT INTO follows (seller_id, follower_id) SELECT $1::uuid, f FROM unnest($2::uuid[]) f "
                           "ON CONFLICT DO NOTHING", seller_id, follower_ids)
        await conn.execute("ANALYZE follows")
        return time.perf_counter() - t
    finally:
        await conn.close()


def run_tag() -> str:
    return uuid.uuid4().hex[:8]
