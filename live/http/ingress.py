"""A stream's LiveKit ingress (OBS into LiveKit; live/media/livekit_ingress.py): create, read, delete. Only the
stream's seller or an admin (the answer holds the stream key, a credential)."""
from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from live.auth.policy import SELLERS
from live.http.api import API, Api, Call

api = Api()


class IngressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Literal["rtmp", "whip"]


class Ingress(BaseModel):
    ingress_id: str
    input: Literal["rtmp", "whip"]
    url: str
    stream_key: str
    status: str | None = None
    error: str | None = None


class IngressCreated(Ingress):
    created: bool


@api.route("POST", f"{API}/livestreams/{{id}}/ingress", summary="Create the stream's LiveKit ingress (RTMP or WHIP "
           "for OBS): its URL and stream key; the stream's existing one when it has one", tag="media", auth="user",
           roles=SELLERS, body=IngressIn, response=IngressCreated, status=201, errors=(403, 404, 409, 502))
async def ingress_create(call: Call):
    state = await call.services.rooms.owned(call.principal, call.param("id"))
    ingress, created = await call.services.livekit_ingress.create(state, call.body.input, call.principal.user_id)
    return {**ingress, "created": created}


@api.route("GET", f"{API}/livestreams/{{id}}/ingress", summary="The stream's LiveKit ingress", tag="media",
           auth="user", roles=SELLERS, response=Ingress, errors=(403, 404))
async def ingress_get(call: Call):
    state = await call.services.rooms.owned(call.principal, call.param("id"))
    return await call.services.livekit_ingress.get(state.id)


@api.route("DELETE", f"{API}/livestreams/{{id}}/ingress", summary="Delete the stream's LiveKit ingress",
           tag="media", auth="user", roles=SELLERS, status=204, errors=(403, 404, 409, 502))
async def ingress_delete(call: Call):
    state = await call.services.rooms.owned(call.principal, call.param("id"))
    await call.services.livekit_ingress.delete(state.id)
    return web.Response(status=204)
