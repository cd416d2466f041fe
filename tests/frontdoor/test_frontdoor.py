"""The front door (live/rooms/frontdoor.py): fresh Engine.IO websockets are served by the lean protocol, all
other traffic by aiohttp, on one listening socket. Real sockets, hand-made frames."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os

import orjson
import pytest

from live.rooms.transport import PingWheel
from live.rooms.wsframes import masked_frame
from tests.frontdoor.wire import closed_with, handshake, hostport, next_frame
from tests.helpers import until
from tests.rooms.harness import RawWs

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def test_handshake_and_open_packet(live):
    host, port = hostport(live)
    reader, writer, key, head = await handshake(host, port)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    assert b"Sec-WebSocket-Accept: " + accept in head
    opcode, payload = await next_frame(reader)
    assert opcode == 0x1 and payload.startswith(b"0{")
    opened = orjson.loads(payload[1:])
    assert opened["upgrades"] == [] and opened["pingInterval"] == 25000 and opened["pingTimeout"] == 20000
    assert opened["maxPayload"] == 16 * 1024 and opened["sid"] in live.gateway.sio.eio.sockets
    writer.close()


async def test_fragmented_message_client_ping_and_close(live):
    host, port = hostport(live)
    reader, writer, _key, _head = await handshake(host, port)
    await next_frame(reader)  # OPEN
    # "40" (Socket.IO connect) in two fragments, with a control frame between them, as RFC 6455 allows
    writer.write(masked_frame(0x1, b"4", fin=False) + masked_frame(0x9, b"hello") + masked_frame(0x0, b"0"))
    opcode, payload = await next_frame(reader)
    assert (opcode, payload) == (0xA, b"hello")  # the pong echoes the ping
    opcode, payload = await next_frame(reader)
    assert opcode == 0x1 and payload.startswith(b"40{") and b'"sid"' in payload
    writer.write(masked_frame(0x1, b'421["join",{"stream_id":"demo"}]'))
    while True:
        opcode, payload = await next_frame(reader)
        if payload.startswith(b"431["):
            break
    assert orjson.loads(payload[3:])[0]["ok"] is True
    writer.write(masked_frame(0x8, (1000).to_bytes(2, "big")))
    assert await closed_with(reader) == 1000
    assert await reader.read() == b""  # the server hung up


@pytest.mark.parametrize("frame, code", [
    (bytes((0x81, 0x02)) + b"40", 1002),  # unmasked client frame
    (masked_frame(0x1, b"\xff\xfe"), 1007),  # text that is not UTF-8
    (bytes((0x81, 0xFE)) + (20 * 1024).to_bytes(2, "big") + os.urandom(4), 1009),  # over maxPayload
    (masked_frame(0x0, b"x"), 1002),  # a continuation with nothing to continue
    (masked_frame(0x1 | 0x40, b"40"), 1002),  # RSV1 set without an agreed extension
    (masked_frame(0x1, b"9nonsense"), 1003),  # not an Engine.IO packet
], ids=["unmasked", "not-utf8", "over-max-payload", "stray-continuation", "rsv1", "not-engineio"])  # stable ids:
# the frames hold random masks, and pytest-xdist's workers must collect the same names
async def test_protocol_errors_close_the_connection(live, frame, code):
    host, port = hostport(live)
    reader, writer, _key, _head = await handshake(host, port)
    await next_frame(reader)
    writer.write(frame)
    assert await closed_with(reader) == code
    assert await asyncio.wait_for(reader.read(), 10) == b""
    await until(lambda: not any(sock.transport for sock in live.gateway.sio.eio.sockets.values()))
    assert not any(sock.transport for sock in live.gateway.sio.eio.sockets.values())


async def test_rest_and_polling_share_the_port(live):
    host, port = hostport(live)
    reader, writer = await asyncio.open_connection(host, port)
    # two REST requests on one keep-alive connection, answered by aiohttp
    for _ in range(2):
        writer.write(f"GET /api/v1/healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        assert orjson.loads(await reader.readexactly(length))["status"] == "ok"
    writer.close()
    # a long-polling handshake goes to engineio through aiohttp
    async with live.client.get("/socket.io/", params={"EIO": "4", "transport": "polling"}) as resp:
        assert resp.status == 200 and (await resp.text()).startswith("0{")
    # a websocket upgrade that names an unknown sid is aiohttp's (and engineio refuses it)
    _r, w, _k, head = await handshake(host, port, target="/socket.io/?EIO=4&transport=websocket&sid=nope")
    assert head.startswith(b"HTTP/1.1 400")
    w.close()
    # so is a malformed one (no key): an HTTP error, not a hang
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 4")
    writer.close()


async def test_origin_not_allowed_is_refused(live):
    host, port = hostport(live)
    eio = live.gateway.sio.eio
    saved = eio.cors_allowed_origins
    eio.cors_allowed_origins = ["https://shop.example"]
    try:
        _r, w, _k, head = await handshake(host, port, extra="Origin: https://evil.example\r\n")
        assert head.startswith(b"HTTP/1.1 400")
        w.close()
        reader, w, _k, head = await handshake(host, port, extra="Origin: https://shop.example\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        w.close()
    finally:
        eio.cors_allowed_origins = saved


async def test_a_client_that_stops_answering_pings_is_cut_off(live):
    eio = live.gateway.sio.eio
    eio.ping_wheel.stop()
    eio.ping_interval, eio.ping_timeout = 1, 1
    eio.ping_wheel = PingWheel(1, 1)
    host, port = hostport(live)
    answering = await RawWs.connect(host, port)
    await answering.open_namespace()
    silent = await RawWs.connect(host, port)
    await silent.open_namespace()

    async def keep_answering() -> None:  # recv_until answers every PING while it waits
        with contextlib.suppress(asyncio.TimeoutError):
            await answering.recv_until(lambda t: False, timeout=5)

    answerer = asyncio.create_task(keep_answering())
    assert await silent.recv() == "2"  # a PING, never answered
    assert await silent.drained_to_eof(timeout=10)
    await answerer  # several PING rounds went by
    # the one that answered is still connected and served
    assert (await answering.call(1, "join", {"stream_id": "demo"}))["ok"] is True
    answering.close()


async def test_no_task_or_aiohttp_request_per_websocket(live):
    host, port = hostport(live)
    # the in-process job worker (pgqueuer) starts and ends tasks of its own while it connects: not this test's count
    await live.gateway.services.jobs.stop()
    before = len(asyncio.all_tasks())
    sockets = [await RawWs.connect(host, port) for _ in range(40)]
    for ws in sockets:
        await ws.open_namespace()
    await until(lambda: len(live.gateway.sio.eio.sockets) >= 40)
    assert len(asyncio.all_tasks()) - before < 5  # aiohttp would hold a handler task for each of the 40
    assert len(live.gateway.sio.eio.sockets) >= 40
    manager = live.gateway.sio.manager
    for ws in sockets:
        ws.close()
    await until(lambda: not live.gateway.conns, 5, step=0.05)
    assert live.gateway.conns == {}
    assert manager.rooms.get("/", {}).get(None, {}) == {} and manager._rooms_of == {}
    assert live.gateway.sio.eio.sockets == {}
