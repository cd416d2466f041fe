"""Queries on categories, products, variants and wishlists."""
from __future__ import annotations

from datetime import datetime

import asyncpg

from db.pool import update_columns

PRODUCT_COLS = """p.id::text AS id, p.seller_id::text AS seller_id, s.display_name AS seller_name,
    s.user_id::text AS seller_user_id, p.category_id::text AS category_id, p.title, p.description, p.image_urls,
    p.status, p.created_at, p.updated_at, p.weight_g, p.length_cm::float8 AS length_cm,
    p.width_cm::float8 AS width_cm, p.height_cm::float8 AS height_cm"""
VARIANT_COLS = """v.id::text AS id, v.product_id::text AS product_id, v.sku, v.color, v.size, v.price_minor,
    v.currency, v.on_hand, v.reserved, v.sold, v.on_hand - v.reserved - v.sold AS available, v.stock_version,
    v.max_per_buyer, v.weight_g, v.length_cm::float8 AS length_cm, v.width_cm::float8 AS width_cm,
    v.height_cm::float8 AS height_cm"""
DIMENSIONS = ("weight_g", "length_cm", "width_cm", "height_cm")  # of products and variants (null: inherited)


# ---- categories ----

async def categories(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("""SELECT id::text AS id, parent_id::text AS parent_id, name, slug, position
                               FROM categories ORDER BY position, name""")


async def create_category(conn: asyncpg.Connection, name: str, slug: str, parent_id: str | None,
                          position: int) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO categories (name, slug, parent_id, position) VALUES ($1, $2, $3::uuid, $4)
           RETURNING id::text AS id, parent_id::text AS parent_id, name, slug, position""",
        name, slug, parent_id, position)


async def category_exists(conn: asyncpg.Connection, category_id: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM categories WHERE id = $1::uuid)", category_id)


async def seller_exists(conn: asyncpg.Connection, seller_id: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM sellers WHERE id = $1::uuid)", seller_id)


# ---- products ----

async def product(conn: asyncpg.Connection, product_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PRODUCT_COLS} FROM products p JOIN sellers s ON s.id = p.seller_id WHERE p.id = $1::uuid",
        product_id)


async def variants_of(conn: asyncpg.Connection, product_ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    rows = await conn.fetch(
        f"SELECT {VARIANT_COLS} FROM product_variants v WHERE v.product_id = ANY($1::uuid[]) ORDER BY v.sku",
        product_ids)
    out: dict[str, list] = {pid: [] for pid in product_ids}
    for r in rows:
        out[r["product_id"]].append(r)
    return out


async def variant(conn: asyncpg.Connection, variant_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {VARIANT_COLS}, p.seller_id::text AS seller_id FROM product_variants v
            JOIN products p ON p.id = v.product_id WHERE v.id = $1::uuid""", variant_id)


async def insert_product(conn: asyncpg.Connection, seller_id: str, fields: dict) -> str:
    return await conn.fetchval(
        """INSERT INTO products (seller_id, category_id, title, description, image_urls, status, weight_g, length_cm,
                                width_cm, height_cm)
           VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id::text""",
        seller_id, fields.get("category_id"), fields["title"], fields.get("description"),
        fields.get("image_urls") or [], fields.get("status") or "draft", *(fields.get(k) for k in DIMENSIONS))


async def insert_variant(conn: asyncpg.Connection, product_id: str, v: dict) -> str:
    return await conn.fetchval(
        """INSERT INTO product_variants (product_id, sku, color, size, price_minor, currency, on_hand, max_per_buyer,
                                        weight_g, length_cm, width_cm, height_cm)
           VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id::text""",
        product_id, v["sku"], v.get("color"), v.get("size"), v["price_minor"], v["currency"], v.get("stock", 0),
        v.get("max_per_buyer"), *(v.get(k) for k in DIMENSIONS))


async def update_product(conn: asyncpg.Connection, product_id: str, fields: dict) -> None:
    await update_columns(conn, "products", product_id, fields,
                         ("title", "description", "image_urls", "status", "category_id", *DIMENSIONS),
                         {"category_id": "::uuid"})


