"""Catalog over REST: categories, public product search, sellers' product CRUD with variants and stock
adjustments, and the buyer's wishlist."""
from __future__ import annotations

import re
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from live.auth.policy import SELLERS
from live.errors import DomainError, not_found
from live.http.api import API, MAX_BIGINT, Api, Call, patchable
from live.ids import UUID, is_uuid

api = Api()
MAX_PRICE = 10**12
MAX_STOCK = 1_000_000


def uuid_param(call: Call, name: str = "id", what: str = "resource") -> str:
    """A path id that must be a uuid: anything else cannot exist (404, like an unknown id)."""
    value = call.param(name)
    if not is_uuid(value):
        raise not_found(what)
    return value.lower()


# besides http(s) URLs, image_urls takes this site's own pictures: an upload (POST /seller/uploads gives its path)
# or one of the demo's pictures (live/web/static/demo/)
LOCAL_IMAGE = re.compile(r"^(/uploads/[0-9a-f]{64}\.(jpg|png|webp)|/static/demo/[a-z0-9-]{1,64}\.(svg|png|jpg|webp))$")


def _check_urls(urls: list[str]) -> list[str]:
    for url in urls:
        if not (url.startswith(("http://", "https://")) or LOCAL_IMAGE.match(url)) or len(url) > 2048:
            raise ValueError("image_urls must be http(s) URLs of at most 2048 characters, paths of uploaded "
                             "images (/uploads/...) or of the demo's pictures (/static/demo/...)")
    return urls


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=100)
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,119}$")
    parent_id: str | None = Field(default=None, pattern=UUID)
    position: int = Field(default=0, ge=0, le=10_000)


