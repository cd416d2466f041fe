"""The front door: one listening socket for REST and Socket.IO, with a lean path for websocket viewers.

aiohttp parses every HTTP request. Left to aiohttp, a websocket connection keeps its request, response,
middleware chain, websocket reader and writer and a handler task alive for as long as the viewer watches
(about 16 KB and a suspended coroutine stack each). So the front door reads the first request of a new
connection itself:

* a fresh Engine.IO websocket (`GET /socket.io/?EIO=4&transport=websocket`, no `sid`: what
  socket.io-client does with `transports: ["websocket"]` and what our load generator does) is answered here
  (origin check, handshake) and the connection is handed to `WsConnection` (live/rooms/wsconn.py), a small
  protocol that parses client frames (live/rooms/wsframes.py) and feeds python-engineio's socket, with no task
  per connection;
* anything else (REST, long-polling, a polling client's upgrade carrying a `sid`, a malformed upgrade) is
  given to aiohttp untouched, bytes included, and behaves exactly as without the front door.

Until a connection is past its handshake (its first request head; for a websocket, also its Socket.IO
CONNECT) it is pending: it has `DoorLimits.head_timeout` for the head (408) and `connect_timeout` for the
CONNECT (close 1008), and one IP may hold at most `pending_per_ip` pending connections (429). aiohttp closes
keep-alive connections idle for `keepalive_timeout` (the runner's argument).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import orjson
from aiohttp import web
from engineio import packet as eio_packet

from live.appkeys import SERVICES
from live.errors import DomainError
from live.rooms.transport import LeanSocket
from live.rooms.wsconn import LINGER_SECONDS, OPENED, REFUSALS, Pending, WsConnection
from live.rooms.wsframes import deflate_answer, text_frame

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 8192  # request heads beyond this go to aiohttp, which answers 431/400
_KEEP_HEADERS = {b"origin": "HTTP_ORIGIN", b"host": "HTTP_HOST", b"user-agent": "HTTP_USER_AGENT",
                 b"x-forwarded-for": "HTTP_X_FORWARDED_FOR", b"x-forwarded-proto": "HTTP_X_FORWARDED_PROTO",
                 b"x-forwarded-host": "HTTP_X_FORWARDED_HOST"}


class FrontDoor(Pending, asyncio.Protocol):
    """The protocol of every new connection until its first request head is read. It is pending until then:
    closed (408) if the head does not come within the head timeout, counted against its IP's pending cap."""

    __slots__ = ("door", "transport", "buf", "deadline", "release")

    def __init__(self, door: "FrontDoorServer"):
        self.door = door
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.deadline: asyncio.TimerHandle | None = None
        self.release: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        door = self.door
        self.release = door.admit(transport)
        if self.release is None:  # too many pending connections from this IP
            _refuse(transport, "too_many_connections", "too many connections from your address are opening")
            return
        self.deadline = asyncio.get_running_loop().call_later(door.limits.head_timeout, self._too_slow)

    def data_received(self, data: bytes) -> None:
        if self.release is None:
            return
        seen = len(self.buf)
        self.buf += data
        end = self.buf.find(b"\r\n\r\n", max(0, seen - 3))
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self._to_aiohttp()
            return
        head = self.buf[:end]
        if head.startswith(b"GET ") and self.door.eio_path_bytes in head[:len(self.door.eio_path_bytes) + 5]:
            request = _parse_head(head)
            if request is not None and self.door.accepts(request):
                self.deadline.cancel()
                release, self.release = self.release, None  # the websocket stays pending until its CONNECT
                self.door.open_websocket(self.transport, request, self.buf[end + 4:], release)
                return
        self._to_aiohttp()

    def _too_slow(self) -> None:
        self._settled()
        _refuse(self.transport, "request_timeout", "the request head did not arrive in time")

    def _to_aiohttp(self) -> None:
        self._settled()
        handler = self.door.http()
        transport, buf = self.transport, self.buf
        self.buf = b""
        transport.set_protocol(handler)
        handler.connection_made(transport)
        handler.data_received(buf)

    def eof_received(self) -> bool | None:
        return None  # close

    def connection_lost(self, exc: Exception | None) -> None:
        self._settled()
        self.buf = b""


def _refuse(transport: asyncio.Transport, code: str, message: str) -> None:
    """Answer an HTTP error with the usual JSON body and the code's status, and hang up."""
    REFUSALS[code] += 1
    error = DomainError(code, message)
    body = orjson.dumps({"error": error.body()})
    reason = HTTPStatus(error.status).phrase.encode()
    transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (error.status, reason, len(body), body))
    hang_up(transport)


