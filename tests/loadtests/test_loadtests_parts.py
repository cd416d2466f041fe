"""Parts of the load-test tool checked alone: histogram percentiles against exact ones, the delivery
accounting, the pipe between generator processes with messages bigger than a pipe's buffer, the raw viewer
against a websocket server that cuts its frames into tiny pieces, and viewers sharing the cut of a chunk."""
from __future__ import annotations

import asyncio
import math
import multiprocessing
import random

import orjson
import pytest

from live.rooms.packets import encode_event
from live.rooms.wsframes import deflated_frame, text_frame, unmask
from loadtests.scenarios import delivery_summary
from loadtests.stats import Hist
from loadtests.viewer import Viewer, split_frames
from loadtests.worker import attach_pipe
from tests.helpers import until


def exact(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def test_histogram_percentiles_within_one_percent_and_merge():
    rng = random.Random(7)
    a = [rng.lognormvariate(3, 1) for _ in range(20000)]
    b = [rng.uniform(0.05, 3000) for _ in range(5000)]
    ha, hb = Hist(), Hist()
    for v in a:
        ha.add(v)
    for v in b:
        hb.add(v)
    merged = Hist.load(ha.dump()).merge(hb)
    for values, h in ((a, ha), (b, hb), (a + b, merged)):
        for q in (0.5, 0.95, 0.99, 0.999):
            assert h.percentile(q) == pytest.approx(exact(values, q), rel=0.011)
        assert h.hi == max(values) and h.n == len(values)
        assert h.summary()["max"] == round(max(values), 1)
    assert Hist().summary() == {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}


def test_delivery_accounting_counts_from_each_viewers_join():
    # chat seqs 5, 6, 7, 9 were acked; viewers joined at seq 4 (expects 4), 6 (expects 2: 7 and 9), 8 (expects 1)
    results = [
        {"ran": {"chat_seqs": [5, 6]}, "accounting": [
            (4, 4, True, None, 0, False),  # counted all 4
            (6, 1, False, None, 0, False),  # lost its socket: 1 of 2
        ]},
        {"ran": {"chat_seqs": [9, 7]}, "accounting": [
            (8, 1, True, [9], 1, False),  # tracked: got 9, and one duplicate
            (4, 3, True, [5, 6, 9], 0, True),  # tracked, reconnected: 7 is missing
            (8, 3, True, None, 0, False),  # 2 more than it should have: someone else chatting
        ]},
    ]
    d = delivery_summary(results)
    assert d["messages_sent"] == 4 and d["deliveries_expected"] == 4 + 2 + 1 + 4 + 1
    assert d["deliveries"] == 4 + 1 + 1 + 3 + 1
    assert d["missing"] == 1 + 1 and d["missing_tracked"] == 1 and d["excess"] == 2
    assert d["duplicates"] == 1 and d["viewers_lost"] == 1 and d["tracked_viewers"] == 2
    assert d["rejoined_missing"] == 1 and d["rejoined_duplicates"] == 0
    assert d["delivered_ratio"] == round(10 / 12, 6)


def _echo_child(conn) -> None:
    import uvloop

    async def main():
        loop = asyncio.get_running_loop()
        got = loop.create_future()
        attach_pipe(loop, conn, lambda: got.set_result(conn.recv()))
        msg = await got
        conn.send(("echo", msg[1][::-1]))

    uvloop.run(main())


async def test_pipe_moves_messages_bigger_than_its_buffer_whole():
    """uvloop's add_reader makes the fd non-blocking; a 3 MB message must still arrive whole, both ways."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_echo_child, args=(child,), daemon=True)
    proc.start()
    child.close()
    loop = asyncio.get_running_loop()
    got = loop.create_future()
    attach_pipe(loop, parent, lambda: got.done() or got.set_result(parent.recv()))
    payload = list(range(400_000))
    parent.send(("big", payload))
    kind, data = await asyncio.wait_for(got, 30)
    loop.remove_reader(parent.fileno())
    proc.join(10)
    assert kind == "echo" and data == payload[::-1] and proc.exitcode == 0


async def _read_client_frame(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(2)
    assert head[1] & 0x80, "client frames are masked"
    n = head[1] & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    mask = await reader.readexactly(4)
    return unmask(await reader.readexactly(n), mask)


class Ctx:
    def __init__(self, port: int):
        from loadtests.stats import Stats

        self.stats = Stats()
        self.path, self.host_header, self.stream, self.first_ack = "/socket.io/", f"127.0.0.1:{port}", "demo", None


async def test_viewer_parses_frames_cut_into_tiny_pieces():
    """A raw server answers the handshake, then writes chat frames of every header size (7, 16 and 64-bit
    lengths), a ping and an unknown event, cut into 1-7 byte writes; the tracked viewer gets each once."""
    rng = random.Random(3)
    texts = ["short", "x" * 300, "y" * 70_000, "t=1.0 z"]
    seen: dict = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        request = await reader.readuntil(b"\r\n\r\n")
        seen["request"] = request
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        writer.write(text_frame(b'0{"sid":"s","pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'))
        seen["connect"] = await _read_client_frame(reader)
        writer.write(text_frame(b'40{"sid":"x"}'))
        seen["join"] = await _read_client_frame(reader)
        stream = text_frame(b'431[{"ok":true,"seq":10,"epoch":"e1"}]')
        for i, text in enumerate(texts):
            msg = {"id": i, "stream_id": "demo", "user": {"id": "u", "name": "n", "role": "customer"}, "text": text,
                   "ts": 1.0, "seq": 11 + i}
            stream += text_frame(encode_event("chat:new", msg))
            if i == 1:
                stream += text_frame(b"2")
                stream += text_frame(b'42["viewer:count",{"stream_id":"demo","count":1,"seq":99}]')
        pos = 0
        while pos < len(stream):
            step = rng.randint(1, 7) if pos < 2000 else rng.randint(500, 5000)
            writer.write(stream[pos:pos + step])
            await writer.drain()
            pos += step
        seen["pong"] = await _read_client_frame(reader)
        await asyncio.sleep(0.2)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ctx = Ctx(port)
    loop = asyncio.get_running_loop()
    viewer = Viewer(ctx, 0, "tok", track=True)
    await loop.create_connection(lambda: viewer, "127.0.0.1", port)
    assert await asyncio.wait_for(viewer.done, 10) is True
    await until(lambda: viewer.received == len(texts), 5, step=0.05)
    server.close()
    assert seen["request"].startswith(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n")
    assert seen["connect"] == b'40{"token":"tok"}'
    assert seen["join"] == b'421["join",{"stream_id":"demo"}]'
    assert viewer.join_seq == 10 and viewer.epoch == "e1"
    assert viewer.received == len(texts) and sorted(viewer.seqs) == [11, 12, 13, 14] and viewer.dups == 0
    assert viewer.last_seq == 99  # the highest seq of any event, for a recovery join
    assert seen["pong"] == b"3"
    assert ctx.stats.received == len(texts) and ctx.stats.delivery.n == 1  # only "t=..." texts are timed
    assert ctx.stats.joined == 1 and not ctx.stats.errors


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


async def test_viewers_given_the_same_chunk_share_its_cut():
    """Two viewers of one process get equal chunks (as the server's room writes make them): the frames are cut
    once, and each viewer still counts, decodes, answers the ping and keeps the unfinished frame's bytes."""
    chats = [text_frame(encode_event("chat:new", {"seq": seq, "text": "hi"})) for seq in (5, 6, 7)]
    tail = text_frame(encode_event("chat:new", {"seq": 8, "text": "later"}))
    chunk = b"".join(chats) + text_frame(b"2") + tail[:9]
    ctx = Ctx(1)
    plain, tracked = Viewer(ctx, 0, None), Viewer(ctx, 1, None, track=True)
    for v in (plain, tracked):
        v.upgraded, v.transport = True, FakeTransport()
    plain.data_received(chunk)
    cut = split_frames(chunk)
    tracked.data_received(bytes(bytearray(chunk)))  # an equal chunk, not the same object
    assert split_frames(chunk) is cut and cut.texts == 4 and cut.chats == 3
    assert plain.received == tracked.received == 3 and sorted(tracked.seqs) == [5, 6, 7] and tracked.last_seq == 7
    assert ctx.stats.received == 6 and ctx.stats.frames == 8
    assert len(plain.transport.written) == len(tracked.transport.written) == 1  # the pong, masked
    assert plain.buf == tracked.buf == tail[:9]
    tracked.data_received(tail[9:])
    assert tracked.received == 4 and tracked.last_seq == 8 and tracked.buf == b""


async def test_compressed_frames_are_inflated_once_per_chunk_and_read_like_plain_ones():
    """--deflate: the server's compressed frames (a batch, a single event) are inflated in the chunk's cut; the
    viewers count and decode them as plain frames, and a compressed frame split across reads waits whole."""
    events = [["chat:new", {"seq": seq, "text": "a message long enough to be compressed " * 2}] for seq in (3, 4)]
    batch = deflated_frame(b'42["batch",' + orjson.dumps(events) + b"]")
    single = deflated_frame(encode_event("chat:new", {"seq": 5, "text": "one more, also compressed " * 5}))
    assert batch[0] == single[0] == 0xC1  # RSV1: compressed
    chunk = batch + text_frame(b"2") + single[:7]
    ctx = Ctx(1)
    tracked = Viewer(ctx, 0, None, track=True)
    tracked.upgraded, tracked.transport = True, FakeTransport()
    tracked.data_received(chunk)
    cut = split_frames(chunk)
    assert cut.chats == 2 and cut.texts == 2 and cut.used == len(batch) + 3
    assert sorted(tracked.seqs) == [3, 4] and len(tracked.transport.written) == 1  # the pong
    assert tracked.buf == single[:7]
    tracked.data_received(single[7:])
    assert sorted(tracked.seqs) == [3, 4, 5] and tracked.buf == b""