class Dimensions(BaseModel):
    """A unit's shipping weight and size (null: the product's, then the seller's parcel defaults; docs/shipping.md)."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    weight_g: int | None = Field(default=None, ge=1, le=70_000, description="grams")
    length_cm: float | None = Field(default=None, ge=0.1, le=300, description="centimetres (one decimal kept)")
    width_cm: float | None = Field(default=None, ge=0.1, le=300)
    height_cm: float | None = Field(default=None, ge=0.1, le=300)


class VariantIn(Dimensions):
    sku: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    color: str | None = Field(default=None, max_length=50)
    size: str | None = Field(default=None, max_length=50)
    price_minor: int = Field(ge=0, le=MAX_PRICE, description="price in minor units (cents)")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    stock: int = Field(default=0, ge=0, le=MAX_STOCK, description="initial units on hand")
    max_per_buyer: int | None = Field(default=None, ge=1, le=99, description=(
        "units one buyer's cart may hold (null: the platform default, CART_MAX_PER_BUYER)"))


class ProductIn(Dimensions):
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    category_id: str | None = Field(default=None, pattern=UUID)
    image_urls: list[str] = Field(default_factory=list, max_length=10)
    status: Literal["draft", "active"] = "draft"
    variants: list[VariantIn] = Field(default_factory=list, max_length=50)
    seller_id: str | None = Field(default=None, pattern=UUID, description="admins only: the owning seller")

    @field_validator("image_urls")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        return _check_urls(v)

    @field_validator("variants")
    @classmethod
    def _skus(cls, v: list[VariantIn]) -> list[VariantIn]:
        if len({x.sku for x in v}) != len(v):
            raise ValueError("variant skus must differ")
        return v


class ProductPatch(Dimensions):
    title: str = patchable(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    category_id: str | None = Field(default=None, pattern=UUID)
    image_urls: list[str] = patchable(max_length=10)
    status: Literal["draft", "active", "archived"] = patchable()

    @field_validator("image_urls")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        return _check_urls(v)


class VariantPatch(Dimensions):
    sku: str = patchable(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    color: str | None = Field(default=None, max_length=50)
    size: str | None = Field(default=None, max_length=50)
    price_minor: int = patchable(ge=0, le=MAX_PRICE)
    max_per_buyer: int | None = Field(default=None, ge=1, le=99, description=(
        "units one buyer's cart may hold (null: back to the platform default)"))


class StockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    delta: int = Field(ge=-MAX_STOCK, le=MAX_STOCK, description="units added to (or, negative, removed from) on hand")
    reason: str = Field(min_length=1, max_length=200)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class SearchQuery(BaseModel):
    q: str | None = Field(default=None, max_length=200, description="full-text search over title and description")
    category_id: str | None = Field(default=None, pattern=UUID, description="this category and its subcategories")
    seller_id: str | None = Field(default=None, pattern=UUID)
    min_price: int | None = Field(default=None, ge=0, le=MAX_PRICE,
                                  description="minor units; some variant costs at least this")
    max_price: int | None = Field(default=None, ge=0, le=MAX_PRICE,
                                  description="minor units; some variant costs at most this")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    sort: Literal["newest", "relevance", "price_asc", "price_desc"] | None = Field(
        default=None, description="newest (default), relevance (default with q), price_asc, price_desc")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")


class OwnQuery(BaseModel):
    status: Literal["draft", "active", "archived"] | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)


class LedgerQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=200)
    before: int | None = Field(default=None, ge=1, le=MAX_BIGINT, description="events with a smaller id")


def _catalog(call: Call):
    return call.services.commerce.catalog


@api.route("GET", f"{API}/categories", summary="The category tree", tag="catalog")
async def list_categories(call: Call):
    return {"items": await _catalog(call).category_tree(call.principal)}


@api.route("POST", f"{API}/categories", summary="Create a category (admins)", tag="catalog", auth="user",
           roles=("admin",), body=CategoryIn, status=201, errors=(404, 409))
async def create_category(call: Call):
    b = call.body
    return await _catalog(call).create_category(call.principal, b.name, b.slug, b.parent_id, b.position)


@api.route("GET", f"{API}/products", summary="Search active products: full text, filters, cursor pages",
           tag="catalog", query=SearchQuery)
async def search_products(call: Call):
    return await _catalog(call).search(call.principal, **call.query.model_dump())


@api.route("GET", f"{API}/products/{{id}}", summary="One product with its variants and availability",
           tag="catalog", auth="optional", errors=(404,))
async def get_product(call: Call):
    return await _catalog(call).get_product(call.principal, uuid_param(call))


@api.route("POST", f"{API}/products", summary="Create a product with its variants (sellers)", tag="catalog",
           auth="user", roles=SELLERS, body=ProductIn, status=201, errors=(404, 409))
async def create_product(call: Call):
    return await _catalog(call).create_product(call.principal, call.body.model_dump())


@api.route("PATCH", f"{API}/products/{{id}}", summary="Change your product (status archived hides it)",
           tag="catalog", auth="user", roles=SELLERS, body=ProductPatch, errors=(404,))
async def patch_product(call: Call):
    return await _catalog(call).update_product(call.principal, uuid_param(call),
                                               call.body.model_dump(exclude_unset=True))


@api.route("DELETE", f"{API}/products/{{id}}", summary="Archive your product (orders keep their lines)",
           tag="catalog", auth="user", roles=SELLERS, errors=(404,))
async def archive_product(call: Call):
    return await _catalog(call).update_product(call.principal, uuid_param(call), {"status": "archived"})


@api.route("POST", f"{API}/products/{{id}}/variants", summary="Add a variant to your product",
           tag="catalog", auth="user", roles=SELLERS, body=VariantIn, status=201, errors=(404, 409))
async def add_variant(call: Call):
    return await _catalog(call).add_variant(call.principal, uuid_param(call), call.body.model_dump())


@api.route("PATCH", f"{API}/variants/{{id}}", summary="Change a variant's sku, color, size, price, per-buyer cap, "
           "weight or dimensions",
           tag="catalog", auth="user", roles=SELLERS, body=VariantPatch, errors=(404, 409))
async def patch_variant(call: Call):
    return await _catalog(call).update_variant(call.principal, uuid_param(call),
                                               call.body.model_dump(exclude_unset=True))


@api.route("POST", f"{API}/variants/{{id}}/stock", summary="Adjust stock on hand, with a reason",
           tag="catalog", auth="user", roles=SELLERS, body=StockIn, errors=(404, 409))
async def adjust_stock(call: Call):
    b = call.body
    if b.delta == 0:
        raise DomainError("validation_failed", "delta must not be 0")
    return await _catalog(call).adjust_stock(call.principal, uuid_param(call), b.delta, b.reason,
                                             b.idempotency_key)


@api.route("GET", f"{API}/variants/{{id}}/inventory", summary="The variant's inventory ledger (newest first)",
           tag="catalog", auth="user", roles=SELLERS, query=LedgerQuery, errors=(404,))
async def variant_ledger(call: Call):
    return await _catalog(call).ledger(call.principal, uuid_param(call), call.query.limit, call.query.before)


@api.route("GET", f"{API}/me/products", summary="Your products, every status (sellers)", tag="catalog",
           auth="user", roles=SELLERS, query=OwnQuery)
async def my_products(call: Call):
    q = call.query
    return await _catalog(call).seller_products(call.principal, q.status, q.limit, q.cursor)


@api.route("GET", f"{API}/me/wishlist", summary="Your wishlist", tag="catalog", auth="user")
async def get_wishlist(call: Call):
    return await _catalog(call).wishlist(call.principal)


@api.route("PUT", f"{API}/me/wishlist/{{id}}", summary="Add a product to your wishlist", tag="catalog",
           auth="user", status=204, errors=(404,))
async def wish(call: Call):
    await _catalog(call).wish(call.principal, uuid_param(call), True)
    return web.Response(status=204)


@api.route("DELETE", f"{API}/me/wishlist/{{id}}", summary="Remove a product from your wishlist",
           tag="catalog", auth="user", status=204, errors=(404,))
async def unwish(call: Call):
    await _catalog(call).wish(call.principal, uuid_param(call), False)
    return web.Response(status=204)
