"""`python -m loadtests naive-server`: the "naive server" of issue 17, a bench target to compare live with.

    python -m loadtests naive-server --port 8090 [--host 127.0.0.1] [--flush-ms 50]

One process, uvloop, one asyncio Protocol per connection, everything in memory. It speaks just enough of
Engine.IO v4 / Socket.IO v5 over a websocket for the load tester's audience scenario (loadtests/viewer.py) to
run against it unchanged: the upgrade on `/socket.io/?EIO=4&transport=websocket`, OPEN
`0{sid, upgrades, pingInterval, pingTimeout, maxPayload}`, CONNECT `40{auth}` -> `40{"sid"}` (the token's
claims are read, not verified), and events with acks shaped like live's (docs/protocol.md):

* `join {stream_id, last_seq?, epoch?}` -> `{ok, seq, epoch, media: null, recovered, ...}`: recovered with
  `events` when `last_seq` and `epoch` are within the room's last HISTORY events, else a snapshot (`stream`,
  `viewers`, `spotlight: null`, the last CHAT_KEPT messages as `chat`, `reactions: {}`);
* `leave`; `chat:send {stream_id?, text}` (signed in, to a stream joined first, 1-500 characters; no rate
  limit) -> `{ok, message}` and a
  `chat:new {id, seq, stream_id, user: {id, name, role}, text, ts}` to the room; `reaction` is acked and not
  broadcast; any other event gets `{ok: false, error: {code: "invalid"}}`.

Fan-out, the point of it: a room's events wait in a list; `--flush-ms` (50) after the first pending event one
websocket frame holding them all, `42["batch",[[name, data], ...]]`, is built once and the same bytes are written
to every member's transport (a member that joined while events were pending gets only those after its join's
seq). A room left empty with nothing pending is forgotten (its history too). A member whose unsent output passes
MAX_PENDING_BYTES is cut off. Pings every 25 s; no PONG within 20 s
closes the connection. `GET /healthz` answers 200. Bad input gets an error ack or a close, never a crash.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import os
import sys
import time
from collections import deque

import orjson

from live.rooms import packets
from live.rooms.frontdoor import WS_GUID
from live.rooms.wsframes import BINARY, CLOSE, FAIL, PING, TEXT, FrameReader, close_frame, pong_frame, text_frame

PING_INTERVAL, PING_TIMEOUT = 25, 20  # seconds, as live
MAX_PAYLOAD = 16 * 1024  # a client's websocket message, as live
MAX_HEAD = 8 * 1024  # the HTTP request head
MAX_PENDING_BYTES = 512 * 1024  # unsent output before a member is cut off, as live
HISTORY = 1000  # events per room kept for recovery, as live's broker
CHAT_KEPT = 50  # chat messages in a join snapshot
MAX_ROOMS = 3  # streams one connection may join, as live
EPOCH = os.urandom(6).hex()
EVENTS = frozenset({"join", "leave", "chat:send", "reaction"})
BATCH_HEAD = packets.EVENT + b'["batch",['


def claims(token) -> dict | None:
    """A JWT's claims, read without checking the signature (a benchmark target, never a server)."""
    try:
        part = str(token).split(".")[1]
        data = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("sub") else None


class Room:
    __slots__ = ("name", "members", "seq", "pending", "history", "chat", "handle")

    def __init__(self, name: str):
        self.name = name
        self.members: dict[Conn, int] = {}  # member -> the seq of its join while events were pending, else 0
        self.seq = 0
        self.pending: list[tuple[int, bytes]] = []  # (seq, the element's JSON)
        self.history: deque[tuple[int, bytes]] = deque(maxlen=HISTORY)
        self.chat: deque[dict] = deque(maxlen=CHAT_KEPT)
        self.handle: asyncio.TimerHandle | None = None


class NaiveServer:
    def __init__(self, flush_s: float = 0.05):
        self.flush_s = flush_s
        self.rooms: dict[str, Room] = {}
        self.conns = 0
        self.ids = 0
        self.stats = {"flushes": 0, "writes": 0, "events": 0, "dropped": 0}

    def room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name)
        return room

    def forget_if_empty(self, room: Room) -> None:
        """Drop a room nobody is in and nothing waits to be written to (its next join starts it afresh)."""
        if not room.members and room.handle is None and self.rooms.get(room.name) is room:
            del self.rooms[room.name]

    def publish(self, room: Room, event: str, data: dict) -> dict:
        room.seq += 1
        data = {**data, "seq": room.seq}
        element = orjson.dumps([event, data])
        room.pending.append((room.seq, element))
        room.history.append((room.seq, element))
        self.stats["events"] += 1
        if room.handle is None:
            room.handle = asyncio.get_running_loop().call_later(self.flush_s, self.flush, room)
        return data

    def flush(self, room: Room) -> None:
        room.handle = None
        pending, room.pending = room.pending, []
        frame = text_frame(BATCH_HEAD + b",".join(e for _, e in pending) + b"]]")
        late: list[tuple[Conn, int]] = []
        for conn, floor in room.members.items():
            if floor:
                late.append((conn, floor))
            else:
                conn.write(frame)
        for conn, floor in late:
            room.members[conn] = 0
            rest = [e for seq, e in pending if seq > floor]
            if rest:
                conn.write(text_frame(BATCH_HEAD + b",".join(rest) + b"]]"))
        self.stats["flushes"] += 1
        self.stats["writes"] += len(room.members)
        self.forget_if_empty(room)


