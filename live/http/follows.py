"""Follows over REST: follow and unfollow a seller, a seller's public profile, the caller's follows; a stream's
cover image (a raw image body) and the uploaded files served back at /uploads/<name>."""
from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from live.appkeys import SERVICES
from live.auth.policy import SELLERS
from live.errors import not_found
from live.http.api import API, Api, Call, read_body
from live.http.streams import stream_out
from live.uploads import IMAGE_TYPES, URL_PREFIX

api = Api()
UPLOAD_CACHE = "public, max-age=31536000, immutable"  # a name is the content's hash: it never changes


class FollowState(BaseModel):
    seller_id: str
    following: bool
    followers: int


class SellerRef(BaseModel):
    id: str
    display_name: str
    slug: str


class FollowItem(BaseModel):
    seller: SellerRef
    live: bool = Field(description="the seller is live now")
    followed_at: datetime


class FollowsPage(BaseModel):
    items: list[FollowItem]
    next_cursor: str | None


class FollowsQuery(BaseModel):
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")
    limit: int = Field(default=50, ge=1, le=100)


class StreamSeller(BaseModel):
    id: str
    name: str
    slug: str


class StreamSummary(BaseModel):
    id: str
    slug: str
    title: str
    description: str | None
    status: str
    scheduled_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    thumbnail_url: str | None
    cover_url: str | None
    spotlight_product_id: str | None
    peak_viewers: int
    slow_mode_seconds: int
    seller: StreamSeller


class SellerProfile(BaseModel):
    id: str
    display_name: str
    slug: str
    bio: str | None
    created_at: datetime
    followers: int
    following: bool | None = Field(description="whether the caller follows the seller; null when not signed in")
    live: StreamSummary | None = Field(description="the seller's stream that is live now")
    upcoming: list[StreamSummary] = Field(description="scheduled streams, soonest first (at most 10)")


@api.route("POST", f"{API}/sellers/{{id}}/follow", summary="Follow a seller (again: no change)", tag="follows",
           auth="user", response=FollowState, errors=(404, 409))
async def follow(call: Call):
    return await call.services.follows.follow(call.principal, call.param("id"))


@api.route("DELETE", f"{API}/sellers/{{id}}/follow", summary="Unfollow a seller (also when not following)",
           tag="follows", auth="user", response=FollowState, errors=(404,))
async def unfollow(call: Call):
    return await call.services.follows.unfollow(call.principal, call.param("id"))


@api.route("GET", f"{API}/sellers/{{id}}", summary="A seller's public profile, by id or slug", tag="follows",
           auth="optional", response=SellerProfile, errors=(404,))
async def seller_profile(call: Call):
    profile, streams = await call.services.follows.profile(call.principal, call.param("id"))
    live = [stream_out(r) for r in streams if r["status"] == "live"]
    return {**profile, "live": live[0] if live else None,
            "upcoming": [stream_out(r) for r in streams if r["status"] == "scheduled"]}


@api.route("GET", f"{API}/me/follows", summary="The sellers you follow, newest first; page with ?cursor=",
           tag="follows", auth="user", query=FollowsQuery, response=FollowsPage)
async def my_follows(call: Call):
    return await call.services.follows.mine(call.principal, call.query.cursor, call.query.limit)


_IMAGE_BODY = {"required": True, "description": "the image's bytes (JPEG, PNG or WebP, told by its content; at most "
                                                "COVER_MAX_BYTES)",
               "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES.values()}}


@api.route("POST", f"{API}/livestreams/{{id}}/cover", summary="Set the stream's cover image (the raw image as body)",
           tag="livestreams", auth="user", roles=SELLERS, errors=(403, 404, 408, 413, 422),
           extra={"requestBody": _IMAGE_BODY})
async def set_cover(call: Call):
    services = call.services
    image = await read_body(call.request, services.settings.cover_max_bytes)
    return stream_out(await services.schedule.set_cover(call.principal, call.param("id"), image))


async def upload(request: web.Request) -> web.StreamResponse:
    """GET /uploads/<name>: an uploaded file (a stream's cover), served as a file, outside the JSON API."""
    found = request.app[SERVICES].uploads.find(request.match_info["name"])
    if found is None:
        raise not_found("upload")
    path, content_type = found
    return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": UPLOAD_CACHE,
                                           "X-Content-Type-Options": "nosniff"})


def register(app: web.Application) -> None:
    app.router.add_get(f"{URL_PREFIX}{{name}}", upload)
