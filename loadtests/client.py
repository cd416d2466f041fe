"""A cheap simulated viewer: one raw websocket speaking Engine.IO v4 / Socket.IO v5 over an asyncio Protocol.

No client object per viewer beyond this protocol instance: frames are parsed in `data_received`, every viewer
counts the chat messages it gets (a bytes prefix test), and only sampled viewers decode JSON to measure latency
from the sender's timestamp and to find missing or duplicate messages by `seq`.
"""
from __future__ import annotations

import asyncio
import base64
import os
import time

import orjson

CHAT_PREFIX = b'42["chat:new"'


def client_frame(payload: bytes) -> bytes:
    """A masked websocket text frame (client to server)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    elif n < 65536:
        header = bytes((0x81, 0xFE)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0xFF)) + n.to_bytes(8, "big")
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return header + mask + masked


class Stats:
    """What one generator process saw."""

    def __init__(self) -> None:
        self.connected = 0
        self.joined = 0
        self.received = 0  # chat messages received, all viewers
        self.latencies: list[float] = []  # seconds, sampled viewers
        self.join_ms: list[float] = []
        self.ack_ms: list[float] = []
        self.errors: dict[str, int] = {}
        self.missing = 0
        self.duplicates = 0
        self.sent = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Viewer(asyncio.Protocol):
    def __init__(self, stats: Stats, path: str, host: str, token: str | None, stream: str, sample: bool):
        self.stats, self.path, self.host, self.token, self.stream, self.sample = stats, path, host, token, stream, sample
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.state = "handshake"
        self.t0 = time.monotonic()
        self.joined = asyncio.get_running_loop().create_future()
        self.acks: dict[int, tuple[float, asyncio.Future]] = {}
        self.next_ack = 1
        self.last_seq = 0
        self.seen: set[int] = set()

    # ---- connection ----

    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET {self.path}?EIO=4&transport=websocket HTTP/1.1\r\nHost: {self.host}\r\n"
                         f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n").encode())

    def connection_lost(self, exc):
        if self.state != "closed":
            self.stats.error("disconnected")
        self.state = "closed"
        if not self.joined.done():
            self.joined.set_exception(ConnectionError("closed before join"))

    def send(self, text: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(text))

    def emit(self, event: str, data: dict) -> asyncio.Future:
        ack_id = self.next_ack
        self.next_ack += 1
        fut = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = (time.monotonic(), fut)
        self.send(b"42" + str(ack_id).encode() + orjson.dumps([event, data]))
        return fut

    def close(self) -> None:
        self.state = "closed"
        if self.transport is not None:
            self.transport.close()

    # ---- parsing ----

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.stats.error("handshake_refused")
                self.close()
                return
            del self.buf[: end + 4]
            self.upgraded = True
        buf = self.buf
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b1 = buf[pos + 1] & 0x7F
            hdr = 2
            if b1 == 126:
                if n - pos < 4:
                    break
                b1 = int.from_bytes(buf[pos + 2:pos + 4], "big")
                hdr = 4
            elif b1 == 127:
                if n - pos < 10:
                    break
                b1 = int.from_bytes(buf[pos + 2:pos + 10], "big")
                hdr = 10
            if n - pos < hdr + b1:
                break
            opcode = buf[pos] & 0x0F
            payload = bytes(buf[pos + hdr:pos + hdr + b1])
            pos += hdr + b1
            if opcode == 1:
                self.on_packet(payload)
            elif opcode == 8:
                self.close()
        del buf[:pos]

    def on_packet(self, p: bytes) -> None:
        if p.startswith(CHAT_PREFIX):
            self.stats.received += 1
            if self.sample:
                self.on_chat(orjson.loads(p[2:])[1])
            return
        if p == b"2":  # Engine.IO ping
            self.send(b"3")
            return
        if p.startswith(b"0{"):  # Engine.IO open
            self.send(b"40" + (orjson.dumps({"token": self.token}) if self.token else b""))
            return
        if p.startswith(b"40"):  # Socket.IO connected
            self.stats.connected += 1
            self.state = "connected"
            join = self.emit("join", {"stream_id": self.stream})
            join.add_done_callback(self._joined)
            return
        if p.startswith(b"44"):
            self.stats.error("connect_refused")
            self.close()
            return
        if p.startswith(b"43"):  # ack: 43<id>[data]
            i = 2
            while i < len(p) and 48 <= p[i] <= 57:
                i += 1
            entry = self.acks.pop(int(p[2:i]), None)
            if entry is not None:
                self.stats.ack_ms.append((time.monotonic() - entry[0]) * 1000)
                if not entry[1].done():
                    entry[1].set_result(orjson.loads(p[i:])[0])

    def _joined(self, fut: asyncio.Future) -> None:
        ack = fut.result()
        if not ack.get("ok"):
            self.stats.error("join_" + ack.get("error", {}).get("code", "failed"))
            self.joined.set_exception(ConnectionError("join refused"))
            return
        self.last_seq = ack["seq"]
        self.stats.joined += 1
        self.stats.join_ms.append((time.monotonic() - self.t0) * 1000)
        self.joined.set_result(ack)

    def on_chat(self, msg: dict) -> None:
        seq = msg["seq"]
        if seq in self.seen:
            self.stats.duplicates += 1
            return
        self.seen.add(seq)
        text = msg["text"]
        if text.startswith("t="):
            self.stats.latencies.append(time.time() - float(text[2:].split(" ", 1)[0]))


async def open_viewer(stats: Stats, host: str, port: int, token: str | None, stream: str, sample: bool,
                      path: str = "/socket.io/") -> Viewer:
    loop = asyncio.get_running_loop()
    _, viewer = await loop.create_connection(
        lambda: Viewer(stats, path, f"{host}:{port}", token, stream, sample), host, port)
    return viewer
