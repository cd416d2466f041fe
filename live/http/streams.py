"""Livestreams over REST: sellers create, schedule, update, start and end their streams and attach products;
everyone lists live/upcoming/ended streams, reads one, its products and its chat history; the seller, moderators
and admins list the stream's bans and lift them."""
from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from db import audit
from db import chat as chat_db
from db import streams as streams_db
from db import users as users_db
from db.streams import UUID
from live.errors import DomainError, forbidden, not_found
from live.http.api import API, MAX_BIGINT, Api, Call, patchable
from live.rooms.state import message_out

api = Api()
SELLERS = ("seller", "admin")


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
            "ended_at": row["ended_at"], "thumbnail_url": row["thumbnail_url"],
            "spotlight_product_id": row["spotlight_product_id"], "peak_viewers": row["peak_viewers"],
            "slow_mode_seconds": row["slow_mode_seconds"],
            "seller": {"id": row["seller_id"], "name": row["seller_name"], "slug": row["seller_slug"]}}


async def _stream(call: Call, conn) -> dict:
    """The stream of the path's id or slug, or 404."""
    row = await streams_db.get(conn, call.param("id"))
    if row is None:
        raise not_found("stream")
    return row


async def _own_stream(call: Call, conn) -> dict:
    row = await _stream(call, conn)
    p = call.principal
    if p.role != "admin" and row["seller_user_id"] != p.user_id:
        raise forbidden("only the stream's seller can change it")
    return row


def _check_ids(ids: list[str]) -> None:
    if not all(map(streams_db.is_uuid, ids)):
        raise DomainError("invalid", "product_ids must be uuids")


@api.route("GET", f"{API}/livestreams", summary="List live, upcoming (scheduled) or ended streams",
           tag="livestreams", query=ListQuery)
async def list_streams(call: Call):
    q = call.query
    async with call.services.db.tx(call.principal) as conn:
        rows = await streams_db.list_by_status(conn, q.status, q.limit, q.seller_id)
    return {"items": [stream_out(r) for r in rows]}


@api.route("POST", f"{API}/livestreams", summary="Create (and optionally schedule) a stream", tag="livestreams",
           auth="user", roles=SELLERS, body=StreamCreate, status=201, errors=(409,))
async def create_stream(call: Call):
    b = call.body
    _check_ids(b.product_ids)
    async with call.services.db.tx(call.principal) as conn:
        seller = await users_db.seller_for_user(conn, call.principal.user_id)
        if seller is None:
            raise forbidden("create your seller profile first")
        if await streams_db.get(conn, b.slug) is not None:
            raise DomainError("conflict", "a stream with this slug exists")
        row = await streams_db.create(conn, seller["id"], b.model_dump())
        if b.product_ids:
            await _attach(conn, row, b.product_ids)
    return stream_out(row)


async def _attach(conn, row, product_ids: list[str]) -> None:
    if await streams_db.count_owned_products(conn, row["seller_id"], product_ids) != len(set(product_ids)):
        raise DomainError("invalid", "every product must be one of your own")
    await streams_db.attach_products(conn, row["id"], product_ids)


@api.route("GET", f"{API}/livestreams/{{id}}", summary="One stream, by id or slug", tag="livestreams",
           errors=(404,))
async def get_stream(call: Call):
    async with call.services.db.tx(call.principal) as conn:
        row = await _stream(call, conn)
    out = stream_out(row)
    state = call.services.rooms.streams.cached(row["id"])
    out["viewers"] = state.viewers if state else 0
    return out


@api.route("PATCH", f"{API}/livestreams/{{id}}", summary="Update or reschedule a stream", tag="livestreams",
           auth="user", roles=SELLERS, body=StreamPatch, errors=(404,))
async def patch_stream(call: Call):
    async with call.services.db.tx(call.principal) as conn:
        before = await _own_stream(call, conn)
        fields = call.body.model_dump(exclude_unset=True)
        row = await streams_db.update(conn, before["id"], fields)
        was, now = audit.changed({k: before[k] for k in fields}, {k: row[k] for k in fields})
        if now:
            await audit.record(conn, call.principal.user_id, "stream.update", "livestream", row["id"],
                               before=was, after=now)
        if "slow_mode_seconds" in now:  # the same change as a moderator's chat:slowmode, found under its name
            await audit.record(conn, call.principal.user_id, "stream.slow_mode", "livestream", row["id"],
                               before={"slow_mode_seconds": was["slow_mode_seconds"]},
                               after={"slow_mode_seconds": now["slow_mode_seconds"]})
    # loaded (not only looked up in the cache) so the change reaches the other workers' copies of the room
    state = await call.services.rooms.streams.get(row["id"])
    call.services.rooms.streams.refresh_row(state, row)
    if row["slow_mode_seconds"] != before["slow_mode_seconds"]:  # the room hears it as if a moderator had used chat:slowmode
        await call.services.rooms.publish(state, "chat:slowmode",
                                          {"stream_id": state.id, "seconds": row["slow_mode_seconds"]})
    return stream_out(row)


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
    async with call.services.db.tx(call.principal) as conn:
        row = await _stream(call, conn)
        products = await streams_db.products_json(conn, await streams_db.product_ids(conn, row["id"]))
    return {"items": products, "spotlight_product_id": row["spotlight_product_id"]}


@api.route("POST", f"{API}/livestreams/{{id}}/products", summary="Attach products to the stream",
           tag="livestreams", auth="user", roles=SELLERS, body=ProductIds, errors=(404,))
async def attach_products(call: Call):
    _check_ids(call.body.product_ids)
    async with call.services.db.tx(call.principal) as conn:
        row = await _own_stream(call, conn)
        await _attach(conn, row, call.body.product_ids)
        ids = await streams_db.product_ids(conn, row["id"])
    return {"product_ids": ids}


@api.route("GET", f"{API}/livestreams/{{id}}/chat", summary="Chat history, newest last; page with ?before=",
           tag="livestreams", query=ChatQuery, errors=(404,))
async def chat_history(call: Call):
    await call.services.chat_writer.flush()
    async with call.services.db.tx(call.principal) as conn:
        row = await _stream(call, conn)
        rows = await chat_db.recent(conn, row["id"], call.query.limit, call.query.before)
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
    user_id = call.param("user_id")
    if not streams_db.is_uuid(user_id):
        raise not_found("user")
    await call.services.chat.unban(call.principal, call.param("id"), user_id.lower())
    return web.Response(status=204)
