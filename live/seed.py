"""Idempotent demo data: a seller `demo-seller`, a live stream `demo`, six products with variants, a coupon.

Ending a stream is final (see docs/protocol.md), so when the `demo` stream has ended the seed keeps it as a
past show (its slug becomes `demo-<ended at>`) and makes a fresh live `demo` stream with the same products:
`live seed`, and the start-up of a server whose demo data exists, always leave a demo to click through."""
from __future__ import annotations

from db import Database
from db import users as users_db
from live.auth.principal import SYSTEM

DEMO_PRODUCTS = [
    # title, description, [(sku, color, size, price_minor, stock)]
    ("Aurora Running Sneaker", "Lightweight knit runner with a recycled sole.",
     [("SNK-AUR-BLK-42", "black", "42", 8900, 25), ("SNK-AUR-BLK-43", "black", "43", 8900, 25),
      ("SNK-AUR-WHT-42", "white", "42", 9400, 10)]),
    ("Canvas Weekender Bag", "Waxed canvas bag with leather handles, fits a weekend.",
     [("BAG-WKD-OLV", "olive", None, 12900, 15), ("BAG-WKD-NVY", "navy", None, 12900, 15)]),
    ("Ceramic Pour-Over Set", "Hand-glazed dripper, server and two cups.",
     [("POV-SET-SND", "sand", None, 5400, 40)]),
    ("Merino Crew Sweater", "Fine merino wool, garment-dyed.",
     [("SWT-MER-GRY-M", "grey", "M", 7900, 20), ("SWT-MER-GRY-L", "grey", "L", 7900, 20),
      ("SWT-MER-RST-M", "rust", "M", 7900, 12)]),
    ("Wireless Earbuds Pro", "Noise-cancelling earbuds with a 30-hour case.",
     [("EAR-PRO-BLK", "black", None, 14900, 100)]),
    ("Linen Throw Blanket", "Stonewashed linen, 130 x 170 cm.",
     [("THR-LIN-OAT", "oat", None, 6900, 30), ("THR-LIN-SGE", "sage", None, 6900, 30)]),
]


async def is_empty(db: Database) -> bool:
    async with db.tx(SYSTEM) as conn:
        return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM sellers)")


async def demo_ended(db: Database) -> bool:
    async with db.tx(SYSTEM) as conn:
        return bool(await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM livestreams s JOIN sellers se ON se.id = s.seller_id
                              WHERE s.slug = 'demo' AND s.status = 'ended' AND se.slug = 'demo-seller')"""))


async def seed_if_empty(services) -> bool:
    """When SEED_DEMO is on: seed the demo data if the database has no seller yet, or start a fresh demo show if
    the demo seller's `demo` stream has ended; whether it seeded."""
    if services.settings.seed_demo and (await is_empty(services.db) or await demo_ended(services.db)):
        await seed(services)
        return True
    return False


async def _retire_ended_demo(conn) -> None:
    """Rename an ended `demo` stream to `demo-<ended at>` (its history stays), freeing the slug for a new show."""
    await conn.execute(
        """UPDATE livestreams SET slug = 'demo-' || to_char(ended_at, 'YYYYMMDD-HH24MISS') || '-' || left(id::text, 4),
                                  livekit_room = 'live-demo-' || id::text
           WHERE slug = 'demo' AND status = 'ended'""")


async def seed(services) -> dict:
    """Create the demo data if missing; returns ids of what the demo uses. Safe to run any number of times."""
    async with services.db.tx(SYSTEM) as conn:
        user = await users_db.find_or_create_by_name(conn, "demo-seller", "seller")
        seller = await users_db.ensure_seller(conn, user["id"], "Demo Seller", "demo-seller")
        category = await conn.fetchval(
            """INSERT INTO categories (name, slug) VALUES ('Demo', 'demo')
               ON CONFLICT (slug) DO UPDATE SET name = categories.name RETURNING id""")
        await _retire_ended_demo(conn)
        stream_id = await conn.fetchval(
            """INSERT INTO livestreams (seller_id, slug, title, description, status, started_at, livekit_room)
               VALUES ($1::uuid, 'demo', 'Demo live shopping show', 'Six products, live stock, real checkout.',
                       'live', now(), 'live-demo')
               ON CONFLICT (slug) DO UPDATE SET slug = livestreams.slug RETURNING id""", seller["id"])
        product_ids = []
        for position, (title, description, variants) in enumerate(DEMO_PRODUCTS):
            slug = variants[0][0].rsplit("-", 1)[0].lower()
            product_id = await conn.fetchval(
                "SELECT p.id FROM products p JOIN product_variants v ON v.product_id = p.id WHERE v.sku = $1",
                variants[0][0])
            if product_id is None:
                product_id = await conn.fetchval(
                    """INSERT INTO products (seller_id, category_id, title, description, image_urls, status)
                       VALUES ($1::uuid, $2, $3, $4, $5, 'active') RETURNING id""",
                    seller["id"], category, title, description,
                    [f"https://picsum.photos/seed/live-{slug}/600/600"])
            for sku, color, size, price, stock in variants:
                variant_id = await conn.fetchval(
                    """INSERT INTO product_variants (product_id, sku, color, size, price_minor, currency, on_hand)
                       VALUES ($1, $2, $3, $4, $5, 'USD', $6)
                       ON CONFLICT (sku) DO NOTHING RETURNING id""", product_id, sku, color, size, price, stock)
                if variant_id is not None:
                    await conn.execute(
                        """INSERT INTO inventory_events (variant_id, kind, quantity, reason, idempotency_key)
                           VALUES ($1, 'adjustment', $2, 'initial stock (demo seed)', $3)""",
                        variant_id, stock, f"seed:{sku}")
            await conn.execute(
                """INSERT INTO livestream_products (livestream_id, product_id, position) VALUES ($1, $2, $3)
                   ON CONFLICT DO NOTHING""", stream_id, product_id, position)
            product_ids.append(str(product_id))
        await conn.execute(
            """UPDATE livestreams SET spotlight_product_id = $2 WHERE id = $1 AND spotlight_product_id IS NULL""",
            stream_id, product_ids[0])
        await conn.execute(
            """INSERT INTO coupons (seller_id, code, kind, value, usage_limit)
               VALUES ($1::uuid, 'DEMO10', 'percent', 10, 1000) ON CONFLICT DO NOTHING""", seller["id"])
    return {"seller_user_id": user["id"], "seller_id": seller["id"], "stream_id": str(stream_id),
            "product_ids": product_ids}
