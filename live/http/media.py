"""WHIP ingest and WHEP playback of the embedded media server (live/media/embedded): the body is an SDP offer
(Content-Type application/sdp, at most 64 KiB), the answer an SDP answer (201) with the session's Location;
DELETE on that Location ends the session. The seller (or an admin) publishes; anyone allowed to watch plays (a
user banned from the stream is refused). When LiveKit serves the video (LIVEKIT_URL set), every one of these
routes answers 409 `livekit_backend`: the join ack's `media` says where the video is."""
from __future__ import annotations

from aiohttp import web

from live.auth.policy import SELLERS
from live.errors import DomainError
from live.http.api import API, Api, Call, read_body
from live.media.embedded import MAX_SDP_BYTES
from live.media.embedded.server import endpoint

api = Api()

_SDP_BODY = {"requestBody": {"required": True, "content": {"application/sdp": {"schema": {
    "type": "string", "maxLength": MAX_SDP_BYTES, "description": "an SDP offer"}}}}}
_ERRORS = (403, 404, 408, 409, 413, 415, 422, 503)


def _embedded(call: Call):
    """The embedded media server, unless LiveKit is this server's media backend (409 `livekit_backend`)."""
    if call.services.media.enabled:
        raise DomainError("livekit_backend", "this server's video goes through LiveKit: use the join ack's media")
    return call.services.embedded


async def _offer(call: Call) -> str:
    if call.request.content_type != "application/sdp":
        raise DomainError("unsupported_media_type", "the body must be an SDP offer (Content-Type application/sdp)")
    raw = await read_body(call.request, MAX_SDP_BYTES)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise DomainError("invalid", "the SDP offer is not UTF-8") from None


def _created(kind: str, stream_id: str, session_id: str, answer: str) -> web.Response:
    location = f"{endpoint(stream_id, kind)}/{session_id}"
    return web.Response(text=answer, status=201, content_type="application/sdp", headers={"Location": location})


@api.route("POST", f"{API}/livestreams/{{id}}/whip", summary="Publish the stream's video (WHIP): SDP offer in, "
           "SDP answer out", tag="media", auth="user", roles=SELLERS, status=201, content_type="application/sdp",
           errors=_ERRORS, extra=_SDP_BODY)
async def whip_publish(call: Call):
    media = _embedded(call)
    state = await call.services.rooms.owned(call.principal, call.param("id"))
    offer = await _offer(call)  # first: the stream may end while the body comes
    if state.status == "ended":
        raise DomainError("stream_not_live", "the stream has ended")
    session_id, answer = await media.publish(state.id, offer)
    # ended while publish() waited (Redis, aiortc): this worker may not follow the room yet and missed the event
    if (await call.services.rooms.streams.reload(state)).status == "ended":
        await media.end(session_id)
        raise DomainError("stream_not_live", "the stream has ended")
    return _created("whip", state.id, session_id, answer)


@api.route("DELETE", f"{API}/livestreams/{{id}}/whip/{{session}}", summary="Stop publishing (end the WHIP "
           "session)", tag="media", auth="user", roles=SELLERS, status=204, errors=(403, 404, 409))
async def whip_end(call: Call):
    media = _embedded(call)
    state = await call.services.rooms.owned(call.principal, call.param("id"))
    await media.stop(call.param("session"), state.id, "publisher")
    return web.Response(status=204)


@api.route("POST", f"{API}/livestreams/{{id}}/whep", summary="Watch the stream (WHEP): SDP offer in, SDP answer "
           "out", tag="media", auth="optional", status=201, content_type="application/sdp", errors=_ERRORS,
           extra=_SDP_BODY)
async def whep_play(call: Call):
    media = _embedded(call)
    offer = await _offer(call)  # first: a ban landing while the body comes is then seen (and again by the owner)
    state = await call.services.rooms.streams.get(call.param("id"))
    if call.principal.user_id is not None and call.principal.user_id in state.bans:
        raise DomainError("banned", "you are banned from this stream")
    if state.status == "ended":
        raise DomainError("stream_not_live", "the stream has ended")
    session_id, answer = await media.play(state.id, offer, call.principal.user_id)
    return _created("whep", state.id, session_id, answer)


@api.route("DELETE", f"{API}/livestreams/{{id}}/whep/{{session}}", summary="Stop watching (end the WHEP session;"
           " its id is the capability)", tag="media", status=204, errors=(404, 409))
async def whep_end(call: Call):
    media = _embedded(call)
    state = await call.services.rooms.streams.get(call.param("id"))
    await media.stop(call.param("session"), state.id, "viewer")
    return web.Response(status=204)
