"""Connections that never finish opening are closed (issue 11 item 6): the front door's head timeout, the
websocket's Socket.IO CONNECT timeout, the cap on pending connections per IP, and aiohttp's keep-alive timeout
as `live serve` sets it. Real sockets against a real server with short settings."""
from __future__ import annotations

import asyncio
import contextlib
import socket

import orjson
import pytest

from live import runner
from live.rooms import frontdoor
from tests.frontdoor.wire import closed_with, hostport
from tests.helpers import until
from tests.rooms.harness import RawWs, start_live


@pytest.fixture
async def quick(tmp_path, dsn, aiohttp_client):
    lv = await start_live(tmp_path, dsn, aiohttp_client, http_head_timeout_seconds="0.5",
                          ws_connect_timeout_seconds="0.5", max_pending_connections_per_ip="3")
    # refusals of earlier tests in this process linger up to 2 s; this address starts with all its slots
    await until(lambda: not frontdoor._Lingering.per_ip, 5)
    yield lv
    await lv.close_viewers()


async def _refused_with(reader) -> tuple[int, dict]:
    """Status and JSON body of the HTTP answer the server sends before hanging up."""
    answer = await asyncio.wait_for(reader.read(), 5)  # read() returns at EOF: the server hung up
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    return int(head.split(b" ")[1]), orjson.loads(body)


def _front(live):
    return live.client.server.runner.front


async def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(quick):
    reader, _writer = await asyncio.open_connection(*hostport(quick))
    status, body = await _refused_with(reader)
    assert status == 408 and body["error"]["code"] == "request_timeout"


async def _trickled(live, gap: float) -> tuple[int, dict]:
    """The answer to a request head sent a byte every `gap` seconds, on and on (through the head timeout)."""
    reader, writer = await asyncio.open_connection(*hostport(live))
    writer.write(b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")

    async def trickle() -> None:
        while not writer.is_closing():
            writer.write(b"a")
            await asyncio.sleep(gap)
    task = asyncio.create_task(trickle())
    try:
        return await _refused_with(reader)
    finally:
        task.cancel()
        writer.transport.abort()


async def test_a_trickled_request_head_is_closed_after_the_head_timeout(quick):
    status, body = await _trickled(quick, 0.02)
    assert status == 408 and body["error"]["code"] == "request_timeout"
    await until(lambda: _front(quick).pending == {}, 5)


async def test_a_websocket_that_never_connects_a_namespace_is_closed(quick):
    ws = await RawWs.connect(*hostport(quick))
    assert await closed_with(ws.reader) == 1008
    # one that sends its CONNECT in time stays, past the timeout
    ws = await RawWs.connect(*hostport(quick))
    await ws.open_namespace()
    await asyncio.sleep(1.0)
    assert (await ws.call(1, "join", {"stream_id": "demo"}))["ok"] is True
    ws.close()


async def test_pending_connections_per_ip_are_capped(quick):
    host, port = hostport(quick)
    idle = [await asyncio.open_connection(host, port) for _ in range(3)]
    await until(lambda: _front(quick).pending.get("127.0.0.1") == 3, 5)
    reader, _writer = await asyncio.open_connection(host, port)
    status, body = await _refused_with(reader)
    assert status == 429 and body["error"]["code"] == "too_many_connections"
    # a slot comes back when a pending connection goes, and connections past their handshake do not count
    idle.pop()[1].transport.abort()
    await until(lambda: _front(quick).pending.get("127.0.0.1") == 2, 5)
    ws = await RawWs.connect(host, port)
    await ws.open_namespace()
    await until(lambda: _front(quick).pending.get("127.0.0.1") == 2, 5)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200")
    writer.close()
    ws.close()
    for _r, w in idle:
        w.transport.abort()
    await until(lambda: _front(quick).pending == {}, 5)


async def test_a_refused_client_that_keeps_sending_reads_the_answer_not_a_reset(quick):
    """The refusal goes out with a FIN and the server reads and drops what still comes: closing with unread
    input would reset the connection, and the reset discards the answer on the client's side."""
    for _ in range(3):  # a byte every millisecond: the client is sending when the 408 goes out
        status, body = await _trickled(quick, 0.001)
        assert status == 408 and body["error"]["code"] == "request_timeout"
    await until(lambda: frontdoor._Lingering.count == 0, 5)


async def test_one_address_lingers_on_at_most_its_share_of_refused_connections(quick):
    """A refused connection lingers 2 s; one address refused over and over holds at most 16 of the 1,024 slots
    (the rest are closed at once), so it cannot take the lingering close away from everyone else."""
    host, port = hostport(quick)
    idle = [await asyncio.open_connection(host, port) for _ in range(3)]  # the pending cap: 3
    await until(lambda: _front(quick).pending.get("127.0.0.1") == 3, 5)
    refused = []
    for _ in range(frontdoor.MAX_LINGERING_PER_IP + 8):
        reader, writer = await asyncio.open_connection(host, port)
        refused.append(writer)
        assert (await _refused_with(reader))[0] == 429  # each one still gets its answer
    assert frontdoor._Lingering.per_ip["127.0.0.1"] == frontdoor.MAX_LINGERING_PER_IP
    for w in refused + [w for _r, w in idle]:
        w.transport.abort()
    await until(lambda: frontdoor._Lingering.count == 0 and not frontdoor._Lingering.per_ip, 5)


async def test_an_idle_keep_alive_connection_is_closed(tmp_path, dsn):
    """`runner.serve` (what `live serve` runs, with HTTP_KEEPALIVE_SECONDS) closes an idle connection."""
    from live.app import create_app
    from tests.helpers import make_settings

    app = create_app(make_settings(tmp_path, seed_demo="true"), dsn, run_migrations=False)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    up = asyncio.Event()
    server = asyncio.create_task(runner.serve(app, host="127.0.0.1", port=0, sock=listener, keepalive_timeout=0.5,
                                                 handle_signals=False, serving=up.set))
    try:
        await asyncio.wait_for(up.wait(), 30)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        await reader.readexactly(length)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server once idle
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


def _refusals(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("live_door_refusals_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('reason="')[1].split('"')[0]] = float(value)
    return out


async def test_refused_and_closed_connections_are_counted_in_metrics(quick):
    """An operator sees the front door turning connections away: by reason, in /metrics."""
    before = _refusals(await (await quick.client.get("/metrics")).text())
    reader, _writer = await asyncio.open_connection(*hostport(quick))
    assert (await _refused_with(reader))[0] == 408
    ws = await RawWs.connect(*hostport(quick))
    assert await closed_with(ws.reader) == 1008
    after = _refusals(await (await quick.client.get("/metrics")).text())
    assert after.get("request_timeout", 0) == before.get("request_timeout", 0) + 1
    assert after.get("close_1008", 0) == before.get("close_1008", 0) + 1
