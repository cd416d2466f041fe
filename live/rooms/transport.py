"""A lean Engine.IO websocket path under python-socketio.

python-socketio/engineio handle the protocol (handshake, long-polling, upgrade, Socket.IO packets and acks).
What this module changes is how bytes reach an upgraded websocket client:

* every packet is framed once and written straight to the connection's asyncio transport, in order, with no
  per-socket queue or writer task (engineio's default keeps an unbounded queue and a writer task per socket);
* a room broadcast is one pre-built buffer of websocket frames written to every socket of the room
  (`write_raw`), so fan-out costs one `transport.write` per viewer per sweep and no Python encoding per viewer;
* a socket whose unsent output passes `MAX_PENDING_BYTES` is cut off instead of growing memory;
* pings come from one timer wheel for the whole server instead of a sleeping task per socket.
"""
from __future__ import annotations

import asyncio
import contextlib
import time

import engineio
from aiohttp import WSMsgType, web
from engineio import packet as eio_packet
from engineio.async_drivers.aiohttp import WebSocket as _EioAiohttpWebSocket
from engineio.async_socket import AsyncSocket

from live.rooms import packets, polling
from live.rooms.wsframes import text_frame

MAX_PENDING_BYTES = 512 * 1024
BATCHED, DEFLATE = 1, 2  # bits of LeanSocket.mode
PING_FRAME = text_frame(packets.PING)  # Engine.IO PING in one websocket text frame


def pre_encoded(text: str) -> eio_packet.Packet:
    """An Engine.IO MESSAGE packet whose wire text is already known (for long-polling clients)."""
    pkt = eio_packet.Packet(eio_packet.MESSAGE)
    pkt.encode_cache = text
    return pkt


class LeanWebSocket(_EioAiohttpWebSocket):
    """engineio's aiohttp websocket wrapper, without per-message compression (frames are pre-built)."""

    async def __call__(self, environ):
        request: web.Request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False,
                                           autoping=True)
        await self._sock.prepare(request)
        self.environ = environ
        self.transport = request.transport
        await self.handler(self)
        return self._sock


def _mode_bit(bit: int, doc: str) -> property:
    """A bool property over one bit of `LeanSocket.mode` (the hub reads the int; everyone else the flags)."""
    def get(self) -> bool:
        return bool(self.mode & bit)

    def set_(self, on: bool) -> None:
        self.mode = self.mode | bit if on else self.mode & ~bit
    return property(get, set_, doc=doc)


