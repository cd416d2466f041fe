"""Queries on carts. Changes go through db.inventory.cart_changes (one statement, stock included)."""
from __future__ import annotations

from datetime import datetime, timezone

import asyncpg

from db.pool import warm

EMPTY = {"id": None, "status": "active", "items": [], "item_count": 0, "subtotal_minor": 0, "currency": None,
         "updated_at": None}


# A line whose product was archived (or unpublished) stays visible, not purchasable, so the buyer can remove it:
# row-level security hides such a product from the buyer, hence the fallbacks to what the line stored.
_CART = """SELECT c.id::text AS cart_id, c.status AS cart_status, c.updated_at AS cart_updated_at,
        ci.id AS line_id, ci.quantity, ci.livestream_id::text AS livestream_id, ci.reserved_until,
        ci.variant_id::text AS variant_id, v.product_id::text AS product_id, v.sku, v.color, v.size,
        coalesce(v.price_minor, ci.unit_price_minor) AS price_minor, coalesce(v.currency, ci.currency) AS currency,
        coalesce(v.on_hand - v.reserved - v.sold, 0) AS available, p.title, p.image_urls[1] AS image_url,
        p.seller_id::text AS seller_id, coalesce(p.status = 'active', false) AS purchasable
    FROM carts c
    LEFT JOIN cart_items ci ON ci.cart_id = c.id
    LEFT JOIN product_variants v ON v.id = ci.variant_id
    LEFT JOIN products p ON p.id = v.product_id"""
_CARTS_BY_ID = warm(f"{_CART} WHERE c.id = ANY($1::uuid[]) ORDER BY c.id, ci.created_at, ci.id", [])
_ACTIVE_CART = f"{_CART} WHERE c.user_id = $1::uuid AND c.status = 'active' ORDER BY ci.created_at, ci.id"


def _cart_out(rows: list) -> dict | None:
    if not rows:
        return None
    now = datetime.now(timezone.utc)
    items = [{"variant_id": r["variant_id"], "product_id": r["product_id"], "title": r["title"], "sku": r["sku"],
              "color": r["color"], "size": r["size"], "image_url": r["image_url"], "seller_id": r["seller_id"],
              "quantity": r["quantity"], "unit_price_minor": r["price_minor"], "currency": r["currency"],
              "line_total_minor": r["price_minor"] * r["quantity"], "reserved_until": r["reserved_until"],
              "reserved": r["reserved_until"] is not None and r["reserved_until"] > now,
              "available": r["available"], "purchasable": r["purchasable"], "livestream_id": r["livestream_id"]}
             for r in rows if r["line_id"] is not None]
    head = rows[0]
    return {"id": head["cart_id"], "status": head["cart_status"], "items": items,
            "item_count": sum(i["quantity"] for i in items),
            "subtotal_minor": sum(i["line_total_minor"] for i in items),
            "currency": min((i["currency"] for i in items), default=None), "updated_at": head["cart_updated_at"]}


async def by_ids(conn: asyncpg.Connection, cart_ids: list[str]) -> dict[str, dict]:
    """Carts with their lines (current price and availability, oldest line first) in one query: cart id -> cart."""
    if not cart_ids:
        return {}
    rows = await conn.fetch(_CARTS_BY_ID, cart_ids)
    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(r["cart_id"], []).append(r)
    return {cid: _cart_out(group) for cid, group in out.items()}


async def active_json(conn: asyncpg.Connection, user_id: str) -> dict | None:
    """The buyer's active cart (None when they have none)."""
    return _cart_out(await conn.fetch(_ACTIVE_CART, user_id))


async def lock_active(conn: asyncpg.Connection, user_id: str) -> str | None:
    """The buyer's active cart, locked until the end of the transaction (cart changes wait for checkout)."""
    return await conn.fetchval(
        "SELECT id::text FROM carts WHERE user_id = $1::uuid AND status = 'active' FOR UPDATE", user_id)


async def lines_for_checkout(conn: asyncpg.Connection, cart_id: str) -> list[asyncpg.Record]:
    """The cart's lines with what an order needs, locked (the expiry sweep skips them meanwhile)."""
    return await conn.fetch(
        """SELECT ci.id::text AS id, ci.variant_id::text AS variant_id, ci.quantity,
                  ci.reserved_until IS NOT NULL AS held, ci.livestream_id::text AS livestream_id,
                  ci.created_at, v.product_id::text AS product_id, v.sku, v.price_minor, v.currency,
                  p.title, p.status AS product_status, p.seller_id::text AS seller_id
           FROM cart_items ci
           JOIN product_variants v ON v.id = ci.variant_id
           JOIN products p ON p.id = v.product_id
           WHERE ci.cart_id = $1::uuid
           ORDER BY ci.variant_id
           FOR UPDATE OF ci""", cart_id)


async def mark_converted(conn: asyncpg.Connection, cart_id: str) -> None:
    await conn.execute("UPDATE cart_items SET reserved_until = NULL WHERE cart_id = $1::uuid", cart_id)
    await conn.execute("UPDATE carts SET status = 'converted' WHERE id = $1::uuid", cart_id)


async def purge_holds(conn: asyncpg.Connection, ended_before_seconds: int, limit: int) -> int:
    """Forget holds that ended more than `ended_before_seconds` ago (past the cool-down they refuse nothing; carts
    checked out keep theirs until then). Returns how many went."""
    status = await conn.execute(
        """DELETE FROM cart_holds WHERE (cart_id, variant_id) IN (
               SELECT cart_id, variant_id FROM cart_holds
               WHERE expires_at < now() - make_interval(secs => $1) LIMIT $2)""", ended_before_seconds, limit)
    return int(status.split()[-1])