class Conn(asyncio.Protocol):
    """One client: the HTTP request head, then websocket frames carrying Engine.IO packets."""

    def __init__(self, server: NaiveServer):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.reader: FrameReader | None = None
        self.sid = ""
        self.user: dict | None = None
        self.connected = False
        self.rooms: set[str] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.awaiting_pong = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.conns += 1

    def connection_lost(self, exc) -> None:
        self.server.conns -= 1
        if self.timer is not None:
            self.timer.cancel()
        for name in self.rooms:
            room = self.server.rooms.get(name)
            if room is not None:
                room.members.pop(self, None)
                self.server.forget_if_empty(room)
        self.rooms.clear()
        self.transport = None

    def write(self, data: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        if t.get_write_buffer_size() > MAX_PENDING_BYTES:
            self.server.stats["dropped"] += 1
            t.abort()
            return
        t.write(data)

    def send(self, packet: bytes) -> None:
        self.write(text_frame(packet))

    # ---- HTTP ----

    def data_received(self, data: bytes) -> None:
        if self.reader is not None:
            return self.frames(data)
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > MAX_HEAD:
                self.reply(b"431 Request Header Fields Too Large")
            return
        lines = self.head[:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers = dict((k.strip().lower(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:]))
        path = parts[1] if len(parts) == 3 else ""
        if parts[0] != "GET":
            return self.reply(b"405 Method Not Allowed")
        if path.split("?")[0] == "/healthz":
            return self.reply(b"200 OK", b'{"status":"ok","server":"naive"}')
        key = headers.get("sec-websocket-key", "")
        if not path.startswith("/socket.io/"):
            return self.reply(b"404 Not Found", b'{"error":"not found"}')
        if "transport=websocket" not in path or "EIO=4" not in path \
                or headers.get("upgrade", "").lower() != "websocket" or not key:
            return self.reply(b"400 Bad Request", b'{"error":"websocket upgrades of Engine.IO 4 only"}')
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest())
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.reader = FrameReader(MAX_PAYLOAD)
        self.sid = base64.urlsafe_b64encode(os.urandom(15)).decode()
        self.send(packets.OPEN + orjson.dumps({"sid": self.sid, "upgrades": [], "pingInterval": PING_INTERVAL * 1000,
                                               "pingTimeout": PING_TIMEOUT * 1000, "maxPayload": MAX_PAYLOAD}))
        self.timer = asyncio.get_running_loop().call_later(PING_INTERVAL, self.ping)
        rest = self.head[end + 4:]
        self.head = b""
        if rest:
            self.frames(rest)

    def reply(self, status: bytes, body: bytes = b"") -> None:
        self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        self.transport.close()

    # ---- websocket and Engine.IO ----

    def frames(self, data: bytes) -> None:
        for kind, value in self.reader.feed(data):
            if kind == TEXT:
                self.packet(value)
            elif kind == PING:
                self.write(pong_frame(value))
            elif kind in (CLOSE, FAIL, BINARY):
                code = 1003 if kind == BINARY else value[0]
                self.write(close_frame(1000 if code == 1005 else code))
                if self.transport is not None:
                    self.transport.close()
                return

    def ping(self) -> None:
        if self.awaiting_pong:  # no PONG within PING_TIMEOUT
            if self.transport is not None:
                self.transport.abort()
            return
        self.send(packets.PING)
        self.awaiting_pong = True
        self.timer = asyncio.get_running_loop().call_later(PING_TIMEOUT, self.ping)

    def packet(self, text: str) -> None:
        if text == "3":  # PONG
            if self.awaiting_pong:
                self.awaiting_pong = False
                self.timer.cancel()
                self.timer = asyncio.get_running_loop().call_later(PING_INTERVAL, self.ping)
        elif text == "2":
            self.send(packets.PONG)
        elif text.startswith("40"):
            try:
                auth = orjson.loads(text[2:]) if len(text) > 2 else {}
            except orjson.JSONDecodeError:
                return self.refuse()
            self.user = claims(auth.get("token")) if isinstance(auth, dict) else None
            self.connected = True
            self.send(packets.CONNECT + orjson.dumps({"sid": self.sid}))
        elif text.startswith("42") and self.connected:
            i = 2
            while i < len(text) and text[i].isdigit():
                i += 1
            try:
                event = orjson.loads(text[i:])
            except orjson.JSONDecodeError:
                event = None
            if not isinstance(event, list) or not event or not isinstance(event[0], str) or i > 18:
                return self.refuse()
            ack = self.event(event[0], event[1] if len(event) > 1 else None)
            if i > 2:
                self.send(packets.encode_ack(int(text[2:i]), [ack]))
        elif text in ("1", "41"):
            self.transport.close()
        elif text not in ("6", "5"):  # NOOP, UPGRADE: nothing to do; anything else is not Engine.IO
            self.refuse()

    def refuse(self) -> None:
        """A packet that is not Socket.IO: close 1003, as live does."""
        self.write(close_frame(1003))
        if self.transport is not None:
            self.transport.close()

    def event(self, name: str, p) -> dict:
        if name not in EVENTS:
            return error("invalid", f"unknown event {name[:64]!r}")
        if not isinstance(p, dict):
            return error("invalid", f"{name} expects an object payload")
        stream = p.get("stream_id")
        if stream is None and name != "join" and len(self.rooms) == 1:
            stream = next(iter(self.rooms))
        if not isinstance(stream, str) or not 0 < len(stream) <= 120:
            return error("invalid", "stream_id: required")
        server = self.server
        if name == "join":
            if stream not in self.rooms and len(self.rooms) >= MAX_ROOMS:
                return error("invalid", f"at most {MAX_ROOMS} streams per connection")
            room = server.room(stream)
            self.rooms.add(stream)
            room.members[self] = room.seq if room.pending else 0
            ack = {"ok": True, "seq": room.seq, "epoch": EPOCH, "media": None}
            last = p.get("last_seq")
            if type(last) is int and p.get("epoch") == EPOCH and 0 <= last <= room.seq and (
                    last == room.seq or (room.history and room.history[0][0] <= last + 1)):
                return {**ack, "recovered": True,
                        "events": [orjson.loads(e) for seq, e in room.history if seq > last]}
            return {**ack, "recovered": False, "viewers": len(room.members), "spotlight": None,
                    "chat": list(room.chat), "reactions": {},
                    "stream": {"id": stream, "slug": stream, "title": "Naive show", "status": "live"}}
        if name == "leave":
            self.rooms.discard(stream)
            room = server.rooms.get(stream)
            if room is not None:
                room.members.pop(self, None)
                server.forget_if_empty(room)
            return {"ok": True, "stream_id": stream}
        if name == "chat:send":
            if self.user is None:
                return error("unauthorized", "sign in to chat")
            if stream not in self.rooms:
                return error("invalid", "join first")
            text = p.get("text")
            if not isinstance(text, str) or not 0 < len(text.strip()) <= 500:
                return error("invalid", "text: 1 to 500 characters")
            server.ids += 1
            user = self.user
            message = server.publish(server.room(stream), "chat:new", {
                "id": server.ids, "stream_id": stream, "text": text.strip(), "ts": time.time(),
                "user": {"id": str(user["sub"]), "name": str(user.get("name", "")), "role": user.get("role")}})
            server.room(stream).chat.append(message)
            return {"ok": True, "message": message}
        return {"ok": True}  # reaction: acked, not broadcast


def error(code: str, message: str) -> dict:
    return {"ok": False, "error": {"code": code, "message": message}}


async def serve(host: str, port: int, flush_s: float, ready: asyncio.Future | None = None) -> None:
    """Serve until cancelled; `ready` gets the bound port."""
    server = NaiveServer(flush_s)
    listener = await asyncio.get_running_loop().create_server(lambda: Conn(server), host, port, backlog=4096)
    bound = listener.sockets[0].getsockname()[1]
    if ready is not None:
        ready.set_result(bound)
    print(f"naive-server on http://{host}:{bound} (pid {os.getpid()}, flush {flush_s * 1000:.0f} ms)",
          file=sys.stderr, flush=True)
    async with listener:
        await listener.serve_forever()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests naive-server", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--flush-ms", type=float, default=50.0, help="ms from a room's first pending event to its write")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535 or not 0 < args.flush_ms <= 10_000:
        p.error("--port must be 0-65535 and --flush-ms in (0, 10000]")  # exit 2
    import uvloop

    from live.runner import raise_nofile

    raise_nofile()
    try:
        uvloop.run(serve(args.host, args.port, args.flush_ms / 1000))
    except OSError as exc:
        print(f"naive-server: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
