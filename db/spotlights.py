"""Which streams spotlight a product variant (for stock updates when several workers share the rooms)."""
from __future__ import annotations

import asyncpg


async def streams_spotlighting(conn: asyncpg.Connection, variant_id: str) -> list[tuple[str, str]]:
    """(stream id, product id) of every stream not ended whose spotlighted product has this variant."""
    rows = await conn.fetch(
        """SELECT l.id::text, l.spotlight_product_id::text FROM livestreams l
           JOIN product_variants v ON v.product_id = l.spotlight_product_id
           WHERE v.id = $1::uuid AND l.status <> 'ended'""", variant_id)
    return [(r[0], r[1]) for r in rows]
