"""Idempotent demo data: a seller `demo-seller` (email DEMO_SELLER_EMAIL, so a newcomer signs in as the seller
with a code from the development mailbox; shipping from San Francisco, free shipping over $250), a live
stream `demo`, six products with variants, weights and sizes (so checkout quotes sandbox rates) and a picture each
(small SVGs in live/web/static/demo/, served by the server itself), a coupon.

Ending a stream is final (see docs/protocol.md), so when the `demo` stream has ended the seed keeps it as a
past show (its slug becomes `demo-<ended at>`) and makes a fresh live `demo` stream with the same products:
`live seed`, and the start-up of a server whose demo data exists, always leave a demo to click through."""
from __future__ import annotations

from db import Database
from db import demo as demo_db
from db import users as users_db
from live.auth.principal import SYSTEM

DEMO_SELLER_EMAIL = "demo-seller@example.com"
DEMO_SHIP_FROM = {"name": "Demo Seller", "line1": "1 Market St", "city": "San Francisco", "state": "CA",
                  "postal_code": "94105", "country": "US", "phone": "+14155550100"}
# title -> (weight in grams, (length, width, height) in cm) of one unit
DEMO_PARCELS = {
    "Aurora Running Sneaker": (900, (33.0, 21.0, 12.0)), "Canvas Weekender Bag": (1400, (50.0, 30.0, 10.0)),
    "Ceramic Pour-Over Set": (1100, (25.0, 20.0, 15.0)), "Merino Crew Sweater": (350, (30.0, 25.0, 4.0)),
    "Wireless Earbuds Pro": (150, (12.0, 10.0, 5.0)), "Linen Throw Blanket": (800, (35.0, 25.0, 8.0)),
}
# title -> its picture, a small SVG served from live/web/static/demo/ (no internet needed at run time)
DEMO_PICTURES = {
    "Aurora Running Sneaker": "sneaker", "Canvas Weekender Bag": "weekender-bag", "Ceramic Pour-Over Set": "pour-over",
    "Merino Crew Sweater": "sweater", "Wireless Earbuds Pro": "earbuds", "Linen Throw Blanket": "throw-blanket",
}
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
        return not await demo_db.has_seller(conn)


async def demo_ended(db: Database) -> bool:
    async with db.tx(SYSTEM) as conn:
        return await demo_db.demo_ended(conn)


async def seed_if_empty(services) -> bool:
    """When SEED_DEMO is on: seed the demo data if the database has no seller yet, or start a fresh demo show if
    the demo seller's `demo` stream has ended; whether it seeded."""
    if services.settings.seed_demo and (await is_empty(services.db) or await demo_ended(services.db)):
        await seed(services)
        return True
    return False


async def seed(services) -> dict:
    """Create the demo data if missing; returns ids of what the demo uses. Safe to run any number of times."""
    async with services.db.tx(SYSTEM) as conn:
        user = await users_db.find_or_create_by_name(conn, "demo-seller", "seller")
        await demo_db.give_email(conn, user["id"], DEMO_SELLER_EMAIL)  # sign in as the seller by email code
        seller = await users_db.ensure_seller(conn, user["id"], "Demo Seller", "demo-seller")
        category = await demo_db.category(conn)
        await demo_db.retire_ended_demo(conn)
        stream_id = await demo_db.live_stream(conn, seller["id"])
        product_ids = []
        for position, (title, description, variants) in enumerate(DEMO_PRODUCTS):
            pictures = [f"/static/demo/{DEMO_PICTURES[title]}.svg"]
            product_id = await demo_db.product_with_sku(conn, variants[0][0])
            if product_id is None:
                product_id = await demo_db.insert_product(conn, seller["id"], category, title, description, pictures)
            else:  # demo data seeded before the pictures were local: picsum.photos is on the internet
                await demo_db.local_pictures(conn, product_id, pictures)
            await demo_db.product_parcel(conn, product_id, *DEMO_PARCELS[title])
            for sku, color, size, price, stock in variants:
                await demo_db.insert_variant(conn, product_id, sku, color, size, price, stock)
            await demo_db.attach_product(conn, stream_id, product_id, position)
            product_ids.append(str(product_id))
        await demo_db.spotlight_if_none(conn, stream_id, product_ids[0])
        await demo_db.coupon(conn, seller["id"])
        await demo_db.shipping(conn, seller["id"], DEMO_SHIP_FROM)
    return {"seller_user_id": user["id"], "seller_id": seller["id"], "stream_id": str(stream_id),
            "product_ids": product_ids}
