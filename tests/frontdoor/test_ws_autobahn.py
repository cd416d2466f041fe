"""The Autobahn testsuite's case families (framing, pings/pongs, reserved bits, opcodes, fragmentation, UTF-8,
close handling), written here since `autobahntestsuite` is Python 2. Ids are Autobahn's case numbers where a
case maps; the server under test is an Engine.IO endpoint, not an echo server, so text messages are Engine.IO
NOOP packets ("6" + text) and what is checked is the frame layer's verdict: the messages read
(`FrameReader`, sans-IO), and on a real server the control frames it answers (pongs, the close code).

Deviations from Autobahn, on purpose: messages over 16 KB (the announced maxPayload) are refused with 1009
(1.1.6-1.1.8, 1.2.6-1.2.8); close codes 1012 and 1013 (registered with IANA since) are accepted, as by wsproto.
"""
from __future__ import annotations

import asyncio

import pytest

from live.rooms.wsframes import BINARY, CLOSE, FAIL, PING, PONG, TEXT, FrameReader
from tests.frontdoor.frames import close_payload, frame
from tests.frontdoor.wire import handshake, hostport, next_frame

CONT = 0x0
MAX = 16 * 1024


def t(text: bytes | str) -> bytes:
    """A text payload the Engine.IO layer accepts and ignores (a NOOP packet)."""
    return b"6" + (text.encode() if isinstance(text, str) else text)


def fragments(opcode: int, payload: bytes, sizes: list[int]) -> list[bytes]:
    """`payload` as a fragmented message, pieces of the given sizes (the rest in the last one)."""
    out, pos = [], 0
    for i, n in enumerate(sizes + [len(payload)]):
        piece = payload[pos:pos + n] if i < len(sizes) else payload[pos:]
        pos += len(piece)
        out.append(frame(opcode if i == 0 else CONT, piece, fin=i == len(sizes)))
    return out


def ok_text(text: bytes) -> tuple:
    return TEXT, t(text).decode()


HELLO = "Hello-µ@ßöäüàá-UTF-8!!".encode()
KOSME = "κόσμε".encode()
R125 = bytes(range(125))

