"""The embedded media server: WHIP ingest (one publisher per stream) and WHEP playback, peers of aiortc in this
worker. The publisher's encoded frames are relayed to the viewers (relay.py: encode once, fan out).

Limits (per worker): MEDIA_MAX_SESSIONS peer connections (publishers and viewers together; past it 503; viewers
are refused PUBLISHER_RESERVE sessions earlier, so anonymous viewers cannot take a publisher's place), an SDP
offer of at most MAX_SDP_BYTES (the route refuses more with 413). A session whose connection has not come up
within CONNECT_TIMEOUT seconds, or that fails or closes, ends by itself. Video: VP8 (preferred) or H.264, as the
publisher's offer lists them; audio: Opus. ICE: the server's host candidates only (no STUN/TURN), non-trickle
(the answer carries them): the worker must be reachable at its own addresses.
"""
from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSessionDescription
from aiortc import sdp as aiortc_sdp

from live.errors import DomainError
from live.logging import get_logger
from live.media.embedded.directory import SESSION_HEADER, MediaDirectory
from live.media.embedded.headers import frame_size
from live.media.embedded.relay import EncodedTap, Fanout

log = get_logger("live.media")

MAX_SDP_BYTES = 64 * 1024
PUBLISHER_RESERVE = 10  # sessions only publishers may take (at most a tenth of MEDIA_MAX_SESSIONS)
CONNECT_TIMEOUT = 20.0  # seconds for ICE + DTLS to come up after the answer
VIDEO_CODECS = ("video/VP8", "video/H264")  # the publisher's first of these, in its offer's order
AUDIO_CODECS = ("audio/opus",)

OnPublishing = Callable[..., Awaitable[None]]  # (stream id, publishing, size: (width, height) | None)
IsBanned = Callable[[str, str], Awaitable[bool]]  # (stream id, user id): from this worker's state of the room
SESSION_ID = re.compile(r"[0-9a-f]{8}\.[A-Za-z0-9_-]{22}")  # `<worker tag>.<random>`
STREAMS_PATH = "/api/v1/livestreams"  # the routes' prefix (live/http/media.py): WHIP and WHEP of a stream under it


def endpoint(stream_id: str, kind: str) -> str:
    """The path of a stream's WHIP (`kind` whip) or WHEP (whep) endpoint."""
    return f"{STREAMS_PATH}/{stream_id}/{kind}"


class PublisherObserver(Protocol):
    """Told when a publisher's connection comes up and when its session ends (the recorder, the thumbnails):
    `started` after the connection is up (its `session.fanouts` are set), `ended` once, after the fanouts ended.
    Each call is awaited in turn; an observer that raises is logged and does not stop the others."""

    async def started(self, session: "Session") -> None: ...

    async def ended(self, session: "Session") -> None: ...


@dataclass
class Session:
    id: str
    stream_id: str
    role: str  # publisher | viewer
    pc: RTCPeerConnection
    user_id: str | None = None  # a viewer's, when signed in (a ban ends that user's sessions)
    fanouts: dict[str, Fanout] = field(default_factory=dict)  # publisher: kind -> fanout
    announced: bool = False  # publisher: its connection came up (the `started` observers were called)
    size: tuple[int, int] | None = None  # publisher: the picture size of its last video keyframe
    told: bool = False  # publisher: the room was told it publishes (told again that it stopped, at the end)
    ended: bool = False


def parse_offer(text: str) -> aiortc_sdp.SessionDescription:
    """An SDP offer aiortc can read, with at least one audio or video section; else 400 `invalid`."""
    if not text.startswith("v=0"):
        raise DomainError("invalid", "the body is not an SDP offer (it must start with v=0)")
    try:
        parsed = aiortc_sdp.SessionDescription.parse(text)
    except Exception:  # aiortc's parser raises whatever a malformed line makes it raise
        raise DomainError("invalid", "the SDP offer cannot be parsed") from None
    if not any(m.kind in ("audio", "video") for m in parsed.media):
        raise DomainError("validation_failed", "the SDP offer has no audio or video section")
    return parsed


