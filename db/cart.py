"""Queries on carts. Changes go through db.inventory.cart_change (one statement, stock included)."""
from __future__ import annotations

import asyncpg

EMPTY = {"id": None, "status": "active", "items": [], "item_count": 0, "subtotal_minor": 0, "currency": None,
         "updated_at": None}


async def active_json(conn: asyncpg.Connection, user_id: str) -> dict | None:
    return await conn.fetchval(
        "SELECT commerce_cart_json(id) FROM carts WHERE user_id = $1::uuid AND status = 'active'", user_id)


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
