"""Catalog: categories (a tree), products owned by a seller with their variants, public search, stock
adjustments by the seller, wishlists. Writes run as the caller, so row-level security is the second guard
behind the ownership checks made here."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

import asyncpg

from db import Database, audit
from db import catalog as catalog_db
from db import inventory as inventory_db
from db import users as users_db
from live.auth import policy
from live.auth.principal import Principal
from live.commerce.stock import StockBoard
from live.cursors import cursor_value, decode_cursor, encode_cursor
from live.errors import DomainError, forbidden, not_found

_CURSOR_KIND = {"newest": "ts", "relevance": "float", "price_asc": "bigint", "price_desc": "bigint"}


def variant_out(v, *, owner: bool) -> dict:
    out = {"id": v["id"], "sku": v["sku"], "color": v["color"], "size": v["size"], "price_minor": v["price_minor"],
           "currency": v["currency"], "available": v["available"], "max_per_buyer": v["max_per_buyer"],
           **{k: v[k] for k in catalog_db.DIMENSIONS}}
    if owner:
        out["stock"] = {"on_hand": v["on_hand"], "reserved": v["reserved"], "sold": v["sold"]}
    return out


def product_out(p, variants, *, owner: bool = False) -> dict:
    return {"id": p["id"], "seller": {"id": p["seller_id"], "name": p["seller_name"]},
            "category_id": p["category_id"], "title": p["title"], "description": p["description"],
            "image_urls": list(p["image_urls"]), "status": p["status"], "created_at": p["created_at"],
            "updated_at": p["updated_at"], **{k: p[k] for k in catalog_db.DIMENSIONS},
            "variants": [variant_out(v, owner=owner) for v in variants]}


PRODUCT_AUDITED = ("title", "description", "image_urls", "status", "category_id", *catalog_db.DIMENSIONS)
VARIANT_AUDITED = ("sku", "color", "size", "price_minor", "currency", "max_per_buyer", *catalog_db.DIMENSIONS)


def _product_fields(p) -> dict:
    """What the audit log keeps of a product (its row or its JSON)."""
    return {k: (list(p[k]) if k == "image_urls" else p[k]) for k in PRODUCT_AUDITED}


def _variant_fields(v, *, only_given: bool = False) -> dict:
    """What the audit log keeps of a variant: its row, JSON or request fields (only_given: just those present)."""
    keys = [k for k in VARIANT_AUDITED if k in v] if only_given else VARIANT_AUDITED
    out = {k: v[k] if k in v else None for k in keys}
    if not only_given and "stock" in v:
        out["stock"] = v["stock"]["on_hand"] if isinstance(v["stock"], dict) else v["stock"]
    return out


def _unique_sku(exc: asyncpg.UniqueViolationError) -> DomainError:
    return DomainError("conflict", "a variant with this sku exists") if "sku" in str(exc) else DomainError(
        "conflict", "already exists")


class CatalogService:
    def __init__(self, db: Database, board: StockBoard, keep_pictures: Callable[[list[str]], list[str]] | None = None):
        self.db = db
        self.board = board
        # live/uploads.py Uploads.keep: refreshes the uploads a product is about to name, so the upload sweep keeps
        # them; the ones no longer stored (a picture uploaded over a day ago and never used is swept)
        self.keep_pictures = keep_pictures

    def _pictures_stored(self, urls: list[str] | None, had: list[str] = ()) -> None:
        """Refuse (422 on image_urls) an upload's path that is new to the product and no longer stored."""
        if not urls or self.keep_pictures is None:
            return
        missing = self.keep_pictures([u for u in urls if u not in had])
        if missing:
            message = f"{missing[0]} is no longer stored (an upload unused for a day is deleted): upload it again"
            raise DomainError("validation_failed", message, details=[{"field": "image_urls", "message": message}])

    # ---- categories ----

    async def category_tree(self, principal: Principal) -> list[dict]:
        async with self.db.tx(principal) as conn:
            rows = await catalog_db.categories(conn)
        nodes = {r["id"]: {**dict(r), "children": []} for r in rows}
        roots = []
        for node in nodes.values():
            parent = nodes.get(node["parent_id"])
            (parent["children"] if parent else roots).append(node)
        return roots

    async def create_category(self, principal: Principal, name: str, slug: str, parent_id: str | None,
                              position: int) -> dict:
        async with self.db.tx(principal) as conn:
            if parent_id and not await catalog_db.category_exists(conn, parent_id):
                raise not_found("parent category")
            try:
                async with conn.transaction():
                    row = dict(await catalog_db.create_category(conn, name, slug, parent_id, position))
            except asyncpg.UniqueViolationError:
                raise DomainError("conflict", "a category with this slug exists") from None
            await audit.record(conn, principal.user_id, "category.create", "category", row["id"], after=row)
            return row

    # ---- ownership ----

    async def _seller_id(self, conn, principal: Principal, wanted: str | None = None) -> str:
        if principal.is_admin and wanted:
            if not await catalog_db.seller_exists(conn, wanted):
                raise not_found("seller")
            return wanted
        seller = policy.has_shop(await users_db.seller_for_user(conn, principal.user_id))
        if wanted and wanted != seller["id"]:
            raise forbidden("you can only sell as yourself")
        return seller["id"]

    async def _own_product(self, conn, principal: Principal, product_id: str):
        row = await catalog_db.product(conn, product_id)
        if row is None:
            raise not_found("product")
        policy.owner_or_admin(principal, row["seller_user_id"], "only the product's seller can change it")
        return row

    async def _own_variant(self, conn, principal: Principal, variant_id: str):
        row = await catalog_db.variant(conn, variant_id)
        if row is None:
            raise not_found("variant")
        await self._own_product(conn, principal, row["product_id"])
        return row

    # ---- products ----

    async def _product_json(self, conn, product_id: str, principal: Principal) -> dict:
        row = await catalog_db.product(conn, product_id)
        if row is None:
            raise not_found("product")
        owner = policy.owns(principal, row["seller_user_id"])
        variants = (await catalog_db.variants_of(conn, [product_id]))[product_id]
        return product_out(row, variants, owner=owner)

    async def get_product(self, principal: Principal, product_id: str) -> dict:
        async with self.db.tx(principal) as conn:
            return await self._product_json(conn, product_id, principal)

    async def create_product(self, principal: Principal, fields: dict) -> dict:
        variants = fields.pop("variants", [])
        async with self.db.tx(principal) as conn:
            seller_id = await self._seller_id(conn, principal, fields.pop("seller_id", None))
            if fields.get("category_id") and not await catalog_db.category_exists(conn, fields["category_id"]):
                raise not_found("category")
            self._pictures_stored(fields.get("image_urls"))
            product_id = await catalog_db.insert_product(conn, seller_id, fields)
            for v in variants:
                await self._insert_variant(conn, principal, product_id, v)
            out = await self._product_json(conn, product_id, principal)
            await audit.record(conn, principal.user_id, "product.create", "product", product_id, after={
                **_product_fields(out), "seller_id": seller_id,
                "variants": [_variant_fields(x) for x in out["variants"]]})
            return out

    async def _insert_variant(self, conn, principal: Principal, product_id: str, v: dict) -> str:
        try:
            async with conn.transaction():  # savepoint: a duplicate sku is a clean 409
                variant_id = await catalog_db.insert_variant(conn, product_id, v)
        except asyncpg.UniqueViolationError as exc:
            raise _unique_sku(exc) from None
        if v.get("stock"):
            await inventory_db.initial_stock(conn, variant_id, v["stock"], principal.user_id)
        return variant_id

    async def update_product(self, principal: Principal, product_id: str, fields: dict) -> dict:
        async with self.db.tx(principal) as conn:
            row = await self._own_product(conn, principal, product_id)
            if fields.get("category_id") and not await catalog_db.category_exists(conn, fields["category_id"]):
                raise not_found("category")
            self._pictures_stored(fields.get("image_urls"), list(row["image_urls"]))
            await catalog_db.update_product(conn, product_id, fields)
            before, after = audit.changed(_product_fields(row),
                                          {k: v for k, v in fields.items() if k in PRODUCT_AUDITED})
            if after:
                action = "product.archive" if after.get("status") == "archived" else "product.update"
                await audit.record(conn, principal.user_id, action, "product", product_id, before=before, after=after)
            return await self._product_json(conn, product_id, principal)

    async def add_variant(self, principal: Principal, product_id: str, v: dict) -> dict:
        async with self.db.tx(principal) as conn:
            await self._own_product(conn, principal, product_id)
            variant_id = await self._insert_variant(conn, principal, product_id, v)
            await audit.record(conn, principal.user_id, "variant.create", "variant", variant_id,
                               after={"product_id": product_id, **_variant_fields(v)})
            return await self._product_json(conn, product_id, principal)

    async def update_variant(self, principal: Principal, variant_id: str, fields: dict) -> dict:
        async with self.db.tx(principal) as conn:
            row = await self._own_variant(conn, principal, variant_id)
            try:
                async with conn.transaction():
                    await catalog_db.update_variant(conn, variant_id, fields)
            except asyncpg.UniqueViolationError as exc:
                raise _unique_sku(exc) from None
            before, after = audit.changed(_variant_fields(row), _variant_fields(fields, only_given=True))
            if after:
                await audit.record(conn, principal.user_id, "variant.update", "variant", variant_id, before=before,
                                   after=after, product_id=row["product_id"])
            return await self._product_json(conn, row["product_id"], principal)

    async def seller_products(self, principal: Principal, status: str | None, limit: int,
                              cursor: str | None) -> dict:
        before = None
        if cursor:
            before = tuple(decode_cursor(cursor, "ts", "uuid"))
        async with self.db.tx(principal) as conn:
            seller_id = await self._seller_id(conn, principal)
            rows = await catalog_db.seller_products(conn, seller_id, status, limit + 1, before)
            variants = await catalog_db.variants_of(conn, [r["id"] for r in rows[:limit]])
        items = [product_out(r, variants[r["id"]], owner=True) for r in rows[:limit]]
        last = rows[limit - 1] if len(rows) > limit else None
        return {"items": items,
                "next_cursor": encode_cursor(last["created_at"].isoformat(), last["id"]) if last else None}

    async def search(self, principal: Principal, *, q: str | None, category_id: str | None,
                     seller_id: str | None, min_price: int | None, max_price: int | None, currency: str | None,
                     sort: str | None, limit: int, cursor: str | None) -> dict:
        q = (q or "").strip() or None
        sort = sort or ("relevance" if q else "newest")
        if sort == "relevance" and q is None:
            raise DomainError("invalid", "sort=relevance needs a search query q")
        if min_price is not None and max_price is not None and min_price > max_price:
            raise DomainError("invalid", "min_price is above max_price")
        after = None
        if cursor:
            cur_sort, key, pid = decode_cursor(cursor, "text", "any", "uuid")
            if cur_sort != sort:
                raise DomainError("invalid", "the cursor belongs to another sort order")
            after = (cursor_value(_CURSOR_KIND[sort], key), pid)
        async with self.db.tx(principal) as conn:
            rows = await catalog_db.search(conn, q=q, category_id=category_id, seller_id=seller_id,
                                           min_price=min_price, max_price=max_price, currency=currency, sort=sort,
                                           after=after, limit=limit + 1)
            page = rows[:limit]
            variants = await catalog_db.variants_of(conn, [r["id"] for r in page])
        items = [product_out(r, variants[r["id"]]) for r in page]
        next_cursor = None
        if len(rows) > limit:
            key = page[-1]["sort_key"]
            next_cursor = encode_cursor(sort, key.isoformat() if isinstance(key, datetime) else key, page[-1]["id"])
        return {"items": items, "next_cursor": next_cursor}

    # ---- stock ----

    async def adjust_stock(self, principal: Principal, variant_id: str, delta: int, reason: str,
                           key: str | None) -> dict:
        async with self.db.tx(principal) as conn:
            old = await self._own_variant(conn, principal, variant_id)
            result, level = await inventory_db.adjust(conn, variant_id, delta, reason, principal.user_id, key)
            if result == "below_committed":
                raise DomainError("conflict", "on hand cannot go below the units reserved and sold")
            row = await catalog_db.variant(conn, variant_id)
            if result == "ok":
                await audit.record(conn, principal.user_id, "stock.adjust", "variant", variant_id,
                                   before={"on_hand": old["on_hand"]}, after={"on_hand": row["on_hand"]},
                                   delta=delta, reason=reason, idempotency_key=key)
        if result == "ok":
            await self.board.seen([level])
        return {**variant_out(row, owner=True), "duplicate": result == "duplicate"}

    async def ledger(self, principal: Principal, variant_id: str, limit: int, before: int | None) -> dict:
        async with self.db.tx(principal) as conn:
            await self._own_variant(conn, principal, variant_id)
            items = await inventory_db.ledger(conn, variant_id, limit, before)
            totals = await inventory_db.ledger_totals(conn, variant_id)
        return {"items": items, "totals": totals,
                "next_before": items[-1]["id"] if len(items) == limit else None}

    # ---- wishlist ----

    async def wishlist(self, principal: Principal) -> dict:
        async with self.db.tx(principal) as conn:
            rows = await catalog_db.wishlist(conn, principal.user_id)
            variants = await catalog_db.variants_of(conn, [r["id"] for r in rows])
        return {"items": [{**product_out(r, variants[r["id"]]), "added_at": r["added_at"]} for r in rows]}

    async def wish(self, principal: Principal, product_id: str, on: bool) -> None:
        async with self.db.tx(principal) as conn:
            if on:
                if await catalog_db.product(conn, product_id) is None:
                    raise not_found("product")
                await catalog_db.wish(conn, principal.user_id, product_id)
            elif not await catalog_db.unwish(conn, principal.user_id, product_id):
                raise not_found("wishlist entry")
