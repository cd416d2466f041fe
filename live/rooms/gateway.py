"""The Socket.IO gateway: authenticate connections, parse and authorize events, call the room and chat
services, and answer every event with an ack `{ok: true, ...}` or `{ok: false, error: {code, message}}`."""
from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import socketio
from aiohttp import web
from pydantic import BaseModel, ValidationError

from live.appkeys import SERVICES
from live.auth import policy
from live.auth.principal import ANONYMOUS, Principal
from live.config import Settings
from live.errors import DomainError, UnknownUser, error_body
from live.logging import get_logger
from live.rooms import events
from live.rooms.control import MemoryControl
from live.rooms.packets import encode_event
from live.rooms.payloads import (
    BanIn,
    ChatIn,
    DeleteIn,
    HighlightIn,
    In,
    JoinIn,
    MuteIn,
    ReactionIn,
    SlowIn,
    UserIn,
    bad_text,
)
from live.rooms.sio import LeanManager, LeanPacket, LiveSocketServer, OrjsonShim
from live.rooms.transport import LeanSocket
from live.rooms.wsframes import close_frame, text_frame

log = get_logger("live.gateway")
MAX_ROOMS_PER_SOCKET = 3
BAD_BATCH = "auth.batch must be 1 or true (0, false or absent: one event per message)"  # the CONNECT opt-in
# events that write on the user's behalf: the user must exist (Gateway._known: a token's user is not looked up at
# connect), and a connection's are handled one at a time, in arrival order. Not: join, leave, reaction (totals
# only) and the cart events (their statement refuses an unknown buyer: no query per add).
WRITES = frozenset({"chat:send", "chat:delete", "user:mute", "user:ban", "user:unban", "chat:slowmode",
                    "moderator:add", "moderator:remove", "stream:start", "stream:end", "product:highlight",
                    "product:unhighlight"})


@dataclass(slots=True)
class Conn:
    sid: str
    principal: Principal
    sock: LeanSocket
    rooms: set[str] = field(default_factory=set)
    tat: float = 0.0  # the socket's event bucket: when it is full again (GCRA), time.monotonic()
    refused: int = 0  # events refused since the bucket was last full
    unknown: bool = False  # its user was found not to exist: every write is refused without asking again
    turn: asyncio.Lock | None = None  # made at its first write (WRITES): one at a time, in arrival order


def _err(code: str, message: str, **extra: Any) -> dict:
    """A refused event's ack: `{ok: false, error}`, the error object REST answers too (live/errors.py)."""
    return {"ok": False, "error": {**error_body(code, message), **extra}}