def _chosen(media: aiortc_sdp.MediaDescription, wanted: tuple[str, ...]) -> str | None:
    names = [f"{media.kind}/{c.name}".lower() for c in media.rtp.codecs]
    for name in names:
        for w in wanted:
            if name == w.lower():
                return w
    return None


def _capabilities(kind: str, mime: str) -> list:
    caps = (RTCRtpSender.getCapabilities(kind).codecs if kind == "video" else
            RTCRtpReceiver.getCapabilities(kind).codecs)
    return [c for c in caps if c.mimeType.lower() == mime.lower()]


class EmbeddedMedia:
    def __init__(self, *, max_sessions: int, on_publishing: OnPublishing | None = None,
                 observers: tuple[PublisherObserver, ...] = (), is_banned: IsBanned | None = None):
        self.max_sessions = max_sessions
        self.is_banned = is_banned  # asked where a viewer's session is made (here, also for a forwarded offer)
        self.on_publishing = on_publishing
        self.observers = list(observers)
        self.sessions: dict[str, Session] = {}
        self.publishers: dict[str, Session] = {}  # stream id -> its publisher's session
        # across workers (set by the container with a shared Redis): who publishes what, forwards to the owner
        self.directory: MediaDirectory | None = None
        self._tasks: set[asyncio.Task] = set()  # announcements of a new picture size
        self.tag = secrets.token_hex(4)  # starts this worker's session ids: a DELETE elsewhere finds it

    @staticmethod
    def media_for(stream_id: str, publisher: bool) -> dict:
        """The join ack's `media` when this server serves the video: where to play (WHEP), and for the stream's
        seller or an admin where to publish (WHIP). No token: the WHIP/WHEP requests carry the caller's own."""
        media = {"kind": "whep", "url": endpoint(stream_id, "whep"), "can_publish": publisher}
        if publisher:
            media["publish_url"] = endpoint(stream_id, "whip")
        return media

    def publishing(self, stream_id: str) -> bool:
        return stream_id in self.publishers

    def _room(self, role: str) -> None:
        most = self.max_sessions
        if role == "viewer":
            most -= min(PUBLISHER_RESERVE, self.max_sessions // 10)
        if len(self.sessions) >= most:
            raise DomainError("unavailable", f"this server holds {len(self.sessions)} media sessions already")

    def _new(self, stream_id: str, role: str, user_id: str | None = None) -> Session:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        session = Session(f"{self.tag}.{secrets.token_urlsafe(16)}", stream_id, role, pc, user_id)
        self.sessions[session.id] = session

        @pc.on("connectionstatechange")
        async def _changed() -> None:
            if pc.connectionState == "connected" and role == "publisher" and not session.announced:
                session.announced = True
                await self._observe("started", session)
                if not session.ended:  # ended while the observers ran (the recorder's insert): nothing to tell
                    session.told = True
                    await self._announce(stream_id, True, session.size)
            elif pc.connectionState in ("failed", "closed"):
                await self.end(session.id)

        asyncio.get_running_loop().call_later(CONNECT_TIMEOUT, self._connect_deadline, session)
        return session

    def _connect_deadline(self, session: Session) -> None:
        if not session.ended and session.pc.connectionState != "connected":
            asyncio.get_running_loop().create_task(self.end(session.id))

    async def _answer(self, session: Session, offer: str) -> str:
        try:
            await session.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await session.pc.setLocalDescription(await session.pc.createAnswer())
        except Exception as exc:  # aiortc refuses an offer it cannot answer (no common codec, bad DTLS, ...)
            await self.end(session.id)
            raise DomainError("validation_failed", f"the SDP offer cannot be answered: {exc}") from None
        return session.pc.localDescription.sdp

    async def publish(self, stream_id: str, offer: str) -> tuple[str, str]:
        """WHIP: the seller's offer -> (session id, SDP answer). One publisher per stream (409)."""
        parsed = parse_offer(offer)
        if stream_id in self.publishers:
            raise DomainError("conflict", "someone is already publishing this stream; DELETE that session first")
        self._room("publisher")
        if self.directory is not None and not await self.directory.claim(stream_id):
            raise DomainError("conflict", "someone is already publishing this stream (on another worker)")
        if stream_id in self.publishers:  # claimed while this request waited for Redis
            raise DomainError("conflict", "someone is already publishing this stream; DELETE that session first")
        session = self._new(stream_id, "publisher")
        self.publishers[stream_id] = session
        for media in parsed.media:
            if media.kind not in ("audio", "video") or media.kind in session.fanouts:
                continue
            mime = _chosen(media, VIDEO_CODECS if media.kind == "video" else AUDIO_CODECS)
            if mime is None:
                continue
            transceiver = session.pc.addTransceiver(media.kind, direction="recvonly")
            transceiver.setCodecPreferences(_capabilities(media.kind, mime))
            receiver = transceiver.receiver
            fanout = Fanout(media.kind, mime, 90000 if media.kind == "video" else 48000,
                            lambda r=receiver: self._pli(r))
            # aiortc's receiver hands reassembled frames to its decoder's queue: the tap takes them instead
            receiver._RTCRtpReceiver__decoder_queue = EncodedTap(fanout)
            session.fanouts[media.kind] = fanout
        if not session.fanouts:
            await self.end(session.id)
            raise DomainError("validation_failed", "the offer has no VP8/H.264 video or Opus audio to publish")
        if "video" in session.fanouts:
            session.fanouts["video"].add_sink(lambda data, _ts, key, s=session: self._sized(s, data, key))
        return session.id, await self._answer(session, offer)

    def _sized(self, session: Session, data: bytes, keyframe: bool) -> None:
        """A sink of the publisher's video: the room is told the picture size once known, and again on a change."""
        if not keyframe:
            return
        size = frame_size(session.fanouts["video"].mime, data)
        if size is None or size == session.size:
            return
        session.size = size
        if session.told:
            task = asyncio.get_running_loop().create_task(self._resized(session, size))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _resized(self, session: Session, size: tuple[int, int]) -> None:
        if not session.ended and session.size == size:
            await self._announce(session.stream_id, True, size)

    @staticmethod
    def _pli(receiver: RTCRtpReceiver) -> bool:
        """Ask the publisher for a keyframe (RTCP PLI on each of its streams); False before it has sent any."""
        sources = receiver.getSynchronizationSources()
        for source in sources:
            asyncio.get_running_loop().create_task(receiver._send_rtcp_pli(source.source))
        return bool(sources)

    async def play(self, stream_id: str, offer: str, user_id: str | None = None) -> tuple[str, str]:
        """WHEP: a viewer's offer (`user_id` the signed-in viewer's, None when anonymous) -> (session id, SDP
        answer), sending the publisher's tracks (409 when nobody publishes). The publisher on another worker:
        the offer is forwarded to it (directory.py) and its answer relayed."""
        parse_offer(offer)
        if stream_id not in self.publishers and self.directory is not None:
            owner = await self.directory.owner(stream_id)
            if owner is not None and owner[0] != self.tag:
                _, answer, headers = await self.directory.forward(owner[1], "POST", f"/media/{stream_id}/whep",
                                                                   offer, user_id)
                return headers[SESSION_HEADER], answer
        return await self.play_here(stream_id, offer, user_id)

    async def play_here(self, stream_id: str, offer: str, user_id: str | None = None) -> tuple[str, str]:
        """WHEP on this worker's publisher of the stream (409 when it has none)."""
        parsed = parse_offer(offer)
        if user_id is not None and self.is_banned is not None and await self.is_banned(stream_id, user_id):
            raise DomainError("banned", "you are banned from this stream")
        # no await from here to _new: a ban from now on finds the session (ban())
        publisher = self.publishers.get(stream_id)
        if publisher is None:
            raise DomainError("conflict", "nobody is publishing this stream now")
        self._room("viewer")
        session = self._new(stream_id, "viewer", user_id)
        kinds = set()
        for media in parsed.media:
            fanout = publisher.fanouts.get(media.kind)
            if fanout is None or media.kind in kinds:
                continue
            kinds.add(media.kind)
            relay = fanout.track()
            transceiver = session.pc.addTransceiver(relay, direction="sendonly")
            transceiver.setCodecPreferences(_capabilities(media.kind, fanout.mime))
            # the viewer's PLI/FIR asks the publisher for a keyframe (the relay cannot make one)
            transceiver.sender._send_keyframe = fanout.request_keyframe
        if not kinds:
            await self.end(session.id)
            raise DomainError("validation_failed", "the offer asks for no audio or video this stream has")
        return session.id, await self._answer(session, offer)

    async def stop(self, session_id: str, stream_id: str, role: str) -> None:
        """DELETE of a WHIP (`role` publisher) or WHEP (viewer) session: here, or forwarded to the worker whose
        tag starts its id; 404 when no worker holds it."""
        if session_id not in self.sessions and self.directory is not None and SESSION_ID.fullmatch(session_id):
            tag = session_id.partition(".")[0]
            url = None if tag == self.tag else await self.directory.worker_url(tag)
            if url is not None:
                await self.directory.forward(url, "DELETE", f"/media/{stream_id}/{role}/{session_id}")
                return
        await self.end(self.session(session_id, stream_id, role).id)

    def session(self, session_id: str, stream_id: str, role: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None or session.stream_id != stream_id or session.role != role:
            raise DomainError("not_found", "no such media session")
        return session

    async def end(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None or session.ended:
            return
        session.ended = True
        if session.role == "publisher":
            if self.publishers.get(session.stream_id) is session:
                del self.publishers[session.stream_id]
                if self.directory is not None:
                    await self.directory.release(session.stream_id)
            for fanout in session.fanouts.values():
                fanout.end()
            for viewer in [s for s in self.sessions.values() if s.stream_id == session.stream_id]:
                await self.end(viewer.id)  # a viewer plays one publishing: the next one needs a new WHEP session
        # a sender's track is stopped by aiortc only when its RTP loop ends, which never starts for a viewer whose
        # connection did not come up: stop the relay tracks here (each leaves its fanout), or the fanout keeps them
        for transceiver in session.pc.getTransceivers():
            track = transceiver.sender.track
            if track is not None:
                track.stop()
        await session.pc.close()
        if session.announced:
            await self._observe("ended", session)
        if session.told:
            await self._announce(session.stream_id, False)

    def holds(self, stream_id: str, user_id: str | None = None) -> bool:
        """Whether this worker holds a session of the stream (of that viewer, when `user_id` is given)."""
        return any(s.stream_id == stream_id and (user_id is None or s.user_id == user_id)
                   for s in self.sessions.values())

    async def ban(self, stream_id: str, user_id: str) -> int:
        """A user was banned from the stream: their viewing sessions of it here end. How many ended."""
        ended = [s.id for s in list(self.sessions.values())
                 if s.stream_id == stream_id and s.role == "viewer" and s.user_id == user_id]
        for session_id in ended:
            await self.end(session_id)
        if ended:
            log.info("media_banned_viewer_cut", stream_id=stream_id, sessions=len(ended))
        return len(ended)

    async def end_stream(self, stream_id: str) -> None:
        """The stream ended: its publisher's session (which ends its viewers' and tells the room, once) and any
        viewer session left end here."""
        publisher = self.publishers.get(stream_id)
        if publisher is not None:
            await self.end(publisher.id)
        for session in [s for s in self.sessions.values() if s.stream_id == stream_id]:
            await self.end(session.id)

    async def _observe(self, what: str, session: Session) -> None:
        for observer in self.observers:
            if what == "started" and session.ended:  # ended meanwhile: the `ended` calls were made (or will be)
                return
            try:
                await getattr(observer, what)(session)
            except Exception:
                log.exception("media_observer_failed", observer=type(observer).__name__, call=what)

    async def _announce(self, stream_id: str, publishing: bool, size: tuple[int, int] | None = None) -> None:
        if self.on_publishing is None:
            return
        try:
            await self.on_publishing(stream_id, publishing, size)
        except Exception:
            log.exception("media_status_failed")

    async def close(self) -> None:
        for session_id in list(self.sessions):
            await self.end(session_id)
