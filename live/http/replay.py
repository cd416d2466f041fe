"""Replays (live/media/replay.py): a stream's recordings with its product timeline (JSON, through the registry),
a publishing stream's live thumbnail (live/media/embedded/thumbs.py), and the recorded files at /replays/<name>
(outside the JSON API, like /uploads): served by aiohttp's FileResponse, so range requests work (206 with
Content-Range, Accept-Ranges, 416 for a range past the end, ETag and Last-Modified with If-None-Match / If-Range)."""
from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel

from live.appkeys import SERVICES
from live.errors import not_found
from live.http.api import API, Api, Call
from live.media.replay import URL_PREFIX

api = Api()

REPLAY_CACHE = "public, max-age=86400"  # a file is only ever under its name once complete: it never changes
THUMBNAIL_CACHE = "public, max-age=2"  # replaced every THUMBNAIL_INTERVAL seconds


class SpotlightRef(BaseModel):
    product_id: str
    title: str | None


class RecordingOut(BaseModel):
    id: str
    source: str  # embedded | livekit_egress
    status: str  # recording | ready | failed
    url: str | None  # null until ready (and for an egress whose location is not an http(s) URL)
    content_type: str | None
    started_at: datetime
    duration_ms: int | None
    bytes: int | None
    width: int | None
    height: int | None
    spotlight_at_start: SpotlightRef | None  # the product in the spotlight when the recording began


class TimelineEntry(BaseModel):
    product_id: str | None  # null: the spotlight was cleared
    title: str | None
    at: datetime
    recording_id: str | None  # null: nothing was being recorded then
    offset_ms: int | None  # from the start of that recording


class ReplayOut(BaseModel):
    stream_id: str
    recordings: list[RecordingOut]
    timeline: list[TimelineEntry]


@api.route("GET", f"{API}/livestreams/{{id}}/replay", summary="The stream's recordings and its product timeline "
           "(each spotlight with its recording and offset)", tag="livestreams", auth="optional", response=ReplayOut,
           errors=(403, 404))
async def replay(call: Call):
    return await call.services.replays.replay(call.principal, call.param("id"))


@api.route("GET", f"{API}/livestreams/{{id}}/thumbnail", summary="The publishing stream's live thumbnail (a JPEG "
           "320 px wide, renewed every few seconds)", tag="livestreams", content_type="image/jpeg", errors=(404,))
async def thumbnail(call: Call):
    state = await call.services.rooms.streams.get(call.param("id"))
    path = call.services.thumbnails.find(state.id)
    if path is None:
        raise not_found("thumbnail")
    return web.FileResponse(path, headers={"Content-Type": "image/jpeg", "Cache-Control": THUMBNAIL_CACHE,
                                           "X-Content-Type-Options": "nosniff"})


async def replay_file(request: web.Request) -> web.StreamResponse:
    """GET /replays/<name>: a recording's file, with range requests."""
    found = request.app[SERVICES].replays.find(request.match_info["name"])
    if found is None:
        raise not_found("replay")
    path, content_type = found
    return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": REPLAY_CACHE,
                                           "X-Content-Type-Options": "nosniff"})


def register(app: web.Application) -> None:
    app.router.add_get(f"{URL_PREFIX}{{name}}", replay_file)