class Gateway:
    def __init__(self, app: web.Application, settings: Settings):
        origins = list(settings.cors_origins)
        self.app = app
        self.sio = LiveSocketServer(
            # async_handlers=False: the transport already runs each incoming message in a task of its own (the
            # front door's WsConnection, engineio for long-polling), so python-socketio need not make a second
            async_mode="aiohttp", json=OrjsonShim, serializer=LeanPacket, client_manager=LeanManager(),
            async_handlers=False,
            cors_allowed_origins="*" if "*" in origins else origins or None,
            max_http_buffer_size=16 * 1024, logger=False, engineio_logger=False, ping_interval=25, ping_timeout=20)
        self.sio.attach(app)
        self.conns: dict[str, Conn] = {}
        # every event of a socket takes a token: SOCKET_EVENT_BURST at once, then SOCKET_EVENT_RATE a second
        self.event_interval = 1.0 / settings.socket_event_rate
        self.event_window = settings.socket_event_burst * self.event_interval
        self.flood_limit = settings.socket_flood_disconnect
        self.by_user: dict[str, set[str]] = {}
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("*", self.on_unknown)
        handlers: dict[str, tuple[type[BaseModel], Callable]] = {
            "join": (JoinIn, self.join), "leave": (In, self.leave), "chat:send": (ChatIn, self.chat_send),
            "chat:delete": (DeleteIn, self.chat_delete), "user:mute": (MuteIn, self.user_mute),
            "user:ban": (BanIn, self.user_ban), "user:unban": (UserIn, self.user_unban),
            "chat:slowmode": (SlowIn, self.slowmode),
            "moderator:add": (UserIn, functools.partial(self.moderator, on=True)),
            "moderator:remove": (UserIn, functools.partial(self.moderator, on=False)),
            "reaction": (ReactionIn, self.reaction),
            "stream:start": (In, functools.partial(self.stream_status, status="live")),
            "stream:end": (In, functools.partial(self.stream_status, status="ended")),
            "product:highlight": (HighlightIn, self.highlight), "product:unhighlight": (In, self.unhighlight),
            "media:refresh": (In, self.media_refresh),
        }
        self.add_events(handlers)
        app.on_shutdown.append(self._drain)  # SIGTERM: after the listening sockets closed

    def add_events(self, handlers: dict[str, tuple[type[BaseModel], Callable]]) -> None:
        """Register events: name -> (payload model, async fn(conn, payload) -> dict | None). Other packages
        (commerce's cart events) add theirs here; the ack wrapping and error mapping are the same for all."""
        for event, (model, fn) in handlers.items():
            self.sio.on(event, self._wrap(event, model, fn))

    def send_to_user(self, user_id: str, event: str, data: dict) -> int:
        """Push one event to every socket of a user (order updates): here, and through the control channel on the
        other workers when there are several. The number of sockets reached on this worker."""
        packet = encode_event(event, data)
        self.services.control.push_user(user_id, packet)
        return self.deliver_to_user(user_id, packet)

    def send_to_users(self, event: str, pushes: list[tuple[str, dict]]) -> int:
        """Push one event to many users, each with its own data (`notification:new` to a seller's followers): to
        their sockets here, and to the other workers in one control message per MAX_USERS_PER_MESSAGE users.
        The number of sockets reached on this worker."""
        control = self.services.control
        if isinstance(control, MemoryControl):  # one worker: only the users connected here need a packet
            pushes = [(user_id, data) for user_id, data in pushes if user_id in self.by_user]
        packets = [(user_id, encode_event(event, data)) for user_id, data in pushes]
        control.push_users(packets)
        return sum(self.deliver_to_user(user_id, packet) for user_id, packet in packets if user_id in self.by_user)

    def deliver_to_user(self, user_id: str, packet: bytes) -> int:
        """Write one encoded event to the sockets a user has on this worker (RoomListener: also the pushes made
        on other workers, through the control channel)."""
        sids = self.by_user.get(user_id)
        if not sids:
            return 0
        frame = text_frame(packet)
        return sum(conn.sock.push(packet, frame) for sid in list(sids) if (conn := self.conns.get(sid)))

    @property
    def services(self):
        return self.app[SERVICES]

    # ---- plumbing ----

    def _wrap(self, event: str, model: type[BaseModel], fn: Callable[[Conn, Any], Awaitable[dict | None]]):
        async def handler(sid: str, data: Any = None, *extra: Any) -> dict:
            conn = self.conns.get(sid)
            if conn is None:
                return _err("unauthorized", "not connected")
            wait = self._over_limit(conn)
            if wait:
                return await self._limited(conn, wait)
            if not isinstance(data, dict):
                return _err("invalid", f"{event} expects an object payload")
            if (bad := bad_text(data)) is not None:
                return _err("invalid", f"{bad!r}: text holds a character that is not allowed (NUL, a control "
                                       f"character or half of a surrogate pair)")
            try:
                payload = model.model_validate(data)
                if event in WRITES:  # waiting for a lookup must not let the connection's next message pass it
                    conn.turn = conn.turn or asyncio.Lock()
                    async with conn.turn:
                        await self._known(conn)
                        result = await fn(conn, payload)
                else:
                    result = await fn(conn, payload)
                return {"ok": True, **(result or {})}
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "payload"
                return _err("invalid", f"{where}: {first['msg']}")
            except DomainError as exc:
                if isinstance(exc, UnknownUser):  # its later writes are refused without asking again
                    conn.unknown = True
                return {"ok": False, "error": exc.body()}
            except Exception:
                log.exception("event_failed", socket_event=event)
                return _err("internal", "internal error")
        return handler

    async def on_unknown(self, event: str, sid: str, *args: Any) -> dict:
        conn = self.conns.get(sid)
        if conn is not None and (wait := self._over_limit(conn)):
            return await self._limited(conn, wait)
        return _err("invalid", f"unknown event {str(event)[:64]!r}")

    def _over_limit(self, conn: Conn) -> float:
        """Take one token from the socket's bucket: 0.0 if there was one, else the seconds until there is."""
        now = time.monotonic()
        tat = conn.tat
        if tat <= now:
            tat = now
            conn.refused = 0  # the bucket refilled: a new episode
        new = tat + self.event_interval
        if new - now > self.event_window + 1e-9:
            return new - now - self.event_window
        conn.tat = new
        return 0.0

    async def _limited(self, conn: Conn, wait: float) -> dict:
        """The ack of an event over the socket's limit; a socket that keeps sending regardless (flood_limit
        refusals without ever letting its bucket refill) is disconnected (a Socket.IO disconnect: clients do
        not reconnect by themselves after it)."""
        conn.refused += 1
        if conn.refused == self.flood_limit:
            log.warning("socket_flood_disconnect", user_id=conn.principal.user_id, refused=conn.refused)
            await self.sio.disconnect(conn.sid)
            await conn.sock.close(wait=False)
        return _err("rate_limited", "too many events on this connection", retry_after=round(max(wait, 0.001), 3))

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        batch = auth.get("batch") if isinstance(auth, dict) else None
        if batch is not None and (type(batch) not in (bool, int) or batch not in (0, 1)):
            raise socketio.exceptions.ConnectionRefusedError(BAD_BATCH, error_body("invalid", BAD_BATCH))
        principal = ANONYMOUS
        if token:
            try:
                principal = await self.services.principal_for_token(str(token))
            except DomainError as exc:  # the client's connect_error: message, and data {code, message}
                raise socketio.exceptions.ConnectionRefusedError(
                    exc.message, exc.body()) from None
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        sock = self.sio.eio.sockets.get(eio_sid)
        if sock is None:
            raise socketio.exceptions.ConnectionRefusedError("no transport", error_body("invalid", "no transport"))
        sock.batched = bool(batch)  # room events in one `batch` event per write (docs/protocol.md Delivery)
        self.conns[sid] = Conn(sid, principal, sock)
        if principal.user_id:
            self.by_user.setdefault(principal.user_id, set()).add(sid)

    async def on_disconnect(self, sid: str, *_reason: Any) -> None:
        conn = self.conns.pop(sid, None)
        if conn is None:
            return
        if conn.principal.user_id:
            sids = self.by_user.get(conn.principal.user_id)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self.by_user[conn.principal.user_id]
        for room in conn.rooms:
            self.services.rooms.leave(room, sid)

    def _stream(self, conn: Conn, p: In) -> str:
        if p.stream_id:
            return p.stream_id
        if len(conn.rooms) == 1:
            return next(iter(conn.rooms))
        raise DomainError("invalid", "stream_id is required")

    def _signed_in(self, conn: Conn) -> Principal:
        return policy.signed_in(conn.principal, "sign in first")

    async def _known(self, conn: Conn) -> None:
        """The user of a WRITES event must exist: one primary-key query per user and worker, remembered
        KNOWN_SECONDS (AuthStates.ensure_known); a connection whose user was not found is refused from then on
        without asking. Anonymous principals pass: the handlers refuse them in their own words."""
        principal = conn.principal
        if not principal.authenticated:
            return
        if conn.unknown:
            raise UnknownUser()
        await self.services.auth.ensure_known(principal.user_id)  # UnknownUser: flagged by _wrap

    # ---- events ----

    async def join(self, conn: Conn, p: JoinIn) -> dict:
        rooms = self.services.rooms
        if not await self.services.limiter.hit(f"join:{conn.sid}", 10, 10.0):
            raise DomainError("rate_limited", "too many joins")
        state = await rooms.streams.get(p.stream_id)
        if state.room not in conn.rooms and len(conn.rooms) >= MAX_ROOMS_PER_SOCKET:
            raise DomainError("invalid", f"at most {MAX_ROOMS_PER_SOCKET} streams per connection")
        if state.room in conn.rooms:
            rooms.leave(state.room, conn.sid)
            conn.rooms.discard(state.room)
        ack = await rooms.join(conn.sid, conn.sock, conn.principal, state, p.last_seq, p.epoch)
        if conn.sid not in self.conns:  # disconnected while joining
            rooms.leave(state.room, conn.sid)
            return ack
        conn.rooms.add(state.room)
        return ack

    async def leave(self, conn: Conn, p: In) -> dict:
        state = await self.services.rooms.streams.get(self._stream(conn, p))
        if state.room in conn.rooms:
            conn.rooms.discard(state.room)
            self.services.rooms.leave(state.room, conn.sid)
        return {"stream_id": state.id}

    async def chat_send(self, conn: Conn, p: ChatIn) -> dict:
        return {"message": await self.services.chat.send(conn.principal, self._stream(conn, p), p.text)}

    async def chat_delete(self, conn: Conn, p: DeleteIn) -> None:
        await self.services.chat.delete(self._signed_in(conn), self._stream(conn, p), p.message_id)

    async def user_mute(self, conn: Conn, p: MuteIn) -> dict:
        until = await self.services.chat.mute(self._signed_in(conn), self._stream(conn, p), p.user_id, p.seconds)
        return {"until": until}

    async def user_ban(self, conn: Conn, p: BanIn) -> None:
        # the published user:banned makes RoomService.apply kick the user's sockets here (and on every worker)
        await self.services.chat.ban(self._signed_in(conn), self._stream(conn, p), p.user_id, p.reason)

    async def user_unban(self, conn: Conn, p: UserIn) -> None:
        await self.services.chat.unban(self._signed_in(conn), self._stream(conn, p), p.user_id)

    def kick_banned(self, room: str, user_id: str) -> None:
        """A user was banned from a room, on this worker or another one (RoomListener, called by RoomService as
        it applies `user:banned`): their sockets here are told and leave the room."""
        # the room's own `user:banned` is flushed after the banned sockets have left, so tell them directly
        packet = encode_event(events.USER_BANNED, {"stream_id": room, "user_id": user_id})
        for sid in list(self.by_user.get(user_id, ())):
            target = self.conns.get(sid)
            if target is not None and room in target.rooms:
                target.sock.push(packet)
                target.rooms.discard(room)
                self.services.rooms.leave(room, sid)

    def stop(self) -> None:
        """The app is stopping: no more pings."""
        self.sio.eio.ping_wheel.stop()

    async def _drain(self, _app: web.Application) -> None:
        """Graceful shutdown: tell every client to reconnect and close its connection (websocket close 1012,
        service restart). Socket.IO clients reconnect by themselves after a transport close, land on another
        worker and join again with their last_seq (docs/protocol.md)."""
        packet = encode_event(events.SERVER_RECONNECT, {"reason": "shutdown"})
        frames = text_frame(packet) + close_frame(1012)
        for conn in list(self.conns.values()):
            sock = conn.sock
            transport = sock.transport
            if transport is not None and not transport.is_closing():
                sock.transport = None
                transport.write(frames)
                transport.close()  # after the buffer is sent; the reader loop ends and disconnect runs
            elif sock.push(packet):
                await sock.close(wait=False, abort=True)

    async def slowmode(self, conn: Conn, p: SlowIn) -> None:
        await self.services.chat.slow_mode(self._signed_in(conn), self._stream(conn, p), p.seconds)

    async def moderator(self, conn: Conn, p: UserIn, *, on: bool) -> None:
        await self.services.chat.set_moderator(self._signed_in(conn), self._stream(conn, p), p.user_id, on)

    async def reaction(self, conn: Conn, p: ReactionIn) -> None:
        principal = self._signed_in(conn)
        stream = self._stream(conn, p)
        state = await self.services.rooms.streams.get(stream)
        if state.room not in conn.rooms:
            raise DomainError("invalid", "join the stream first")
        if not await self.services.limiter.hit(f"react:{principal.user_id}", 10, 1.0):
            raise DomainError("rate_limited", "too many reactions")
        self.services.rooms.react(state, p.kind)

    async def media_refresh(self, conn: Conn, p: In) -> dict:
        state = await self.services.rooms.streams.get(self._stream(conn, p))
        return {"media": self.services.rooms.media_refresh(conn.sid, conn.principal, state,
                                                           joined=state.room in conn.rooms)}

    async def stream_status(self, conn: Conn, p: In, *, status: str) -> dict:
        state = await self.services.rooms.set_status(self._signed_in(conn), self._stream(conn, p), status)
        return {"status": state.status}

    async def highlight(self, conn: Conn, p: HighlightIn) -> dict:
        product = await self.services.rooms.highlight(self._signed_in(conn), self._stream(conn, p), p.product_id)
        return {"product": product}

    async def unhighlight(self, conn: Conn, p: In) -> None:
        await self.services.rooms.highlight(self._signed_in(conn), self._stream(conn, p), None)