# (id, writes (each a bytes written at once, or a list of frames written one by one), expected events,
#  server: also run against the real server)
CASES: list[tuple[str, list, list, bool]] = [
    # 1 framing: text and binary messages of the boundary lengths
    *[(f"1.1.{i}", [frame(TEXT, t(b"*" * (n - 1)) if n else t(b""))], [ok_text(b"*" * (n - 1) if n else b"")], True)
      for i, n in enumerate([0, 125, 126, 127, 128], 1)],
    ("1.1.6", [frame(TEXT, t(b"*" * 65534))], [(FAIL, 1009)], True),
    ("1.1.7", [frame(TEXT, t(b"*" * 65535))], [(FAIL, 1009)], True),
    ("1.1.8", [fragments(TEXT, t(b"*" * 65535), [997] * 65)], [(FAIL, 1009)], True),
    ("1.1.cap", [frame(TEXT, t(b"*" * (MAX - 1)))], [ok_text(b"*" * (MAX - 1))], True),
    ("1.1.cap+1", [frame(TEXT, t(b"*" * MAX))], [(FAIL, 1009)], True),
    *[(f"1.2.{i}", [frame(BINARY, b"\xfe" * n)], [(BINARY, b"\xfe" * n)], False)
      for i, n in enumerate([0, 125, 126, 127, 128], 1)],
    ("1.2.6", [frame(BINARY, b"\xfe" * 65535)], [(FAIL, 1009)], True),
    ("1.2.7", [frame(BINARY, b"\xfe" * 65536)], [(FAIL, 1009)], True),
    # 2 pings and pongs
    ("2.1", [frame(PING)], [(PING, b"")], True),
    ("2.2", [frame(PING, b"Hello, world!")], [(PING, b"Hello, world!")], True),
    ("2.3", [frame(PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")], [(PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")], True),
    ("2.4", [frame(PING, R125)], [(PING, R125)], True),
    ("2.5", [frame(PING, R125 + b"\x00")], [(FAIL, 1002)], True),
    ("2.6", [[bytes((b,)) for b in frame(PING, R125)]], [(PING, R125)], True),
    ("2.7", [frame(PONG)], [(PONG, b"")], True),
    ("2.8", [frame(PONG, b"unsolicited pong payload")], [(PONG, b"unsolicited pong payload")], True),
    ("2.9", [frame(PONG, b"unsolicited pong payload") + frame(PING, b"ping payload")],
     [(PONG, b"unsolicited pong payload"), (PING, b"ping payload")], True),
    ("2.10", [b"".join(frame(PING, b"payload-%d" % i) for i in range(10))],
     [(PING, b"payload-%d" % i) for i in range(10)], True),
    ("2.11", [[frame(PING, b"payload-%d" % i) for i in range(10)]], [(PING, b"payload-%d" % i) for i in range(10)],
     True),
    # 3 reserved bits
    ("3.1", [frame(TEXT, t("Hello, world!"), rsv=1)], [(FAIL, 1002)], True),
    ("3.2", [frame(TEXT, t("small")) + frame(TEXT, t("Hello, world!"), rsv=2) + frame(PING)],
     [ok_text(b"small"), (FAIL, 1002)], True),
    ("3.3", [[frame(TEXT, t("small")), frame(TEXT, t("Hello, world!"), rsv=3), frame(PING)]],
     [ok_text(b"small"), (FAIL, 1002)], True),
    ("3.4", [frame(TEXT, t("small")) + frame(TEXT, t("Hello, world!"), rsv=4) + frame(PING)],
     [ok_text(b"small"), (FAIL, 1002)], True),
    ("3.5", [frame(BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5)], [(FAIL, 1002)], True),
    ("3.6", [frame(PING, b"Hello, world!", rsv=6)], [(FAIL, 1002)], True),
    ("3.7", [frame(CLOSE, close_payload(1000), rsv=7)], [(FAIL, 1002)], True),
    # 4 opcodes: reserved non-control (3-7) and control (0xB-0xF)
    *[(f"4.1.{i}", [frame(TEXT, t("small")) + frame(op, b"reserved" * (i % 2)) + frame(PING)],
       [ok_text(b"small"), (FAIL, 1002)], True) for i, op in enumerate(range(3, 8), 1)],
    *[(f"4.2.{i}", [frame(TEXT, t("small")) + frame(op, b"reserved" * (i % 2)) + frame(PING)],
       [ok_text(b"small"), (FAIL, 1002)], True) for i, op in enumerate(range(0xB, 0x10), 1)],
    # 5 fragmentation
    ("5.1", [frame(PING, b"fragment1", fin=False) + frame(CONT, b"fragment2")], [(FAIL, 1002)], True),
    ("5.2", [frame(PONG, b"fragment1", fin=False) + frame(CONT, b"fragment2")], [(FAIL, 1002)], True),
    ("5.3", [b"".join(fragments(TEXT, t("fragment1fragment2"), [10]))], [ok_text(b"fragment1fragment2")], True),
    ("5.4", [fragments(TEXT, t("fragment1fragment2"), [10])], [ok_text(b"fragment1fragment2")], True),
    ("5.6", [frame(TEXT, t("fragment1"), fin=False) + frame(PING, b"ping payload") + frame(CONT, b"fragment2")],
     [(PING, b"ping payload"), ok_text(b"fragment1fragment2")], True),
    ("5.7", [[frame(TEXT, t("fragment1"), fin=False), frame(PING, b"ping payload"), frame(CONT, b"fragment2")]],
     [(PING, b"ping payload"), ok_text(b"fragment1fragment2")], True),
    ("5.8", [[bytes((b,)) for b in frame(TEXT, t("fragment1"), fin=False) + frame(PING, b"ping payload")
              + frame(CONT, b"fragment2")]], [(PING, b"ping payload"), ok_text(b"fragment1fragment2")], True),
    ("5.9", [frame(CONT, b"non-continuation payload") + frame(TEXT, t("Hello, world!"))], [(FAIL, 1002)], True),
    ("5.10", [[frame(CONT, b"non-continuation payload"), frame(TEXT, t("Hello, world!"))]], [(FAIL, 1002)], True),
    ("5.12", [frame(CONT, b"non-continuation payload", fin=False) + frame(TEXT, t("Hello, world!"))],
     [(FAIL, 1002)], True),
    ("5.15", [frame(TEXT, t("fragment1"), fin=False) + frame(CONT, b"fragment2") + frame(CONT, b"fragment3",
                                                                                       fin=False)],
     [ok_text(b"fragment1fragment2"), (FAIL, 1002)], True),
    ("5.16", [frame(CONT, b"fragment1", fin=False) + frame(TEXT, t("fragment2"), fin=False)
              + frame(CONT, b"fragment3")], [(FAIL, 1002)], True),
    ("5.18", [frame(TEXT, t("fragment1"), fin=False) + frame(TEXT, t("fragment2"))], [(FAIL, 1002)], True),
    ("5.19", [frame(TEXT, t("fragment1"), fin=False) + frame(CONT, b"fragment2", fin=False)
              + frame(PING, b"pongme 1!") + frame(CONT, b"fragment3", fin=False) + frame(PING, b"pongme 2!")
              + frame(CONT, b"fragment4")], [(PING, b"pongme 1!"), (PING, b"pongme 2!"),
                                             ok_text(b"fragment1fragment2fragment3fragment4")], True),
    ("5.cap", [b"".join(fragments(TEXT, t(b"x" * 63), [1] * 63))], [ok_text(b"x" * 63)], True),
    ("5.cap+1", [b"".join(fragments(TEXT, t(b"x" * 64), [1] * 64))], [(FAIL, 1008)], True),
    # 6 UTF-8 handling
    ("6.1.1", [frame(TEXT, t(b""))], [ok_text(b"")], True),
    ("6.2.1", [frame(TEXT, t(HELLO))], [ok_text(HELLO)], True),
    ("6.2.2", [b"".join(fragments(TEXT, t(HELLO), [1 + 7]))], [ok_text(HELLO)], True),
    ("6.2.3", [b"".join(fragments(TEXT, t(HELLO), [1] * len(HELLO)))], [ok_text(HELLO)], True),
    ("6.2.4", [b"".join(fragments(TEXT, t(KOSME), [1] * len(KOSME)))], [ok_text(KOSME)], True),
    ("6.3.1", [frame(TEXT, t(KOSME + b"\xed\xa0\x80edited"))], [(FAIL, 1007)], True),
    ("6.3.2", [b"".join(fragments(TEXT, t(KOSME + b"\xed\xa0\x80edited"), [1] * 18))], [(FAIL, 1007)], True),
    # fail fast: the invalid fragment is refused before the message ends
    ("6.4.1", [frame(TEXT, t(KOSME), fin=False) + frame(CONT, b"\xf4\x90\x80\x80", fin=False)], [(FAIL, 1007)],
     True),
    ("6.4.2", [frame(TEXT, t(KOSME + b"\xf4"), fin=False) + frame(CONT, b"\x90", fin=False)], [(FAIL, 1007)], True),
    ("6.4.3", [frame(TEXT, t(KOSME), fin=False) + frame(CONT, b"\xf4\x90\x80\x80edited", fin=False)],
     [(FAIL, 1007)], True),
    ("6.6.incomplete", [frame(TEXT, t(b"\xce\xba\xe1\xbd"))], [(FAIL, 1007)], True),
    *[(f"6.{n}", [frame(TEXT, t(seq))], [ok_text(seq)], True) for n, seq in [
        ("5.1", KOSME), ("7.1", b"\x00"), ("7.2", b"\xc2\x80"), ("7.3", b"\xe0\xa0\x80"), ("7.4", b"\xf0\x90\x80\x80"),
        ("9.1", b"\x7f"), ("9.2", b"\xdf\xbf"), ("9.3", b"\xef\xbf\xbf"), ("9.4", b"\xf4\x8f\xbf\xbf"),
        ("10.1", b"\xed\x9f\xbf"), ("10.2", b"\xee\x80\x80"), ("10.3", b"\xef\xbf\xbd"),
        ("22.1", b"\xef\xbf\xbe"), ("22.34", b"\xf4\x8f\xbf\xbe"), ("23.1", b"\xef\xbf\xbd")]],
    *[(f"6.{n}", [frame(TEXT, t(seq))], [(FAIL, 1007)], True) for n, seq in [
        ("8.1", b"\xf8\x88\x80\x80\x80"), ("8.2", b"\xfc\x84\x80\x80\x80\x80"), ("11.5", b"\xf4\x90\x80\x80"),
        ("12.1", b"\x80"), ("12.2", b"\xbf"), ("13.1", b"\xc0 \xc1 "), ("14.1", b"\xc0"), ("14.3", b"\xe0\x80"),
        ("15.1", b"\xc0\xe0\x80\xf0\x80\x80"), ("16.1", b"\xfe"), ("16.2", b"\xff"), ("16.3", b"\xfe\xfe\xff\xff"),
        ("17.1", b"\xc0\xaf"), ("17.2", b"\xe0\x80\xaf"), ("18.1", b"\xc1\xbf"), ("19.1", b"\xc0\x80"),
        ("20.1", b"\xed\xa0\x80"), ("20.7", b"\xed\xbf\xbf"), ("21.1", b"\xed\xa0\x80\xed\xb0\x80")]],
    # 7 close handling
    ("7.1.1", [frame(TEXT, t("Hello World!")) + frame(CLOSE, close_payload(1000))],
     [ok_text(b"Hello World!"), (CLOSE, (1000, ""))], True),
    ("7.1.2", [frame(CLOSE, close_payload(1000)) + frame(CLOSE, close_payload(1001))], [(CLOSE, (1000, ""))], True),
    ("7.1.3", [frame(CLOSE, close_payload(1000)) + frame(PING, b"Hello World!")], [(CLOSE, (1000, ""))], True),
    ("7.1.4", [frame(CLOSE, close_payload(1000)) + frame(TEXT, t("Hello World!"))], [(CLOSE, (1000, ""))], True),
    ("7.1.5", [frame(TEXT, t("fragment1"), fin=False) + frame(CLOSE, close_payload(1000)) + frame(CONT, b"fragment2")],
     [(CLOSE, (1000, ""))], True),
    ("7.3.1", [frame(CLOSE)], [(CLOSE, (1005, ""))], True),
    ("7.3.2", [frame(CLOSE, b"\x03")], [(FAIL, 1002)], True),
    ("7.3.3", [frame(CLOSE, close_payload(1000))], [(CLOSE, (1000, ""))], True),
    ("7.3.4", [frame(CLOSE, close_payload(1000, b"Hello World!"))], [(CLOSE, (1000, "Hello World!"))], True),
    ("7.3.5", [frame(CLOSE, close_payload(1000, b"*" * 123))], [(CLOSE, (1000, "*" * 123))], True),
    ("7.3.6", [frame(CLOSE, close_payload(1000, b"*" * 124))], [(FAIL, 1002)], True),
    ("7.5.1", [frame(CLOSE, close_payload(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"))],
     [(FAIL, 1007)], True),
    *[(f"7.7.{i}", [frame(CLOSE, close_payload(code))], [(CLOSE, (code, ""))], True) for i, code in enumerate(
        [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999, 1012, 1013], 1)],
    *[(f"7.9.{i}", [frame(CLOSE, close_payload(code))], [(FAIL, 1002)], True) for i, code in enumerate(
        [0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 1100, 2000, 2999], 1)],
    ("7.13.1", [frame(CLOSE, close_payload(5000))], [(FAIL, 1002)], True),
    ("7.13.2", [frame(CLOSE, close_payload(65535))], [(FAIL, 1002)], True),
    # not Autobahn: masking and length encoding, checked by RFC 6455 5.1 and 5.2
    ("rfc.unmasked", [frame(TEXT, t("x"), masked=False)], [(FAIL, 1002)], True),
    ("rfc.long-length", [frame(TEXT, t("x"), wide=1)], [(FAIL, 1002)], True),
    ("rfc.longest-length", [frame(TEXT, t("x" * 200), wide=2)], [(FAIL, 1002)], True),
]


def _writes(case_writes: list) -> list[bytes]:
    out = []
    for w in case_writes:
        out.extend(w if isinstance(w, list) else [w])
    return out


@pytest.mark.parametrize("writes, expected", [pytest.param(w, e, id=i) for i, w, e, _s in CASES])
def test_case_reader(writes, expected):
    reader, events = FrameReader(MAX), []
    for chunk in _writes(writes):
        for kind, value in reader.feed(chunk):
            events.append((FAIL, value[0]) if kind == FAIL else (kind, value))
    assert events == expected


def _server_replies(expected: list) -> list[tuple[int, bytes | int]]:
    """What the server answers to those events: a pong per ping, then its close frame's code."""
    replies: list[tuple[int, bytes | int]] = []
    for kind, value in expected:
        if kind == PING:
            replies.append((0xA, value))
        elif kind == CLOSE:
            replies.append((0x8, 1000 if value[0] == 1005 else value[0]))
        elif kind == FAIL:
            replies.append((0x8, value))
    return replies


@pytest.mark.parametrize("writes, expected", [pytest.param(w, e, id=i) for i, w, e, s in CASES if s])
async def test_case_server(live, writes, expected):
    host, port = hostport(live)
    reader, writer, _key, _head = await handshake(host, port)
    await next_frame(reader)  # Engine.IO OPEN
    for chunk in _writes(writes):
        writer.write(chunk)
        await writer.drain()
    want = _server_replies(expected)
    closing = bool(want) and want[-1][0] == 0x8
    if not closing:  # a marker ping: every answer to the case came before its pong
        writer.write(frame(PING, b"end of case"))
        want.append((0xA, b"end of case"))
    got: list[tuple[int, bytes | int]] = []
    while len(got) < len(want):
        opcode, payload = await next_frame(reader)
        if opcode == 0x8:
            got.append((0x8, int.from_bytes(payload[:2], "big")))
            break
        if opcode == 0xA:
            got.append((0xA, payload))
    assert got == want
    if closing:
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and hung up
    writer.close()