LINGER_BYTES = 65536  # a refused connection's leftover input is dropped for LINGER_SECONDS or up to this much
MAX_LINGERING = 1024  # connections lingering at once; past this a refused connection is closed at once
MAX_LINGERING_PER_IP = 16  # and of one IP address, so that one address cannot take the others' slots


class _Lingering(asyncio.Protocol):
    """A refused connection after our answer and FIN: its input is dropped until the peer hangs up, or
    LINGER_SECONDS or LINGER_BYTES pass. Closing at once while the peer is still sending (a trickled head)
    makes our kernel reset the connection, and a reset makes the peer's kernel discard our unread answer."""

    __slots__ = ("transport", "ip", "left", "timer")
    count = 0
    per_ip: dict[str, int] = {}

    def __init__(self, transport: asyncio.Transport, ip: str):
        self.transport, self.ip = transport, ip
        self.left = LINGER_BYTES
        self.timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)
        _Lingering.count += 1
        _Lingering.per_ip[ip] = _Lingering.per_ip.get(ip, 0) + 1

    def data_received(self, data: bytes) -> None:
        self.left -= len(data)
        if self.left < 0:
            self.transport.close()

    def eof_received(self) -> bool | None:
        return None  # close

    def connection_lost(self, exc: Exception | None) -> None:
        self.timer.cancel()
        _Lingering.count -= 1
        left = _Lingering.per_ip[self.ip] - 1
        if left:
            _Lingering.per_ip[self.ip] = left
        else:
            del _Lingering.per_ip[self.ip]


def hang_up(transport: asyncio.Transport) -> None:
    """Close a connection we have just answered, gracefully: send the answer and a FIN, then linger (unless
    MAX_LINGERING, or MAX_LINGERING_PER_IP of its address, linger already)."""
    ip = _peer_ip(transport)
    if _Lingering.count >= MAX_LINGERING or _Lingering.per_ip.get(ip, 0) >= MAX_LINGERING_PER_IP \
            or not transport.can_write_eof() or transport.is_closing():
        transport.close()
        return
    transport.write_eof()
    transport.set_protocol(_Lingering(transport, ip))


def _peer_ip(transport: asyncio.Transport) -> str:
    peer = transport.get_extra_info("peername")
    return peer[0] if isinstance(peer, tuple) and peer else ""  # a unix socket's peer is a path, or none


def _parse_head(head: bytes) -> dict[str, Any] | None:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1":
        return None
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    try:
        target = parts[1].decode("ascii")
    except UnicodeDecodeError:
        return None
    url = urlsplit(target)
    return {"path": url.path, "query_string": url.query, "query": parse_qs(url.query), "headers": headers}


@dataclass(frozen=True)
class DoorLimits:
    """The front door's timeouts and caps (settings HTTP_HEAD_TIMEOUT_SECONDS, WS_CONNECT_TIMEOUT_SECONDS,
    MAX_PENDING_CONNECTIONS_PER_IP; see .env.example)."""

    head_timeout: float = 10.0  # seconds for a new connection's first request head
    connect_timeout: float = 10.0  # seconds for a websocket's Socket.IO CONNECT after the handshake
    pending_per_ip: int = 256  # connections of one IP not past these two steps (0: no cap)
    deflate: bool = True  # permessage-deflate for websockets that offer it (WS_DEFLATE)

    @classmethod
    def of(cls, settings) -> "DoorLimits":
        return cls(settings.http_head_timeout_seconds, settings.ws_connect_timeout_seconds,
                   settings.max_pending_connections_per_ip, settings.ws_deflate)


