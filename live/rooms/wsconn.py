"""A front-door websocket after its handshake: client frames in (through the sans-IO `FrameReader`), Engine.IO
packets to python-engineio's socket. Server-to-client frames are written by LeanSocket.write_raw, as on every
lean socket, so every write (pongs and close frames included) counts against its cap on unsent output."""
from __future__ import annotations

import asyncio
from collections import Counter
from typing import Callable

from engineio import packet as eio_packet

from live.rooms.transport import LeanSocket
from live.rooms.wsframes import BINARY, CLOSE, FAIL, NO_STATUS, PING, TEXT, FrameReader, close_frame, pong_frame

# connections the front door turned away or closed for a protocol error or a limit, by reason (`too_many_connections`,
# `request_timeout`, `close_1002`, `close_1007`, `close_1008`, `close_1009`, ...): read by /metrics
REFUSALS: Counter = Counter()
OPENED: Counter = Counter()  # websockets the front door opened, by compression (`deflate`, `plain`): /metrics
LINGER_SECONDS = 2.0  # after our close frame or refusal, how long the peer's leftover bytes are read and dropped


class Pending:
    """A connection not past its handshake yet: a `deadline` timer and the `release` of its slot in its IP's
    pending count (both None once settled). Shared by the front door's head reader and the websocket's wait for
    its Socket.IO CONNECT."""

    __slots__ = ()
    deadline: asyncio.TimerHandle | None
    release: Callable[[], None] | None

    def _settled(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if self.release is not None:
            self.release()
            self.release = None


class WsConnection(Pending, asyncio.Protocol):
    """The protocol of a websocket viewer. Until its client sends its first Socket.IO CONNECT (`40...`) the
    connection is pending: `deadline` closes it (1008) when that does not come in time, and `release` gives
    its slot back to the front door's count of pending connections of its IP."""

    __slots__ = ("transport", "sock", "server", "reader", "deadline", "release", "detached")

    def __init__(self, server, sock: LeanSocket, transport: asyncio.Transport, release=None):
        self.server = server
        self.sock = sock
        self.transport = transport
        self.reader = FrameReader(server.max_http_buffer_size, inflate=sock.deflate)
        self.deadline: asyncio.TimerHandle | None = None
        self.release = release  # called once, when the connection stops being pending
        self.detached = False  # the Engine.IO socket has let go of the connection

    def expect_connect(self, timeout: float) -> None:
        self.deadline = asyncio.get_running_loop().call_later(timeout, self.fail, 1008)

    def data_received(self, data: bytes) -> None:
        pongs: list[bytes] | None = None  # the answers to this read's pings, written at once (one write a burst)
        for kind, value in self.reader.feed(data):
            if kind == TEXT or kind == BINARY:
                if not self.message(value):
                    return
            elif kind == PING:
                pong = pong_frame(value)
                if pongs is None:
                    pongs = [pong]
                else:
                    pongs.append(pong)
            elif kind == CLOSE or kind == FAIL:
                if pongs and not self.sock.write_raw(b"".join(pongs)):
                    return
                code = value[0]
                if kind == FAIL:
                    self.fail(code)
                else:  # echo the client's code, then hang up
                    self.close(1000 if code == NO_STATUS else code)
                return
            # PONG: nothing to do
        if pongs:  # counted against the output cap like any write: a client that never reads is cut
            self.sock.write_raw(b"".join(pongs))

    def message(self, data: str | bytes) -> bool:
        """One Engine.IO packet from the client."""
        if data == "3":  # PONG, the common case: no task
            self.sock.schedule_ping()
            return True
        if self.deadline is not None and data[:2] == "40":  # the Socket.IO CONNECT: no longer pending
            self._settled()
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

    def close(self, code: int) -> bool:
        """Send a close frame with `code` (if the output cap allows) and end the connection. The socket is
        closed at once; the TCP connection is half-closed and what the client still sends is read and dropped
        for at most `LINGER_SECONDS` (closing with unread bytes would reset it and lose the close frame)."""
        transport = self.transport
        if not transport.is_closing():
            if self.sock.write_raw(close_frame(code)):
                self.reader.done = True  # nothing more is read
                self._detach()
                self._settled()
                if transport.can_write_eof():
                    transport.write_eof()
                    self.deadline = asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.abort)
                else:
                    transport.close()
            elif not transport.is_closing():  # cut for its unsent output, or the socket let go of it already
                transport.abort()
        return False

    def fail(self, code: int) -> bool:
        """A protocol error (or a connection that stayed pending too long): close with `code`."""
        REFUSALS[f"close_{code}"] += 1
        self._settled()
        return self.close(code)

    def pause_writing(self) -> None:  # the pending-bytes cap in write_raw bounds the buffer
        pass

    def resume_writing(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self._settled()
        self._detach()

    def _detach(self) -> None:
        """The Engine.IO socket lets go of the connection and closes (once): its disconnect handlers run."""
        if self.detached:
            return
        self.detached = True
        sock = self.sock
        sock.transport = None
        if not sock.closed and not sock.closing:
            task = asyncio.get_running_loop().create_task(
                sock.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE))
            task.add_done_callback(lambda _t: self.server.sockets.pop(sock.sid, None))
        else:
            self.server.sockets.pop(sock.sid, None)
