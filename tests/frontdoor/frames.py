"""Helpers of the websocket frame tests (tests/frontdoor/test_ws_*.py): client frames built byte by byte,
hypothesis strategies
of frame sequences, and wsproto as the reference parser."""
from __future__ import annotations

import os

from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from live.rooms.wsframes import BINARY, CLOSE, FAIL, PING, PONG, TEXT, FrameReader


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, masked: bool = True,
          mask: bytes | None = None, wide: int = 0) -> bytes:
    """One client frame. `wide` forces a 2-byte (1) or 8-byte (2) length even where a shorter one fits."""
    n = len(payload)
    head = bytes(((0x80 if fin else 0) | (rsv & 7) << 4 | opcode,))
    bit = 0x80 if masked else 0
    if n < 126 and not wide:
        head += bytes((bit | n,))
    elif n < 65536 and wide != 2:
        head += bytes((bit | 126,)) + n.to_bytes(2, "big")
    else:
        head += bytes((bit | 127,)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    mask = os.urandom(4) if mask is None else mask
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    return b"" if code is None else code.to_bytes(2, "big") + reason


# ---------------------------------------------------------------- hypothesis strategies

_text = st.text(max_size=40).map(lambda s: s.encode())
_bad_utf8 = st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xce", b"\xe2\x82"])
_payloads = st.one_of(_text, _text, _text, _text, st.binary(max_size=300),
                      st.tuples(_text, _bad_utf8, _text).map(b"".join))
_close_codes = st.sampled_from([None, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012, 1013, 1014,
                                1015, 1016, 999, 0, 2999, 3000, 3999, 4000, 4999, 5000, 65535])


@st.composite
def frames(draw) -> bytes:
    """One frame, mostly well-formed, sometimes breaking one rule."""
    kind = draw(st.sampled_from(["data", "data", "data", "cont", "cont", "ping", "pong", "close", "any"]))
    fin = draw(st.booleans()) if kind in ("data", "cont") else draw(st.sampled_from([True] * 9 + [False]))
    if kind == "data":
        opcode = draw(st.sampled_from([TEXT, BINARY]))
        payload = draw(_payloads)
    elif kind == "cont":
        opcode, payload = 0x0, draw(_payloads)
    elif kind == "close":
        opcode = CLOSE
        payload = draw(st.one_of(
            st.builds(close_payload, _close_codes, st.one_of(_text, _bad_utf8)), st.binary(max_size=1)))
    elif kind == "any":
        opcode, payload = draw(st.integers(0, 15)), draw(st.binary(max_size=130))
    else:
        opcode = PING if kind == "ping" else PONG
        payload = draw(st.binary(max_size=draw(st.sampled_from([125, 125, 125, 130]))))
    rsv = draw(st.sampled_from([0] * 20 + [1, 2, 4, 7]))
    masked = draw(st.sampled_from([True] * 20 + [False]))
    wide = draw(st.sampled_from([0] * 20 + [1, 2]))
    return frame(opcode, payload, fin=fin, rsv=rsv, masked=masked, wide=wide)


@st.composite
def messages(draw) -> bytes:
    """A well-formed message in 1-4 frames, pings or pongs sometimes between its fragments."""
    opcode = draw(st.sampled_from([TEXT, BINARY]))
    payload = draw(_payloads)
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
    bounds = [0, *cuts, len(payload)]
    pieces = [payload[a:b] for a, b in zip(bounds, bounds[1:])]
    out = b""
    for i, piece in enumerate(pieces):
        if i and draw(st.integers(0, 4)) == 0:
            out += frame(draw(st.sampled_from([PING, PONG])), draw(st.binary(max_size=20)))
        out += frame(opcode if i == 0 else 0x0, piece, fin=i == len(pieces) - 1, wide=draw(
            st.sampled_from([0] * 10 + [1, 2])) if draw(st.booleans()) else 0)
    return out


def streams(max_units: int = 12):
    """Byte streams of whole frames: mostly well-formed messages and control frames, some frames breaking a
    rule, cut anywhere."""
    closes = st.builds(lambda c, r: frame(CLOSE, close_payload(c, r)), _close_codes, st.one_of(_text, _bad_utf8))
    unit = st.one_of(*[messages()] * 6, frames(), frames(), closes)
    return st.lists(unit, min_size=1, max_size=max_units).map(b"".join).flatmap(chunked)


@st.composite
def chunked(draw, stream: bytes) -> list[bytes]:
    """`stream` cut at random places (as TCP may deliver it)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:])]


# ---------------------------------------------------------------- the two parsers, as event lists


def ours(chunks: list[bytes], max_size: int = 1 << 30, max_fragments: int = 1 << 30) -> list[tuple]:
    """Our reader's events; a FAIL is reduced to its close code."""
    reader, events = FrameReader(max_size, max_fragments), []
    for chunk in chunks:
        for kind, value in reader.feed(chunk):
            events.append((FAIL, value[0]) if kind == FAIL else (kind, value))
    return events


def reference(chunks: list[bytes]) -> list[tuple]:
    """wsproto's view of the same bytes, as our events (fragments joined, stopping at a close or an error)."""
    proto, events = FrameProtocol(client=False, extensions=[]), []
    kinds = {Opcode.TEXT: TEXT, Opcode.BINARY: BINARY, Opcode.PING: PING, Opcode.PONG: PONG}
    parts: list = []
    try:
        for chunk in chunks:
            proto.receive_bytes(chunk)
            for f in proto.received_frames():
                if f.opcode is Opcode.CLOSE:
                    events.append((CLOSE, (int(f.payload[0]), f.payload[1])))
                    return events
                if f.opcode in (Opcode.PING, Opcode.PONG):  # wsproto waits for a whole control frame
                    events.append((kinds[f.opcode], bytes(f.payload)))
                    continue
                parts.append(f.payload)
                if f.message_finished:
                    joined = ("" if f.opcode is Opcode.TEXT else b"").join(
                        p if f.opcode is Opcode.TEXT else bytes(p) for p in parts)
                    events.append((kinds[f.opcode], joined))
                    parts = []
    except ParseFailed as exc:
        events.append((FAIL, int(exc.code)))
    return events
