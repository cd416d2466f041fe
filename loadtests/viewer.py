"""A cheap simulated viewer: one raw websocket speaking Engine.IO v4 / Socket.IO v5 over an asyncio Protocol.

No client library object per viewer: the websocket upgrade, frame parsing and the few Socket.IO packets the
load test needs are handled here. The server writes the same bytes to every viewer of a room, so a chunk is
cut into frames once per process (`split_frames` keeps the last chunk's frames) and the viewers that get the
same chunk reuse the cut. Every viewer counts the `chat:new` frames it gets with a prefix test on the frame,
without copying or decoding it. Only *tracked* viewers (the `--sample` share, and viewers that will reconnect)
decode frames: they measure delivery latency from the sender's timestamp in the text, keep the `seq` of every
chat message (duplicates, gaps) and the highest `seq` seen (for recovery). Viewers that watch stock decode
`stock:update` frames only.

A viewer that opted into batched room events (`batch: 1` in its CONNECT auth, docs/protocol.md) gets
`42["batch",[[name,data],...]]` frames: counted by the occurrences of `["chat:new"` in the frame (a quote inside
a JSON string is escaped, so that text only starts an element), decoded element by element by tracked viewers.

With `--deflate` viewers offer permessage-deflate as browsers do. The server compresses each message on its own,
so every viewer of a slice still gets the same bytes: a chunk's compressed frames are inflated once, in `Frames`,
and the viewers that get the same chunk reuse the result.
"""
from __future__ import annotations

import asyncio
import base64
import os
import time

import orjson

from live.rooms import packets
from live.rooms.wsframes import PONG, TEXT, inflate, masked_frame, text_frame

CHAT = packets.event_prefix("chat:new")
STOCK = packets.event_prefix("stock:update")
BATCH = packets.event_prefix("batch")
CHAT_ELEMENT = CHAT[len(packets.EVENT):]  # `["chat:new"`: one element of a batch
STOCK_ELEMENT = STOCK[len(packets.EVENT):]
PLAIN, CHAT_FRAME, BATCH_FRAME = 0, 1, 2  # what a text frame holds (Frames.frames' last field)
MAX_INFLATED = 64 * 1024 * 1024  # a server message inflated past this is read as empty (a corrupt frame)
DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"  # a browser's offer


