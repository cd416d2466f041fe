"""Livestreams over REST: sellers create, schedule, update, start and end their streams and attach products;
everyone lists live/upcoming/ended streams, reads one, its products and its chat history; the seller, moderators
and admins list the stream's bans and lift them."""
from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from live.auth.policy import SELLERS
from live.http.api import API, MAX_BIGINT, Api, Call, patchable
from live.http.catalog import uuid_param
from live.ids import UUID
from live.rooms.state import message_out

api = Api()


class StreamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    title: str = Field(min_length=1, max_length=200)
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,119}$")
    description: str | None = Field(default=None, max_length=5000)
    scheduled_at: datetime | None = None
    thumbnail_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    blocked_words: list[str] | None = Field(default=None, max_length=200)
    product_ids: list[str] = Field(default_factory=list, max_length=100)


class StreamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    title: str = patchable(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    scheduled_at: datetime | None = None
    thumbnail_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    blocked_words: list[str] = patchable(max_length=200)
    slow_mode_seconds: int = patchable(ge=0, le=3600)


class ProductIds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_ids: list[str] = Field(min_length=1, max_length=100)


class ListQuery(BaseModel):
    status: str = Field(default="live", pattern=r"^(live|scheduled|ended)$", description="live, scheduled or ended")
    seller_id: str | None = Field(default=None, pattern=UUID)
    limit: int = Field(default=20, ge=1, le=100)


class BansQuery(BaseModel):
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")
    limit: int = Field(default=50, ge=1, le=100)


class ChatQuery(BaseModel):
    before: int | None = Field(default=None, ge=1, le=MAX_BIGINT, description="return messages with a smaller id")
    limit: int = Field(default=50, ge=1, le=200)


def stream_out(row) -> dict:
    return {"id": row["id"], "slug": row["slug"], "title": row["title"], "description": row["description"],
            "status": row["status"], "scheduled_at": row["scheduled_at"], "started_at": row["started_at"],
            "ended_at": row["ended_at"], "thumbnail_url": row["thumbnail_url"], "cover_url": row["cover_url"],
            "spotlight_product_id": row["spotlight_product_id"], "peak_viewers": row["peak_viewers"],
            "slow_mode_seconds": row["slow_mode_seconds"],
            "seller": {"id": row["seller_id"], "name": row["seller_name"], "slug": row["seller_slug"]}}


@api.route("GET", f"{API}/livestreams", summary="List live, upcoming (scheduled) or ended streams",
           tag="livestreams", query=ListQuery)
async def list_streams(call: Call):
    q = call.query
    rows = await call.services.livestreams.listing(call.principal, q.status, q.limit, q.seller_id)
    thumbs = call.services.thumbnails  # a publishing stream's live thumbnail (docs/media.md "Thumbnails")
    cached = call.services.rooms.streams.cached  # viewers now, as GET /livestreams/{id} (0: not loaded here)
    return {"items": [{**stream_out(r), "live_thumbnail_url": thumbs.url(r["id"]),
                       "viewers": state.viewers if (state := cached(r["id"])) else 0} for r in rows]}


@api.route("POST", f"{API}/livestreams", summary="Create (and optionally schedule) a stream", tag="livestreams",
           auth="user", roles=SELLERS, body=StreamCreate, status=201, errors=(409,))
async def create_stream(call: Call):
    b = call.body
    return stream_out(await call.services.livestreams.create(call.principal, b.model_dump(), b.product_ids))


@api.route("GET", f"{API}/livestreams/{{id}}", summary="One stream, by id or slug", tag="livestreams",
           errors=(404,))
async def get_stream(call: Call):
    row, viewers = await call.services.livestreams.get(call.principal, call.param("id"))
    return {**stream_out(row), "viewers": viewers, "live_thumbnail_url": call.services.thumbnails.url(row["id"])}


@api.route("PATCH", f"{API}/livestreams/{{id}}", summary="Update or reschedule a stream", tag="livestreams",
           auth="user", roles=SELLERS, body=StreamPatch, errors=(404,))
async def patch_stream(call: Call):
    fields = call.body.model_dump(exclude_unset=True)
    return stream_out(await call.services.livestreams.update(call.principal, call.param("id"), fields))


@api.route("POST", f"{API}/livestreams/{{id}}/start", summary="Go live", tag="livestreams", auth="user",
           roles=SELLERS, errors=(404, 409))
async def start_stream(call: Call):
    state = await call.services.rooms.set_status(call.principal, call.param("id"), "live")
    return {"id": state.id, "status": state.status}


@api.route("POST", f"{API}/livestreams/{{id}}/end", summary="End the stream", tag="livestreams", auth="user",
           roles=SELLERS, errors=(404,))
async def end_stream(call: Call):
    state = await call.services.rooms.set_status(call.principal, call.param("id"), "ended")
    return {"id": state.id, "status": state.status}


@api.route("GET", f"{API}/livestreams/{{id}}/products", summary="The stream's products with live stock",
           tag="livestreams", errors=(404,))
async def stream_products(call: Call):
    row, products = await call.services.livestreams.products(call.principal, call.param("id"))
    return {"items": products, "spotlight_product_id": row["spotlight_product_id"]}


@api.route("POST", f"{API}/livestreams/{{id}}/products", summary="Attach products to the stream",
           tag="livestreams", auth="user", roles=SELLERS, body=ProductIds, errors=(404,))
async def attach_products(call: Call):
    ids = await call.services.livestreams.attach(call.principal, call.param("id"), call.body.product_ids)
    return {"product_ids": ids}


@api.route("GET", f"{API}/livestreams/{{id}}/chat", summary="Chat history, newest last; page with ?before=",
           tag="livestreams", query=ChatQuery, errors=(404,))
async def chat_history(call: Call):
    rows = await call.services.chat.history(call.principal, call.param("id"), call.query.limit, call.query.before)
    items = [message_out(r) for r in rows]
    return {"items": items, "next_before": items[0]["id"] if len(items) == call.query.limit else None}


@api.route("GET", f"{API}/livestreams/{{id}}/bans", summary="The stream's bans, newest first; page with ?cursor=",
           tag="livestreams", auth="user", query=BansQuery, errors=(403, 404))
async def list_bans(call: Call):
    return await call.services.chat.bans(call.principal, call.param("id"), call.query.cursor, call.query.limit)


@api.route("DELETE", f"{API}/livestreams/{{id}}/bans/{{user_id}}",
           summary="Lift a ban (succeeds as well when the user is not banned)", tag="livestreams", auth="user",
           status=204, errors=(403, 404))
async def delete_ban(call: Call):
    await call.services.chat.unban(call.principal, call.param("id"), uuid_param(call, "user_id", what="user"))
    return web.Response(status=204)
