"""Hypothesis-generated websocket frame sequences (fragments, masks, lengths, control frames, opcodes, raw
garbage) against the front door of a real server: after each case another client's websocket ping is
answered (and every tenth case a Socket.IO call), and nothing is logged as an error or raised in a task.

Hypothesis runs in a worker thread and hands each case to the event loop that serves the app."""
from __future__ import annotations

import asyncio
import contextlib
import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.frontdoor.frames import chunked, frames, messages
from tests.frontdoor.wire import handshake, hostport, next_frame
from tests.rooms.harness import RawWs

_units = st.one_of(messages(), messages(), frames(), frames(), st.binary(min_size=1, max_size=40))
_cases = st.lists(_units, min_size=1, max_size=10).map(b"".join).flatmap(chunked)


async def _pong(ws: RawWs, payload: bytes) -> bytes:
    ws.send_frame(0x9, payload)
    while True:
        opcode, data = await next_frame(ws.reader)
        if opcode == 0xA:
            return data


async def test_fuzzed_frames_leave_the_server_responsive(live, caplog):
    loop = asyncio.get_running_loop()
    raised: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: raised.append(context))
    host, port = hostport(live)
    watcher = await RawWs.connect(host, port)
    await watcher.open_namespace()
    n = 0

    async def case(chunks: list[bytes]) -> None:
        nonlocal n
        n += 1
        reader, writer, _key, _head = await handshake(host, port)
        await next_frame(reader)  # Engine.IO OPEN
        with contextlib.suppress(ConnectionError):
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
        assert await asyncio.wait_for(_pong(watcher, b"case %d" % n), 5) == b"case %d" % n
        if n % 10 == 0:
            ack = await watcher.call(n, "sync:probe", {})  # an unknown event: answered with an error ack
            assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack
        writer.transport.abort()

    @settings(max_examples=1000, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_cases)
    def run(chunks):
        asyncio.run_coroutine_threadsafe(case(chunks), loop).result(timeout=30)

    with caplog.at_level(logging.ERROR):
        await asyncio.to_thread(run)
        await asyncio.sleep(0.2)  # the last cases' closes and disconnect handlers run
    assert n >= 1000
    assert raised == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert (await watcher.call(n + 1, "join", {"stream_id": "demo"}))["ok"] is True
    watcher.close()