class FrontDoorServer:
    """The protocol factory of the listening socket: front doors that lead to aiohttp or to a WsConnection."""

    def __init__(self, http_server: web.Server, eio_server, path: str = "/socket.io/",
                 limits: DoorLimits | None = None):
        self.http = http_server
        self.eio = eio_server
        self.eio_path = path
        self.eio_path_bytes = path.encode()
        self.limits = limits or DoorLimits()
        self.pending: dict[str, int] = {}  # IP -> its connections not past their handshake

    def __call__(self) -> FrontDoor:
        return FrontDoor(self)

    def admit(self, transport: asyncio.Transport) -> Callable[[], None] | None:
        """Count a new pending connection of its IP: the function that uncounts it (call it once), or None
        when the IP has its cap of pending connections already."""
        ip = _peer_ip(transport)
        pending, cap = self.pending, self.limits.pending_per_ip
        n = pending.get(ip, 0)
        if cap and n >= cap:
            return None
        pending[ip] = n + 1

        def release() -> None:
            left = pending[ip] - 1
            if left:
                pending[ip] = left
            else:
                del pending[ip]
        return release

    def accepts(self, req: dict[str, Any]) -> bool:
        """A fresh Engine.IO v4 websocket with a well-formed RFC 6455 handshake; everything else is aiohttp's."""
        q, h = req["query"], req["headers"]
        return (req["path"] == self.eio_path and q.get("EIO") == ["4"] and q.get("transport") == ["websocket"]
                and "sid" not in q and h.get(b"upgrade", b"").lower() == b"websocket"
                and b"upgrade" in h.get(b"connection", b"").lower() and h.get(b"sec-websocket-version") == b"13"
                and len(h.get(b"sec-websocket-key", b"")) == 24)

    def open_websocket(self, transport: asyncio.Transport, req: dict[str, Any], rest: bytes,
                       release: Callable[[], None] | None = None) -> None:
        eio = self.eio
        environ = _environ(req, transport)
        if eio.cors_allowed_origins != [] and environ.get("HTTP_ORIGIN"):
            allowed = eio._cors_allowed_origins(environ)
            if allowed is not None and environ["HTTP_ORIGIN"] not in allowed:
                body = b"Not an accepted origin."
                transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                hang_up(transport)
                if release is not None:
                    release()
                return
        accept = base64.b64encode(hashlib.sha1(req["headers"][b"sec-websocket-key"] + WS_GUID).digest())
        extensions = deflate_answer(req["headers"].get(b"sec-websocket-extensions")) if self.limits.deflate else None
        sid = eio.generate_id()
        sock = LeanSocket.for_websocket(eio, sid, transport)
        sock.deflate = extensions is not None
        OPENED["deflate" if extensions else "plain"] += 1
        eio.sockets[sid] = sock
        conn = WsConnection(eio, sock, transport, release)
        transport.set_protocol(conn)
        conn.expect_connect(self.limits.connect_timeout)
        open_packet = eio_packet.Packet(eio_packet.OPEN, {
            "sid": sid, "upgrades": [], "pingTimeout": int(eio.ping_timeout * 1000),
            "pingInterval": int(eio.ping_interval + eio.ping_interval_grace_period) * 1000,
            "maxPayload": eio.max_http_buffer_size}).encode()
        transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Accept: " + accept
                        + (b"\r\nSec-WebSocket-Extensions: " + extensions if extensions else b"")
                        + b"\r\n\r\n" + text_frame(open_packet.encode()))
        loop = asyncio.get_running_loop()
        loop.create_task(self._connected(sock, conn, environ))
        if rest:
            conn.data_received(rest)

    async def _connected(self, sock: LeanSocket, conn: WsConnection, environ: dict) -> None:
        ret = await self.eio._trigger_event("connect", sock.sid, environ, run_async=False)
        if ret is not None and ret is not True:
            conn.fail(1008)
            return
        sock.schedule_ping()


def _environ(req: dict[str, Any], transport: asyncio.Transport) -> dict[str, Any]:
    peer = transport.get_extra_info("peername")
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": req["path"], "QUERY_STRING": req["query_string"],
                               "REMOTE_ADDR": peer[0] if peer else "", "wsgi.url_scheme": "http"}
    for name, key in _KEEP_HEADERS.items():
        value = req["headers"].get(name)
        if value is not None:
            environ[key] = value.decode("latin-1")
    return environ


class FrontDoorRunner(web.AppRunner):
    """aiohttp's AppRunner whose listening sockets open front doors. The door's limits come from the app's
    settings (`app[SERVICES].settings`, there once the app has started) unless given."""

    def __init__(self, app: web.Application, eio_server, limits: DoorLimits | None = None, **kwargs):
        super().__init__(app, **kwargs)
        self._eio = eio_server
        self._limits = limits
        self.front: FrontDoorServer | None = None

    @property
    def server(self):
        http = super().server
        if http is None:
            return None
        if self.front is None or self.front.http is not http:
            limits = self._limits
            if limits is None:
                services = self.app.get(SERVICES)
                limits = DoorLimits.of(services.settings) if services is not None else DoorLimits()
            self.front = FrontDoorServer(http, self._eio, limits=limits)
        return self.front
