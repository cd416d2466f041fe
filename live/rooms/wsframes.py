"""RFC 6455 frames, sans-IO: the one websocket codec of the server, the load tester and the tests.

Encoders: `text_frame` and `close_frame` (server to client: unmasked, final), `masked_frame` (client to server:
the load tester's viewers and the tests' raw clients).

`FrameReader` reads client frames, bytes in, messages and control events out. It is the front door's websocket
codec with no socket in it (the aiohttp style: codec apart from
glue), so the tests feed it bytes directly and compare it with wsproto. Its costs are bounded per frame: a
frame's header is checked once, when it is complete, and the size and fragment count of a message being
assembled are running totals, so a flood of tiny continuation frames costs O(1) each and is cut at
`max_fragments`. A message over `max_size` is refused as soon as a frame header announces it (before its bytes
are buffered), so the reader never holds more than one frame of at most `max_size` bytes plus its header.

Events are `(kind, value)` tuples, in order:

    (TEXT, str) | (BINARY, bytes)   a whole message (fragments joined, text checked as UTF-8)
    (PING, bytes) | (PONG, bytes)   control frames (interleaved with fragments, as RFC 6455 allows)
    (CLOSE, (code, reason))         the client's close (code 1005 when it sent none); nothing is read after it
    (FAIL, (code, message))         a protocol error: close with `code`; nothing is read after it

permessage-deflate (RFC 7692), when the handshake agreed on it (`deflate_answer`): the server compresses
each message on its own (`server_no_context_takeover`), so one compressed frame serves every viewer that gets
the same bytes, and asks the client to do the same (`client_no_context_takeover`), so a connection keeps no
inflate state between messages. `deflated_frame` is the compressed text frame; a reader made with
`inflate=True` accepts messages whose first frame has RSV1 and inflates them at most to `max_size` (1009
beyond: a small frame cannot expand into a large message).

Close codes: 1002 for a malformed frame (reserved bits or opcodes, unmasked, fragmented or long control frame,
non-minimal length, a continuation with nothing to continue, a new message inside a fragmented one, a bad
close payload), 1007 for text or a close reason that is not UTF-8, 1009 for a message over `max_size`, 1008
for a message in more than `max_fragments` frames.
"""
from __future__ import annotations

import codecs
import os
import zlib
from typing import Any

TEXT, BINARY, CLOSE, PING, PONG, FAIL = 0x1, 0x2, 0x8, 0x9, 0xA, -1
MAX_FRAGMENTS = 64  # frames of one fragmented message; socket.io clients never fragment
NO_STATUS = 1005  # the close code of a close frame without a payload (never sent on the wire)
# close codes a peer may send: RFC 6455 7.4.1 and IANA's 1012/1013 (as wsproto), and 3000-4999
_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013))
_OPCODES = frozenset((0x0, TEXT, BINARY, CLOSE, PING, PONG))
_utf8_decoder = codecs.getincrementaldecoder("utf-8")