def _spans(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """(frame start, payload start, payload end) of each complete frame at the start of `data`, and the bytes
    they take."""
    spans = []
    n = len(data)
    pos = 0
    while n - pos >= 2:
        ln = data[pos + 1] & 0x7F
        if ln < 126:
            start = pos + 2
        elif ln == 126:
            if n - pos < 4:
                break
            ln = (data[pos + 2] << 8) | data[pos + 3]
            start = pos + 4
        else:
            if n - pos < 10:
                break
            ln = int.from_bytes(data[pos + 2:pos + 10], "big")
            start = pos + 10
        end = start + ln
        if end > n:
            break
        spans.append((pos, start, end))
        pos = end
    return spans, pos


def _inflated(data: bytes, spans: list[tuple[int, int, int]]) -> bytes:
    """The same frames with each compressed one (RSV1, permessage-deflate) replaced by its plain text frame."""
    out = []
    for pos, start, end in spans:
        if data[pos] & 0x40:
            out.append(text_frame(inflate(data[start:end], MAX_INFLATED) or b""))
        else:
            out.append(data[pos:end])
    return b"".join(out)


class Frames:
    """The complete websocket frames at the start of a chunk: `frames` in order as (opcode, start, end, kind)
    spans of the payloads in `data` (kind PLAIN, CHAT_FRAME or BATCH_FRAME), `others` the ones that are neither
    `chat:new` nor a batch, `batches` the batches, `texts` the count of text frames, `chats` of `chat:new`
    events (plain or in a batch), `used` the bytes of the chunk they take (the rest waits for the next chunk),
    `watched` what a stock watcher reads: `others` and the batches holding a stock update, in frame order.
    `data` is the chunk, or, when some frames are compressed (permessage-deflate), the same frames inflated."""

    __slots__ = ("frames", "others", "batches", "watched", "texts", "chats", "used", "data")

    def __init__(self, data: bytes) -> None:
        spans, self.used = _spans(data)
        if any(data[pos] & 0x40 for pos, _, _ in spans):
            data = _inflated(data, spans)
            spans, _ = _spans(data)
        self.data = data
        frames: list[tuple[int, int, int, int]] = []
        texts = chats = 0
        batches: list[tuple[int, int, int, int]] = []
        for pos, start, end in spans:
            opcode = data[pos] & 0x0F
            kind = PLAIN
            if opcode == 1:
                texts += 1
                if data.startswith(CHAT, start):
                    kind = CHAT_FRAME
                    chats += 1
                elif data.startswith(BATCH, start):
                    kind = BATCH_FRAME
                    chats += data.count(CHAT_ELEMENT, start + len(BATCH), end)
                    batches.append((opcode, start, end, kind))
            frames.append((opcode, start, end, kind))
        self.frames, self.texts, self.chats, self.batches = frames, texts, chats, batches
        self.others = [f for f in frames if f[3] == PLAIN] if chats or batches else frames
        self.watched = [f for f in frames if f[3] == PLAIN or f[3] == BATCH_FRAME
                        and data.find(STOCK_ELEMENT, f[1], f[2]) >= 0] if batches else self.others


_last: tuple[bytes, Frames] = (b"", Frames(b""))


def split_frames(data: bytes) -> Frames:
    """`Frames(data)`, computed once for a run of equal chunks (every viewer of a room gets the same bytes)."""
    global _last
    if data != _last[0]:
        _last = (data, Frames(data))
    return _last[1]


class Viewer(asyncio.Protocol):
    """One websocket. `ctx` is the generator process (stats, stream, address). A tracked viewer (`track`) keeps
    the seq of every chat message in `seqs` (None when untracked); a reconnecting viewer is a new Viewer built
    with `prev=` the old one, so counts and seen seqs (and so being tracked) carry over."""

    __slots__ = ("ctx", "stats", "token", "watch", "transport", "buf", "upgraded", "state", "t0",
                 "done", "acks", "next_ack", "join_seq", "epoch", "last_seq", "received", "seqs", "dups",
                 "stock", "rejoin", "recovered", "rejoin_ms", "index", "stream", "batch", "timed",
                 "chat_mark", "deflate")

    def __init__(self, ctx, index: int, token: str | None, *, track: bool = False, watch: bool = False,
                 prev: "Viewer | None" = None, stream: str | None = None, stats=None, batch: bool = False):
        """`stream` (default ctx.stream) is the room it joins and `stats` (default ctx.stats) where it counts (a
        small room of --rooms has its own); `batch` opts into batched room events."""
        self.ctx, self.index, self.token = ctx, index, token
        if prev is not None:  # a reconnection keeps its room, counters and opt-in
            stream, stats, batch = prev.stream, prev.stats, prev.batch
        self.stats = ctx.stats if stats is None else stats
        self.stream = ctx.stream if stream is None else stream
        self.batch = batch
        self.timed = getattr(ctx, "timed", True)  # False in a bulk process: tracked (reconnect) but never timing
        plan = getattr(ctx, "plan", None)
        self.deflate = bool(getattr(plan, "deflate", False))  # offer permessage-deflate (--deflate)
        self.watch = watch
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        self.state = "connecting"
        self.t0 = time.monotonic()
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.acks: dict[int, tuple[float, str, object]] = {}
        self.next_ack = 1
        self.recovered: bool | None = None
        self.rejoin_ms: float | None = None
        self.chat_mark = 0  # the highest live chat seq this connection got: a lower new one is out of order
        if prev is None:
            self.join_seq: int | None = None
            self.epoch: str | None = None
            self.last_seq = 0
            self.received = 0
            self.seqs: set[int] | None = set() if track else None
            self.dups = 0
            self.stock: dict[str, int] = {}
            self.rejoin = False
        else:  # a reconnection: same logical viewer
            self.join_seq, self.epoch, self.last_seq = prev.join_seq, prev.epoch, prev.last_seq
            self.received, self.seqs, self.dups, self.stock = prev.received, prev.seqs, prev.dups, prev.stock
            self.rejoin = True

    # ---- connection ----

    def connection_made(self, transport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET {self.ctx.path}?EIO=4&transport=websocket HTTP/1.1\r\nHost: {self.ctx.host_header}"
                         f"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n{DEFLATE_OFFER if self.deflate else ''}\r\n").encode())

    def connection_lost(self, exc) -> None:
        if self.state not in ("closed", "dropped"):
            self.stats.error("disconnected" if self.state == "open" else "closed_before_join")
            self._leave("closed")
        self._finish(False)
        for _, event, cb in self.acks.values():
            if cb is not None:
                cb(None)
        self.acks.clear()

    def _finish(self, ok: bool) -> None:
        if not self.done.done():
            self.done.set_result(ok)

    def _leave(self, state: str) -> None:
        if self.state == "open":
            self.stats.open -= 1
        self.state = state

    def close(self) -> None:
        """Leave on purpose (end of the run)."""
        self._leave("closed")
        if self.transport is not None:
            self.transport.close()

    def drop(self) -> None:
        """Lose the connection abruptly (reconnect scenario): no close frame, the socket is reset."""
        self._leave("dropped")
        if self.transport is not None:
            self.transport.abort()

    def _refused(self, error: str) -> None:
        """The server turned the connection down before it was open."""
        self.stats.error(error)
        self.close()
        self._finish(False)

    @property
    def alive(self) -> bool:
        return self.state == "open"

    def send(self, text: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked_frame(TEXT, text))

    def emit(self, event: str, data: dict, cb=None) -> None:
        """Send an event with an ack id; `cb(ack)` gets the ack payload (None if the socket closed)."""
        ack_id = self.next_ack
        self.next_ack += 1
        self.acks[ack_id] = (time.monotonic(), event, cb)
        self.stats.sent += 1
        self.send(packets.encode_emit(ack_id, event, data))

    def expire_acks(self, now: float, timeout: float) -> None:
        for ack_id, (t, event, cb) in list(self.acks.items()):
            if now - t > timeout:
                del self.acks[ack_id]
                self.stats.error(f"ack_timeout:{event}")
                if cb is not None:
                    cb(None)

    # ---- parsing ----

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                self._refused("handshake_refused")
                return
            data = data[end + 4:]
            self.upgraded = True
        chunk = split_frames(data)
        if chunk.used < len(data):
            self.buf = data[chunk.used:]  # a frame not complete yet
        data = chunk.data  # the frames' spans are in chunk.data (inflated if need be)
        stats = self.stats
        stats.frames += chunk.texts
        stats.batches += len(chunk.batches)
        stats.received += chunk.chats
        if self.seqs is None:  # chat frames are only counted
            self.received += chunk.chats
            frames = chunk.watched if self.watch else chunk.others
        else:
            frames = chunk.frames
        for opcode, start, end, kind in frames:
            if kind == CHAT_FRAME:
                self.on_chat(orjson.loads(data[start + 2:end])[1])
            elif kind == BATCH_FRAME:
                for name, payload in orjson.loads(data[start + 2:end])[1]:
                    if name == "chat:new":
                        if self.seqs is not None:
                            self.on_chat(payload)
                    else:
                        self.on_event(name, payload)
            elif opcode == 1:
                self.on_packet(data[start:end])
            elif opcode == 8:
                self.transport.close()
            elif opcode == 9:
                self.transport.write(masked_frame(PONG, data[start:end]))

    def on_chat(self, msg: dict, live: bool = True) -> None:
        """A tracked viewer's chat message, live or from a recovery ack's events (those are counted but not
        timed: their delay is the reconnection's, reported apart). A live message not seen before and older than
        the newest live one is counted (received) and reported as `chat_out_of_order`."""
        seq = msg["seq"]
        if seq > self.last_seq:
            self.last_seq = seq
        if seq in self.seqs:
            self.dups += 1
            return
        self.seqs.add(seq)
        if live:
            if seq < self.chat_mark:
                self.stats.error("chat_out_of_order")
            else:
                self.chat_mark = seq
        self.received += 1
        text = msg.get("text", "")
        if live and self.timed and text.startswith("t="):
            try:
                self.stats.latency((time.time() - float(text[2:].split(" ", 1)[0])) * 1000)
            except ValueError:
                pass

    def on_event(self, name: str, data) -> None:
        """A room event other than chat:new: its seq (tracked viewers), the stock it tells (watchers)."""
        seq = data.get("seq") if self.seqs is not None and isinstance(data, dict) else None
        if isinstance(seq, int) and seq > self.last_seq:
            self.last_seq = seq
        if self.watch and name == "stock:update":
            self.stock[data["variant_id"]] = data["available"]

    def on_packet(self, p: bytes) -> None:
        if p == packets.PING:
            self.send(packets.PONG)
        elif p.startswith(packets.EVENT):  # a room event other than chat:new
            if self.seqs is not None or (self.watch and p.startswith(STOCK)):
                self.on_event(*orjson.loads(p[2:]))
        elif p.startswith(packets.ACK):
            ack_id, payload = packets.decode_ack(p)
            entry = self.acks.pop(ack_id, None)
            if entry is not None:
                ack = payload[0] if payload else None
                self.stats.ack(entry[1], (time.monotonic() - entry[0]) * 1000, ack)
                if entry[2] is not None:
                    entry[2](ack)
        elif p.startswith(packets.OPEN):  # Engine.IO open
            auth = {"token": self.token} if self.token else {}
            if self.batch:
                auth["batch"] = 1
            self.send(packets.encode_connect(auth or None))
        elif p.startswith(packets.CONNECT):  # Socket.IO connected
            self.stats.connected += 1
            self.stats.open += 1
            self.state = "open"
            payload = {"stream_id": self.stream}
            if self.rejoin:
                payload.update(last_seq=self.last_seq, epoch=self.epoch)
            self.emit("join", payload, self._joined)
        elif p.startswith(packets.CONNECT_ERROR):
            try:
                code = orjson.loads(p[2:]).get("data", {}).get("code", "refused")
            except (orjson.JSONDecodeError, AttributeError):
                code = "refused"
            self._refused(f"connect_{code}")
        elif p.startswith(packets.DISCONNECT):
            self.stats.error("server_disconnect")

    def _joined(self, ack) -> None:
        if not isinstance(ack, dict) or not ack.get("ok"):
            code = ack.get("error", {}).get("code", "failed") if isinstance(ack, dict) else "no_ack"
            self.stats.error(f"join_{code}")
            self._finish(False)
            return
        ms = (time.monotonic() - self.t0) * 1000
        seq = ack.get("seq", 0)
        if self.rejoin:
            self.rejoin_ms = ms
            self.recovered = bool(ack.get("recovered"))
            if self.recovered and self.seqs is not None:
                for event, data in ack.get("events", ()):
                    if event == "chat:new":
                        self.on_chat(data, live=False)
                    elif isinstance(data, dict) and data.get("seq", 0) > self.last_seq:
                        self.last_seq = data["seq"]
            self.epoch = ack.get("epoch", self.epoch)
        else:
            self.join_seq = seq
            self.epoch = ack.get("epoch")
            self.stats.join.add(ms)
            if self.ctx.first_ack is None and self.stream == self.ctx.stream:  # the room's snapshot
                self.ctx.first_ack = ack
        if seq > self.last_seq:
            self.last_seq = seq
        self._finish(True)
