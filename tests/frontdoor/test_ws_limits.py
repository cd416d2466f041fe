"""The front door's limits on a real server (issue 11 items 1, 2, 21): hand-made frames over real sockets,
a second client checking that the server stays responsive."""
from __future__ import annotations

import asyncio
import contextlib
import socket

import orjson
import pytest

from live.rooms.wsframes import MAX_FRAGMENTS
from tests.frontdoor.frames import frame
from tests.frontdoor.wire import closed_with, handshake, hostport, next_frame
from tests.helpers import until
from tests.rooms.harness import RawWs


async def _opened(live):
    host, port = hostport(live)
    reader, writer, _key, _head = await handshake(host, port)
    await next_frame(reader)  # Engine.IO OPEN
    return reader, writer


async def _still_serving(live) -> None:
    """Another client is answered at once: a websocket ping gets its pong and a join its ack."""
    other = await RawWs.connect(*hostport(live))
    try:
        await other.open_namespace()
        other.send_frame(0x9, b"still there?")
        opcode, payload = await asyncio.wait_for(_next_control(other.reader), 5)
        assert (opcode, payload) == (0xA, b"still there?")
        assert (await other.call(1, "join", {"stream_id": "demo"}))["ok"] is True
    finally:
        other.close()


async def _next_control(reader) -> tuple[int, bytes]:
    while True:
        opcode, payload = await next_frame(reader)
        if opcode >= 0x8:
            return opcode, payload


async def _gone(live) -> None:
    await until(lambda: not any(sock.transport for sock in live.gateway.sio.eio.sockets.values()), 5, step=0.05,
                what="every websocket closed on the server")


# ---------------------------------------------------------------- item 1: fragments


async def test_a_flood_of_empty_continuations_is_cut_after_the_fragment_cap(live):
    reader, writer = await _opened(live)
    # the attack: one fragment opening a message, then 20,000 empty continuations (~117 KB)
    writer.write(frame(0x1, b"4", fin=False) + frame(0x0, b"", fin=False) * 20_000)
    assert await closed_with(reader) == 1008
    await _still_serving(live)
    await _gone(live)


async def test_the_size_cap_counts_fragments_as_they_arrive(live):
    reader, writer = await _opened(live)
    writer.write(frame(0x1, b"4" * 10_000, fin=False))
    # only the header of a second 10 KB fragment: 20 KB in all is over the 16 KB cap, refused before its bytes
    writer.write(frame(0x0, b"x" * 10_000)[:8])
    assert await closed_with(reader) == 1009
    await _gone(live)


async def test_a_message_just_under_the_caps_is_served(live):
    ws = await RawWs.connect(*hostport(live))
    await ws.open_namespace()
    packet = b'421["join",{"stream_id":"demo"}]'
    pieces = [packet[i:i + 1] for i in range(len(packet))]
    assert len(pieces) <= MAX_FRAGMENTS
    ws.writer.write(b"".join(frame(0x1 if i == 0 else 0x0, p, fin=i == len(pieces) - 1)
                             for i, p in enumerate(pieces)))
    text = await ws.recv_until(lambda t: t.startswith("431["))
    assert orjson.loads(text[3:])[0]["ok"] is True
    ws.close()


# ---------------------------------------------------------------- item 21: reserved opcodes


@pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
async def test_reserved_opcodes_close_with_1002(live, opcode):
    reader, writer = await _opened(live)
    writer.write(frame(opcode, b"reserved"))
    assert await closed_with(reader) == 1002
    await _gone(live)


# ---------------------------------------------------------------- item 2: output cap counts pongs


async def test_a_ping_flood_from_a_client_that_never_reads_is_cut(live):
    host, port = hostport(live)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (host, port))
    reader, writer = await asyncio.open_connection(sock=raw)
    writer.write(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    sock = next(iter(live.gateway.sio.eio.sockets.values()))
    pings = frame(0x9, b"p" * 125, mask=b"\0\0\0\0") * 1000  # 1000 pings of 125 bytes, 131 KB
    with contextlib.suppress(ConnectionError):
        for _ in range(400):  # at most 52 MB of pings; the server must cut us long before
            writer.write(pings)
            await asyncio.wait_for(writer.drain(), 10)
            if sock.transport is None:
                break
    assert sock.transport is None and sock.dropped  # cut off for its unsent output (512 KB), not left to grow
    writer.transport.abort()
    await _still_serving(live)