async def update_variant(conn: asyncpg.Connection, variant_id: str, fields: dict) -> None:
    await update_columns(conn, "product_variants", variant_id, fields,
                         ("sku", "color", "size", "price_minor", "max_per_buyer", *DIMENSIONS))


async def seller_products(conn: asyncpg.Connection, seller_id: str, status: str | None, limit: int,
                          before: tuple[datetime, str] | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {PRODUCT_COLS} FROM products p JOIN sellers s ON s.id = p.seller_id
            WHERE p.seller_id = $1::uuid AND ($2::text IS NULL OR p.status = $2)
              AND ($4::timestamptz IS NULL OR (p.created_at, p.id) < ($4, $5::uuid))
            ORDER BY p.created_at DESC, p.id DESC LIMIT $3""",
        seller_id, status, limit, before[0] if before else None, before[1] if before else None)


async def search(conn: asyncpg.Connection, *, q: str | None, category_id: str | None, seller_id: str | None,
                 min_price: int | None, max_price: int | None, currency: str | None, sort: str,
                 after: tuple | None, limit: int) -> list[asyncpg.Record]:
    """Active products matching the filters, `limit` of them after the cursor key `after` (key, id).
    Each row carries `sort_key` for the next cursor. Full-text search uses the `search` tsvector (GIN)."""
    args: list = [q, category_id, seller_id, min_price, max_price, currency]
    key = {"newest": "p.created_at",
           "relevance": "ts_rank(p.search, websearch_to_tsquery('simple', $1))::float8",
           "price_asc": "pr.min_price", "price_desc": "pr.min_price"}[sort]
    desc = sort != "price_asc"
    where = ""
    if after is not None:
        args += [after[0], after[1]]
        cast = {"newest": "::timestamptz", "relevance": "::float8"}.get(sort, "::bigint")
        where = f"AND ({key}, p.id) {'<' if desc else '>'} (${len(args) - 1}{cast}, ${len(args)}::uuid)"
    args.append(limit)
    direction = "DESC" if desc else "ASC"
    return await conn.fetch(
        f"""SELECT {PRODUCT_COLS}, {key} AS sort_key
            FROM products p
            JOIN sellers s ON s.id = p.seller_id
            JOIN LATERAL (SELECT min(v.price_minor) AS min_price FROM product_variants v
                          WHERE v.product_id = p.id
                            AND ($4::bigint IS NULL OR v.price_minor >= $4)
                            AND ($5::bigint IS NULL OR v.price_minor <= $5)
                            AND ($6::text IS NULL OR v.currency = $6)) pr ON pr.min_price IS NOT NULL
            WHERE p.status = 'active'
              AND ($1::text IS NULL OR p.search @@ websearch_to_tsquery('simple', $1))
              AND ($2::uuid IS NULL OR p.category_id IN (
                    WITH RECURSIVE sub AS (SELECT id FROM categories WHERE id = $2::uuid
                                           UNION ALL
                                           SELECT c.id FROM categories c JOIN sub ON c.parent_id = sub.id)
                    SELECT id FROM sub))
              AND ($3::uuid IS NULL OR p.seller_id = $3::uuid)
              {where}
            ORDER BY {key} {direction}, p.id {direction}
            LIMIT ${len(args)}""", *args)


# ---- wishlist ----

async def wishlist(conn: asyncpg.Connection, user_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {PRODUCT_COLS}, w.created_at AS added_at FROM wishlists w
            JOIN products p ON p.id = w.product_id JOIN sellers s ON s.id = p.seller_id
            WHERE w.user_id = $1::uuid ORDER BY w.created_at DESC""", user_id)


async def wish(conn: asyncpg.Connection, user_id: str, product_id: str) -> None:
    await conn.execute("""INSERT INTO wishlists (user_id, product_id) VALUES ($1::uuid, $2::uuid)
                          ON CONFLICT DO NOTHING""", user_id, product_id)


async def unwish(conn: asyncpg.Connection, user_id: str, product_id: str) -> bool:
    status = await conn.execute("DELETE FROM wishlists WHERE user_id = $1::uuid AND product_id = $2::uuid",
                                user_id, product_id)
    return status.endswith(" 1")
