"""The front door: one listening socket for REST and Socket.IO, with a lean path for websocket viewers.

aiohttp parses every HTTP request. Left to aiohttp, a websocket connection keeps its request, response,
middleware chain, websocket reader and writer and a handler task alive for as long as the viewer watches
(about 16 KB and a suspended coroutine stack each). So the front door reads the first request of a new
connection itself:

* a fresh Engine.IO websocket (`GET /socket.io/?EIO=4&transport=websocket`, no `sid`: what
  socket.io-client does with `transports: ["websocket"]` and what our load generator does) is answered here
  (origin check, handshake) and the connection is handed to `WsConnection`, a small protocol that parses
  client frames and feeds python-engineio's socket, with no task per connection;
* anything else (REST, long-polling, a polling client's upgrade carrying a `sid`, a malformed upgrade) is
  given to aiohttp untouched, bytes included, and behaves exactly as without the front door.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from engineio import packet as eio_packet

from live.rooms.transport import LeanSocket, ws_close_frame, ws_text_frame

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 8192  # request heads beyond this go to aiohttp, which answers 431/400
_KEEP_HEADERS = {b"origin": "HTTP_ORIGIN", b"host": "HTTP_HOST", b"user-agent": "HTTP_USER_AGENT",
                 b"x-forwarded-for": "HTTP_X_FORWARDED_FOR", b"x-forwarded-proto": "HTTP_X_FORWARDED_PROTO",
                 b"x-forwarded-host": "HTTP_X_FORWARDED_HOST"}


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


class WsConnection(asyncio.Protocol):
    """A websocket connection after the handshake: RFC 6455 client frames in, Engine.IO packets to the socket.
    Server-to-client frames are written by LeanSocket.write_raw, as on every lean socket."""

    __slots__ = ("transport", "sock", "server", "buf", "parts", "part_op", "max_size")

    def __init__(self, server, sock: LeanSocket, transport: asyncio.Transport):
        self.server = server
        self.sock = sock
        self.transport = transport
        self.buf = b""
        self.parts: list[bytes] | None = None  # a fragmented message being assembled
        self.part_op = 0
        self.max_size = server.max_http_buffer_size

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if not b1 & 0x80 or b0 & 0x70:  # client frames are masked; no extensions were agreed
                return self.fail(1002)
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if length > self.max_size:
                return self.fail(1009)
            end = pos + head + 4 + length
            if end > n:
                break
            payload = _unmask(buf[pos + head + 4:end], buf[pos + head:pos + head + 4])
            pos = end
            if not self.frame(b0 & 0x80, b0 & 0x0F, payload):
                return
        self.buf = buf[pos:] if pos < n else b""

    def frame(self, fin: int, opcode: int, payload: bytes) -> bool:
        if opcode >= 0x8:  # control frames: whole, short
            if not fin or len(payload) > 125:
                return self.fail(1002)
            if opcode == 0x9:  # ping
                self.transport.write(bytes((0x8A, len(payload))) + payload)
            elif opcode == 0x8:  # close: answer and hang up
                self.transport.write(ws_close_frame(1000))
                self.transport.close()
                return False
            return True  # pong
        if opcode == 0x0:  # continuation
            if self.parts is None:
                return self.fail(1002)
            self.parts.append(payload)
            if sum(map(len, self.parts)) > self.max_size:
                return self.fail(1009)
            if not fin:
                return True
            payload, opcode, self.parts = b"".join(self.parts), self.part_op, None
        elif self.parts is not None:
            return self.fail(1002)  # a new message before the fragmented one ended
        elif not fin:
            self.parts, self.part_op = [payload], opcode
            return True
        if opcode == 0x1:
            try:
                return self.message(payload.decode())
            except UnicodeDecodeError:
                return self.fail(1007)
        if opcode == 0x2:
            return self.message(payload)
        return self.fail(1002)

    def message(self, data: str | bytes) -> bool:
        """One Engine.IO packet from the client."""
        if data == "3":  # PONG, the common case: no task
            self.sock.schedule_ping()
            return True
        if isinstance(data, str) and data[:2] == "42":  # a Socket.IO event: its handler, without the layers
            fast = self.server.fast_event
            run = fast(self.sock.sid, data[1:]) if fast is not None else None
            if run is not None:
                asyncio.get_running_loop().create_task(run)
                return True
        try:
            pkt = eio_packet.Packet(encoded_packet=data)
        except (ValueError, IndexError):
            return self.fail(1003)
        kind = pkt.packet_type
        if kind == eio_packet.MESSAGE:
            asyncio.get_running_loop().create_task(
                self.server._trigger_event("message", self.sock.sid, pkt.data, run_async=False))
        elif kind == eio_packet.CLOSE:
            self.transport.close()
            return False
        elif kind == eio_packet.PONG:
            self.sock.schedule_ping()
        elif kind not in (eio_packet.NOOP, eio_packet.UPGRADE, eio_packet.PING):
            return self.fail(1003)
        return True

    def fail(self, code: int) -> bool:
        """A protocol error: close with `code` and drop the connection."""
        if not self.transport.is_closing():
            self.transport.write(ws_close_frame(code))
            self.transport.close()
        return False

    def pause_writing(self) -> None:  # the pending-bytes cap in write_raw bounds the buffer
        pass

    def resume_writing(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        sock = self.sock
        sock.transport = None
        if not sock.closed and not sock.closing:
            task = asyncio.get_running_loop().create_task(
                sock.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE))
            task.add_done_callback(lambda _t: self.server.sockets.pop(sock.sid, None))
        else:
            self.server.sockets.pop(sock.sid, None)


class FrontDoor(asyncio.Protocol):
    """The protocol of every new connection until its first request head is read."""

    __slots__ = ("door", "transport", "buf")

    def __init__(self, door: "FrontDoorServer"):
        self.door = door
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self._to_aiohttp()
            return
        head = self.buf[:end]
        if head.startswith(b"GET ") and self.door.eio_path_bytes in head[:len(self.door.eio_path_bytes) + 5]:
            request = _parse_head(head)
            if request is not None and self.door.accepts(request):
                self.door.open_websocket(self.transport, request, self.buf[end + 4:])
                return
        self._to_aiohttp()

    def _to_aiohttp(self) -> None:
        handler = self.door.http()
        transport, buf = self.transport, self.buf
        self.buf = b""
        transport.set_protocol(handler)
        handler.connection_made(transport)
        handler.data_received(buf)

    def eof_received(self) -> bool | None:
        return None  # close

    def connection_lost(self, exc: Exception | None) -> None:
        self.buf = b""


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


class FrontDoorServer:
    """The protocol factory of the listening socket: front doors that lead to aiohttp or to a WsConnection."""

    def __init__(self, http_server: web.Server, eio_server, path: str = "/socket.io/"):
        self.http = http_server
        self.eio = eio_server
        self.eio_path = path
        self.eio_path_bytes = path.encode()

    def __call__(self) -> FrontDoor:
        return FrontDoor(self)

    def accepts(self, req: dict[str, Any]) -> bool:
        """A fresh Engine.IO v4 websocket with a well-formed RFC 6455 handshake; everything else is aiohttp's."""
        q, h = req["query"], req["headers"]
        return (req["path"] == self.eio_path and q.get("EIO") == ["4"] and q.get("transport") == ["websocket"]
                and "sid" not in q and h.get(b"upgrade", b"").lower() == b"websocket"
                and b"upgrade" in h.get(b"connection", b"").lower() and h.get(b"sec-websocket-version") == b"13"
                and len(h.get(b"sec-websocket-key", b"")) == 24)

    def open_websocket(self, transport: asyncio.Transport, req: dict[str, Any], rest: bytes) -> None:
        eio = self.eio
        environ = _environ(req, transport)
        if eio.cors_allowed_origins != [] and environ.get("HTTP_ORIGIN"):
            allowed = eio._cors_allowed_origins(environ)
            if allowed is not None and environ["HTTP_ORIGIN"] not in allowed:
                body = b"Not an accepted origin."
                transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                transport.close()
                return
        accept = base64.b64encode(hashlib.sha1(req["headers"][b"sec-websocket-key"] + WS_GUID).digest())
        sid = eio.generate_id()
        sock = LeanSocket.for_websocket(eio, sid, transport)
        eio.sockets[sid] = sock
        conn = WsConnection(eio, sock, transport)
        transport.set_protocol(conn)
        open_packet = eio_packet.Packet(eio_packet.OPEN, {
            "sid": sid, "upgrades": [], "pingTimeout": int(eio.ping_timeout * 1000),
            "pingInterval": int(eio.ping_interval + eio.ping_interval_grace_period) * 1000,
            "maxPayload": eio.max_http_buffer_size}).encode()
        transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + ws_text_frame(open_packet.encode()))
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
    """aiohttp's AppRunner whose listening sockets open front doors."""

    def __init__(self, app: web.Application, eio_server, **kwargs):
        super().__init__(app, **kwargs)
        self._eio = eio_server
        self.front: FrontDoorServer | None = None

    @property
    def server(self):
        http = super().server
        if http is None:
            return None
        if self.front is None or self.front.http is not http:
            self.front = FrontDoorServer(http, self._eio)
        return self.front