class LeanSocket(AsyncSocket):
    """An Engine.IO socket that, once on websocket, writes frames directly to its transport."""

    transport: asyncio.Transport | None = None
    dropped: bool = False
    mode: int = 0  # how room events are written to it: BATCHED and DEFLATE bits (0: one plain frame per event)
    batched = _mode_bit(BATCHED, "Opted in at CONNECT (auth `batch`): room events arrive as one `batch` event a write.")
    deflate = _mode_bit(DEFLATE, "permessage-deflate agreed at the handshake (the front door's websockets only).")
    _queue: asyncio.Queue | None = None

    @classmethod
    def for_websocket(cls, server, sid: str, transport: asyncio.Transport) -> "LeanSocket":
        """A socket born on a websocket (the front door): connected at once, and no packet queue until
        something needs one (long-polling never happens on it)."""
        sock = cls.__new__(cls)
        sock.server, sock.sid, sock.transport = server, sid, transport
        sock.last_ping = time.time()
        sock.connected = sock.upgraded = True
        sock.upgrading = sock.closing = sock.closed = False
        sock.session = {}
        return sock

    @property
    def queue(self) -> asyncio.Queue:
        q = self._queue
        if q is None:
            q = self._queue = self.server.create_queue()
        return q

    @queue.setter
    def queue(self, q: asyncio.Queue) -> None:
        self._queue = q

    @classmethod
    def adopt(cls, sock: AsyncSocket) -> None:
        """Turn engineio's own socket (made for a long-polling handshake) into a LeanSocket."""
        queue = sock.__dict__.pop("queue", None)
        sock.__class__ = cls
        sock._queue = queue

    async def close(self, wait=True, abort=False, reason=None):
        was_open = not self.closed and not self.closing
        await super().close(wait=False, abort=abort, reason=reason)
        if wait and was_open and self._queue is not None:  # long-polling: the CLOSE packet leaves with the next
            with contextlib.suppress(asyncio.TimeoutError):  # poll; a client that never polls again is not
                await asyncio.wait_for(self._queue.join(), self.server.ping_timeout)  # waited for forever
        transport = self.transport
        if was_open and transport is not None:  # closed by the server: the CLOSE packet is out, hang up
            self.transport = None
            transport.close()

    async def handle_post_request(self, environ):
        """A long-polling POST, already checked (polling.refuse_post): its body is read from aiohttp's request,
        which keeps it, since the check read it."""
        request = environ.get("aiohttp.request")
        if request is None:
            return await super().handle_post_request(environ)
        for pkt in polling.packets(await request.read()) or ():
            await self.receive(pkt)

    def push(self, packet: bytes, frame: bytes | None = None) -> bool:
        """Send one pre-encoded Socket.IO packet (42[...]), on websocket or long-polling; `frame` is its websocket
        frame if the caller built it already (one event to several sockets). False if the socket is gone."""
        if self.transport is not None:
            return self.write_raw(frame or text_frame(packet))
        if self.closed or self.closing:
            return False
        self.queue.put_nowait(pre_encoded(packet.decode()))
        return True

    def write_raw(self, data: bytes) -> bool:
        """Write pre-built websocket frames. False if the socket is gone or was cut off for being too slow."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > MAX_PENDING_BYTES:
            self.dropped = True
            self.transport = None
            transport.abort()  # the reader loop ends and the disconnect handlers run
            return False
        transport.write(data)
        return True

    async def kill(self) -> None:
        """Cut the connection at once (a client that broke the protocol); the disconnect handlers run."""
        transport = self.transport
        if transport is not None:
            self.transport = None
            transport.abort()  # the reader loop ends and closes the socket
        else:
            await self.close(wait=False, abort=True)

    async def send(self, pkt):
        if self.transport is not None:
            if self.closed:
                return
            encoded = pkt.encode()
            if isinstance(encoded, str):
                self.write_raw(text_frame(encoded.encode()))
            return  # we never send binary packets
        await super().send(pkt)

    def schedule_ping(self):
        """A PONG came (or the socket just connected): the next PING goes out one interval from now. As in
        engineio, only once per PING: an unasked-for PONG schedules nothing."""
        if self.last_ping:
            self.last_ping = None
            self.server.ping_wheel.add(self)

    def _ping_now(self) -> None:
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            if self.transport is not None:
                self.write_raw(PING_FRAME)
            else:
                self.queue.put_nowait(eio_packet.Packet(eio_packet.PING))
            self.server.ping_wheel.expect_pong(self)

    def _pong_overdue(self) -> None:
        last = self.last_ping
        if last is not None and not self.closed and not self.closing \
                and time.time() - last > self.server.ping_timeout:
            asyncio.get_running_loop().create_task(self.kill())

    async def _websocket_handler(self, ws: LeanWebSocket):
        sock: web.WebSocketResponse = ws._sock
        timeout = self.server.ping_interval + self.server.ping_timeout
        if self.connected:  # an upgrade from long-polling: probe, then UPGRADE
            self.upgrading = True
            msg = await sock.receive(timeout=timeout)
            if msg.type != WSMsgType.TEXT or msg.data != "2probe":
                self.upgrading = False
                return
            await sock.send_str("3probe")
            await self.queue.put(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
            msg = await sock.receive(timeout=timeout)
            if msg.type != WSMsgType.TEXT or msg.data != "5":
                self.upgrading = False
                return
            self.upgraded, self.upgrading = True, False
        else:
            self.connected = self.upgraded = True
        self.transport = ws.transport
        while not self.queue.empty():  # anything queued before the switch goes first, in order
            pkt = self.queue.get_nowait()
            self.queue.task_done()
            if pkt is not None:
                await self.send(pkt)
        try:
            while True:
                try:
                    msg = await sock.receive(timeout=timeout)
                except asyncio.TimeoutError:
                    break
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break  # close, error
                try:  # a binary frame is a binary MESSAGE (a Socket.IO attachment); the gateway vets it
                    pkt = eio_packet.Packet(encoded_packet=msg.data)
                except (ValueError, IndexError):
                    break  # not an Engine.IO packet: drop the client
                if not 0 <= pkt.packet_type < len(eio_packet.packet_names):
                    break
                try:
                    await self.receive(pkt)
                except engineio.exceptions.UnknownPacketError:
                    pass
                except engineio.exceptions.SocketIsClosedError:
                    break
                except Exception:  # a bad packet must not kill the server; drop the client
                    self.server.logger.exception("receive error")
                    break
        finally:
            self.transport = None
            if not sock.closed:
                await sock.close()
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)


class PingWheel:
    """Engine.IO heartbeats for all sockets from one task, one slot per second: a PING one interval after the
    last PONG, and a check one timeout after each PING that cuts off a client that did not answer (this
    replaces engineio's per-socket ping task and its client-monitoring task)."""

    def __init__(self, interval: int, timeout: int = 20):
        self.interval = max(1, int(interval))
        self.timeout = max(1, int(timeout)) + 1
        size = max(self.interval, self.timeout) + 1
        self._pings: list[set[LeanSocket]] = [set() for _ in range(size)]
        self._checks: list[set[LeanSocket]] = [set() for _ in range(size)]
        self._pos = 0
        self._task: asyncio.Task | None = None

    def add(self, sock: LeanSocket) -> None:
        self._pings[(self._pos + self.interval) % len(self._pings)].add(sock)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def expect_pong(self, sock: LeanSocket) -> None:
        self._checks[(self._pos + self.timeout) % len(self._checks)].add(sock)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._pos = pos = (self._pos + 1) % len(self._pings)
            due, self._pings[pos] = self._pings[pos], set()
            for sock in due:
                sock._ping_now()
            due, self._checks[pos] = self._checks[pos], set()
            for sock in due:
                sock._pong_overdue()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class LeanEngineServer(engineio.AsyncServer):
    """engineio's server with LeanSocket sockets, the lean websocket wrapper and the ping wheel."""

    def __init__(self, *args, fast_event=None, **kwargs):
        """`fast_event`: LiveSocketServer's (sid, Socket.IO packet) -> coroutine | None, or None."""
        super().__init__(*args, **kwargs)
        self._async = dict(self._async, websocket=LeanWebSocket)
        self.ping_wheel = PingWheel(self.ping_interval, self.ping_timeout)
        self.start_service_task = False  # the ping wheel finds clients that stopped answering
        self.fast_event = fast_event

    async def handle_request(self, *args, **kwargs):
        """engineio's entry point for HTTP (long-polling); a POST it would mishandle is answered here first
        (live/rooms/polling.py)."""
        request = args[0] if args else None
        if isinstance(request, web.BaseRequest) and request.method == "POST":
            refusal = await polling.refuse_post(self, request)
            if refusal is not None:
                return refusal
        return await super().handle_request(*args, **kwargs)

    async def _trigger_event(self, event, *args, **kwargs):
        if event == "connect":
            sock = self.sockets.get(args[0])
            if sock is not None and type(sock) is AsyncSocket:
                LeanSocket.adopt(sock)
        return await super()._trigger_event(event, *args, **kwargs)

