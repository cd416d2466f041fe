"""The statements of the demo data (live/seed.py): each idempotent, so seeding may run any number of times."""
from __future__ import annotations

import asyncpg


async def has_seller(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM sellers)")


async def give_email(conn: asyncpg.Connection, user_id, email: str) -> None:
    """Give the demo seller an address (once: kept if it has one, skipped if another user has this one)."""
    await conn.execute(
        """UPDATE users SET email = $2 WHERE id = $1::uuid AND email IS NULL
              AND NOT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($2))""", user_id, email)


async def demo_ended(conn: asyncpg.Connection) -> bool:
    """Whether the demo seller's `demo` stream has ended."""
    return bool(await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM livestreams s JOIN sellers se ON se.id = s.seller_id
                          WHERE s.slug = 'demo' AND s.status = 'ended' AND se.slug = 'demo-seller')"""))


async def retire_ended_demo(conn: asyncpg.Connection) -> None:
    """Rename an ended `demo` stream to `demo-<ended at>` (its history stays), freeing the slug for a new show."""
    await conn.execute(
        """UPDATE livestreams SET slug = 'demo-' || to_char(ended_at, 'YYYYMMDD-HH24MISS') || '-' || left(id::text, 4),
                                  livekit_room = 'live-demo-' || id::text
           WHERE slug = 'demo' AND status = 'ended'""")


async def category(conn: asyncpg.Connection):
    """The `demo` category's id (created if missing)."""
    return await conn.fetchval(
        """INSERT INTO categories (name, slug) VALUES ('Demo', 'demo')
           ON CONFLICT (slug) DO UPDATE SET name = categories.name RETURNING id""")


async def live_stream(conn: asyncpg.Connection, seller_id: str):
    """The live `demo` stream's id (created, live now, if missing)."""
    return await conn.fetchval(
        """INSERT INTO livestreams (seller_id, slug, title, description, status, started_at, livekit_room)
           VALUES ($1::uuid, 'demo', 'Demo live shopping show', 'Six products, live stock, real checkout.',
                   'live', now(), 'live-demo')
           ON CONFLICT (slug) DO UPDATE SET slug = livestreams.slug RETURNING id""", seller_id)


async def product_with_sku(conn: asyncpg.Connection, sku: str):
    return await conn.fetchval(
        "SELECT p.id FROM products p JOIN product_variants v ON v.product_id = p.id WHERE v.sku = $1", sku)


async def insert_product(conn: asyncpg.Connection, seller_id: str, category_id, title: str, description: str,
                         image_urls: list[str]):
    """A new active product's id."""
    return await conn.fetchval(
        """INSERT INTO products (seller_id, category_id, title, description, image_urls, status)
           VALUES ($1::uuid, $2, $3, $4, $5, 'active') RETURNING id""",
        seller_id, category_id, title, description, image_urls)


async def local_pictures(conn: asyncpg.Connection, product_id, image_urls: list[str]) -> None:
    """A demo product whose pictures are still picsum.photos' (seeded before they were served locally) gets
    `image_urls`; a seller's own pictures are kept."""
    await conn.execute(
        """UPDATE products SET image_urls = $2
           WHERE id = $1 AND image_urls[1] LIKE 'https://picsum.photos/%'""", product_id, image_urls)


async def insert_variant(conn: asyncpg.Connection, product_id, sku: str, color: str | None, size: str | None,
                         price_minor: int, stock: int):
    """A new USD variant's id, with `stock` units and their ledger row; None when the sku exists."""
    variant_id = await conn.fetchval(
        """INSERT INTO product_variants (product_id, sku, color, size, price_minor, currency, on_hand)
           VALUES ($1, $2, $3, $4, $5, 'USD', $6)
           ON CONFLICT (sku) DO NOTHING RETURNING id""", product_id, sku, color, size, price_minor, stock)
    if variant_id is not None:
        await conn.execute(
            """INSERT INTO inventory_events (variant_id, kind, quantity, reason, idempotency_key)
               VALUES ($1, 'adjustment', $2, 'initial stock (demo seed)', $3)""",
            variant_id, stock, f"seed:{sku}")
    return variant_id


async def attach_product(conn: asyncpg.Connection, stream_id, product_id, position: int) -> None:
    await conn.execute(
        """INSERT INTO livestream_products (livestream_id, product_id, position) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING""", stream_id, product_id, position)


async def spotlight_if_none(conn: asyncpg.Connection, stream_id, product_id: str) -> None:
    await conn.execute(
        """UPDATE livestreams SET spotlight_product_id = $2 WHERE id = $1 AND spotlight_product_id IS NULL""",
        stream_id, product_id)


async def shipping(conn: asyncpg.Connection, seller_id: str, ship_from: dict) -> None:
    """The seller's shipping settings (ship-from address, so checkout quotes sandbox rates), if missing."""
    await conn.execute(
        """INSERT INTO seller_shipping (seller_id, ship_from, free_shipping_over_minor, return_window_days)
           VALUES ($1::uuid, $2, 25000, 30) ON CONFLICT (seller_id) DO NOTHING""", seller_id, ship_from)


async def product_parcel(conn: asyncpg.Connection, product_id, weight_g: int, dims: tuple[float, float, float]) -> None:
    """The product's weight and size, where not set yet (a seller's own values stay)."""
    await conn.execute(
        """UPDATE products SET weight_g = $2, length_cm = $3, width_cm = $4, height_cm = $5
           WHERE id = $1 AND weight_g IS NULL""", product_id, weight_g, *dims)


async def coupon(conn: asyncpg.Connection, seller_id: str) -> None:
    """The seller's DEMO10 coupon (10 % off, 1000 uses), if missing."""
    await conn.execute(
        """INSERT INTO coupons (seller_id, code, kind, value, usage_limit)
           VALUES ($1::uuid, 'DEMO10', 'percent', 10, 1000) ON CONFLICT DO NOTHING""", seller_id)