async def serve(app: web.Application, *, host: str, port: int, reuse_port: bool = False, sock=None,
                backlog: int = 4096, shutdown_timeout: float = 10.0, handle_signals: bool = True,
                serving: Callable[[], None] | None = None) -> None:
    """Run `app` on host:port (and on the bound socket `sock` if given) through the front door until cancelled
    (or SIGINT/SIGTERM, which aiohttp's runner turns into GracefulExit). `serving()` is called once the app has
    started and listens."""
    runner = FrontDoorRunner(app, app["gateway"].sio.eio, handle_signals=handle_signals, access_log=None,
                             shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        sites = [web.TCPSite(runner, host, port, backlog=backlog, reuse_port=reuse_port or None)]
        if sock is not None:
            sites.append(web.SockSite(runner, sock, backlog=backlog))
        for site in sites:
            await site.start()
        if serving is not None:
            serving()
        while True:
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()


def run(app: web.Application, **kwargs: Any) -> None:
    """`web.run_app` for the front door: a fresh event loop, Ctrl-C and SIGTERM end it cleanly."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    task = loop.create_task(serve(app, **kwargs))
    try:
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not task.done():
            task.cancel()
            try:
                loop.run_until_complete(task)
            except (asyncio.CancelledError, web.GracefulExit):
                pass
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