def unmask(payload: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final websocket text frame (server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


DEFLATE_MIN = 128  # payloads shorter than this go uncompressed: deflate saves next to nothing on them
DEFLATE_LEVEL = 6
_DEFLATE_TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with: RFC 7692 7.2.1 drops it from the frame


def deflated_frame(payload: bytes) -> bytes:
    """A final text frame with its payload compressed on its own (permessage-deflate, RSV1 set), or a plain
    text frame when the payload is shorter than DEFLATE_MIN or would not get shorter."""
    if len(payload) < DEFLATE_MIN:
        return text_frame(payload)
    deflater = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
    data = deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)
    data = data[:-4]  # a sync flush ends with 00 00 ff ff
    if len(data) >= len(payload):
        return text_frame(payload)
    return b"\xc1" + text_frame(data)[1:]


def inflate(data: bytes, max_size: int) -> bytes | None:
    """A compressed message's payload, or None if it inflates past `max_size` (zlib.error: not deflate data, or
    bytes after a final block)."""
    inflater = zlib.decompressobj(-15)
    out = inflater.decompress(data + _DEFLATE_TAIL, max_size + 1)
    if len(out) > max_size:
        return None
    if inflater.eof and inflater.unused_data != _DEFLATE_TAIL:  # a final block (BFINAL) may end a message
        raise zlib.error("data after the final deflate block")
    return out


def deflate_answer(offer: bytes | None) -> bytes | None:
    """The Sec-WebSocket-Extensions answer to a client's offer (the header's value), or None to go without.
    The first permessage-deflate offer we can honour is taken: one whose parameters are known and that does not
    cap our window below 15 bits (one compressed frame serves every viewer, so it has one window). We always
    compress each message on its own and ask the client to, so the answer names both `no_context_takeover`
    parameters. Any window the client compresses with is one we can inflate."""
    if not offer:
        return None
    for item in offer.split(b","):
        name, *params = [p.strip() for p in item.split(b";")]
        if name.lower() != b"permessage-deflate":
            continue
        ok, window, seen = True, b"", set()
        for param in filter(None, params):
            key, _, value = param.partition(b"=")
            key, value = key.strip().lower(), value.strip().strip(b'"')
            if key in seen:  # RFC 7692 7: an offer repeating a parameter is declined
                ok = False
            elif key == b"server_max_window_bits":
                ok, window = value == b"15", b"; server_max_window_bits=15"
            elif key == b"client_max_window_bits":
                ok = not value or (value.isdigit() and 8 <= int(value) <= 15)
            elif key not in (b"server_no_context_takeover", b"client_no_context_takeover") or value:
                ok = False
            if not ok:
                break
            seen.add(key)
        if ok:
            return b"permessage-deflate; server_no_context_takeover; client_no_context_takeover" + window
    return None


def pong_frame(payload: bytes) -> bytes:
    """A websocket PONG answering a PING with `payload` (a control payload: at most 125 bytes, as the reader
    enforces)."""
    return bytes((0x8A, len(payload))) + payload


def close_frame(code: int) -> bytes:
    """A websocket close frame with a status code (server to client)."""
    return b"\x88\x02" + code.to_bytes(2, "big")


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """A masked websocket frame (client to server), final unless `fin=False`; a random mask unless given."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        header = bytes((first, 0x80 | n))
    elif n < 65536:
        header = bytes((first, 0xFE)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, 0xFF)) + n.to_bytes(8, "big")
    if mask is None:
        mask = os.urandom(4)
    return header + mask + unmask(payload, mask)  # masking and unmasking are the same XOR


def close_event(payload: bytes) -> tuple[int, tuple[int, str]]:
    """The event of a close frame's payload: CLOSE, or FAIL when the payload is malformed."""
    if not payload:
        return CLOSE, (NO_STATUS, "")
    if len(payload) == 1:
        return FAIL, (1002, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code not in _CLOSE_CODES and not 3000 <= code <= 4999:
        return FAIL, (1002, f"invalid close code {code}")
    try:
        return CLOSE, (code, payload[2:].decode())
    except UnicodeDecodeError:
        return FAIL, (1007, "close reason is not UTF-8")


class FrameReader:
    """Reads masked client frames (RFC 6455; permessage-deflate if `inflate`) and assembles messages."""

    __slots__ = ("max_size", "max_fragments", "inflate", "buf", "need", "op", "parts", "size", "count", "decoder",
                 "compressed", "done")

    def __init__(self, max_size: int, max_fragments: int = MAX_FRAGMENTS, inflate: bool = False):
        self.max_size = max_size
        self.max_fragments = max_fragments
        self.inflate = inflate  # permessage-deflate agreed: RSV1 marks a compressed message
        self.compressed = False  # the fragmented message being assembled is compressed
        self.buf: bytes | bytearray = b""  # the start of a frame not yet complete (a bytearray when there is one)
        self.need = 0  # bytes `buf` must hold before parsing is worth trying again
        self.op = 0  # opcode of the fragmented message being assembled (0: none)
        self.parts: list[Any] | None = None  # the fragments so far (str when text: decoded as they come)
        self.size = 0  # payload bytes of that message so far
        self.count = 0  # its frames so far
        self.decoder: codecs.IncrementalDecoder | None = None
        self.done = False  # after CLOSE or FAIL

    def feed(self, data: bytes) -> list[tuple[int, Any]]:
        """The events of the frames that `data` completes."""
        if self.done:
            return []
        buf = self.buf
        buffered = bool(buf)
        if buffered:
            buf += data
            if len(buf) < self.need:
                return []
        else:
            buf = data
        events: list[tuple[int, Any]] = []
        pos, n = 0, len(buf)
        while True:
            if n - pos < 2:
                self.need = 2
                break
            b0, b1 = buf[pos], buf[pos + 1]
            op, length = b0 & 0x0F, b1 & 0x7F
            if op not in _OPCODES:
                return self._fail(events, 1002, f"reserved opcode {op:#x}")
            if op >= 0x8 and (not b0 & 0x80 or length > 125):
                return self._fail(events, 1002, "control frames must be final and at most 125 bytes")
            head = pos + 2
            if length == 126:
                if n - pos < 4:
                    self.need = 4
                    break
                length, head = int.from_bytes(buf[head:head + 2], "big"), head + 2
                if length < 126:
                    return self._fail(events, 1002, "non-minimal payload length")
            elif length == 127:
                if n - pos < 10:
                    self.need = 10
                    break
                length, head = int.from_bytes(buf[head:head + 8], "big"), head + 8
                if length < 65536 or length >> 63:
                    return self._fail(events, 1002, "invalid 64-bit payload length")
            if b0 & 0x70 and (b0 & 0x70 != 0x40 or not self.inflate or not 0 < op < 0x8):
                return self._fail(events, 1002, "reserved bits set without an extension" if not self.inflate
                                  else "RSV1 only on the first frame of a message, RSV2/3 never")
            if not b1 & 0x80:
                return self._fail(events, 1002, "client frames must be masked")
            if op < 0x8:
                if op == 0:
                    if not self.op:
                        return self._fail(events, 1002, "continuation frame with nothing to continue")
                elif self.op:
                    return self._fail(events, 1002, "new message before the fragmented one ended")
                if (self.size if op == 0 else 0) + length > self.max_size:
                    return self._fail(events, 1009, f"message over {self.max_size} bytes")
                if op == 0 and self.count >= self.max_fragments:
                    return self._fail(events, 1008, f"message in more than {self.max_fragments} frames")
            end = head + 4 + length
            if end > n:
                self.need = end - pos
                break
            payload = unmask(buf[head + 4:end], buf[head:head + 4])
            pos = end
            if op >= 0x8:
                if op == CLOSE:
                    events.append(close_event(payload))
                    self.done = True
                    break
                events.append((op, payload))
            elif b0 & 0x80 and op:  # a whole message in one frame: the common case
                if not self._message(events, op, payload, b0 & 0x40):
                    return events
            elif not self._fragment(events, op, b0 & 0x80, payload, b0 & 0x40):
                return events
        if self.done:
            self.buf = b""
        elif buffered:
            del buf[:pos]
        else:
            self.buf = bytearray(buf[pos:]) if pos < n else b""
        return events

    def _message(self, events: list, op: int, payload: bytes, compressed: int) -> bool:
        """A whole message's event: inflated if `compressed`, text decoded; False after a FAIL event."""
        if compressed:
            try:
                payload = inflate(payload, self.max_size)
            except zlib.error:
                self._fail(events, 1007, "compressed message is not deflate data")
                return False
            if payload is None:
                self._fail(events, 1009, f"message over {self.max_size} bytes once inflated")
                return False
        if op == BINARY:
            events.append((BINARY, payload))
            return True
        try:
            events.append((TEXT, payload.decode()))
        except UnicodeDecodeError:
            self._fail(events, 1007, "text message is not UTF-8")
            return False
        return True

    def _fragment(self, events: list, op: int, fin: int, payload: bytes, compressed: int = 0) -> bool:
        """One frame of a fragmented message (its first if `op`); False after a FAIL event."""
        if op:
            self.op, self.parts, self.size, self.count = op, [], 0, 0
            self.compressed = bool(compressed)  # its bytes are kept as they come and inflated at the end
            self.decoder = _utf8_decoder() if op == TEXT and not compressed else None
        self.size += len(payload)
        self.count += 1
        if self.decoder is not None:  # checked as it arrives: invalid UTF-8 fails on its frame
            try:
                self.parts.append(self.decoder.decode(payload, bool(fin)))
            except UnicodeDecodeError:
                self._fail(events, 1007, "text message is not UTF-8")
                return False
        else:
            self.parts.append(payload)
        if fin:
            op, parts = self.op, self.parts
            self.op, self.parts, self.decoder = 0, None, None
            if self.compressed:  # kept as bytes: inflated and decoded as a whole message
                return self._message(events, op, b"".join(parts), True)
            events.append((op, ("" if op == TEXT else b"").join(parts)))
        return True

    def _fail(self, events: list, code: int, message: str) -> list:
        events.append((FAIL, (code, message)))
        self.done = True
        self.buf, self.parts, self.decoder = b"", None, None
        return events
