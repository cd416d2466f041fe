"""Batched room events (issue 17): a client that opts in at CONNECT (auth `batch: 1` or `true`) gets the events of
one room write as one `42["batch",[[name, data], ...]]` frame; plain Socket.IO clients keep one event per frame.
Raw websocket clients and python-socketio viewers over real sockets, real server, real PostgreSQL."""
from __future__ import annotations

import asyncio
import json

import pytest

from live.rooms import packets
from tests.rooms.harness import RawWs

CHATTERS = 4
SAYS = 5  # each chatter's messages: the chat limit is 5 per 10 s per user and stream
BURST = 40  # test events published in one go besides the chat


def _hostport(live) -> tuple[str, int]:
    url = live.client.make_url("/")
    return url.host, url.port


async def _connect(live, auth) -> tuple[RawWs, str]:
    """A raw client that sent CONNECT with `auth`, and the first packet the server answered (40 or 44)."""
    ws = await RawWs.connect(*_hostport(live))
    ws.send(packets.CONNECT + json.dumps(auth).encode())
    answer = await ws.recv_until(lambda t: t[:2] in ("40", "44"))
    return ws, answer


class Seen:
    """What a raw client read: every room event as (name, data) in arrival order, and for each frame of room
    events ("batch", [names]) or ("plain", [name])."""

    def __init__(self, ws: RawWs):
        self.ws = ws
        self.events: list[tuple[str, dict]] = []
        self.frames: list[tuple[str, list[str]]] = []

    def read(self, text: str) -> None:
        if not text.startswith("42"):
            return
        name, data = json.loads(text[2:])
        if name == "batch":
            assert isinstance(data, list) and len(data) >= 2, text  # one event alone is sent plain
            for element in data:
                assert isinstance(element, list) and len(element) == 2 and isinstance(element[0], str), text
                self.events.append((element[0], element[1]))
            self.frames.append(("batch", [element[0] for element in data]))
        else:
            self.events.append((name, data))
            self.frames.append(("plain", [name]))

    def named(self, *names: str) -> list[dict]:
        return [data for name, data in self.events if name in names]

    def kinds(self) -> set[str]:
        return {kind for kind, _ in self.frames}

    async def until(self, pred, timeout: float = 20) -> None:
        async def loop():
            while not pred():
                self.read(await self.ws.recv_until(lambda t: t.startswith("42"), timeout))
        await asyncio.wait_for(loop(), timeout)


async def _barrier(live, *seen: Seen, n: int) -> None:
    """Publish a marker and read until every client got it: each has then read every room event published before."""
    await live.services.rooms.publish(await live.demo_state(), "test:barrier", {"n": n})
    for s in seen:
        await s.until(lambda s=s: any(d["n"] == n for d in s.named("test:barrier")))


@pytest.mark.parametrize("auth, batched", [
    ({"batch": 1}, True), ({"batch": True}, True),
    ({}, False), ({"batch": 0}, False), ({"batch": False}, False), ({"batch": None}, False),
])
async def test_the_connect_opt_in_sets_the_socket_flag(live, auth, batched):
    ws, answer = await _connect(live, auth)
    try:
        assert answer.startswith("40{"), answer
        sid = json.loads(answer[2:])["sid"]
        assert live.gateway.conns[sid].sock.batched is batched
        ack = await ws.call(1, "join", {"stream_id": "demo"})  # acks stay plain `43<id>[...]`
        assert ack["ok"] is True and ack["stream"]["slug"] == "demo"
    finally:
        ws.close()


@pytest.mark.parametrize("junk", ["yes", "1", 2, -1, 1.0, 0.5, [], {}, [1]])
async def test_a_batch_of_another_type_refuses_the_connection(live, junk):
    ws, answer = await _connect(live, {"batch": junk})
    try:
        assert answer.startswith("44{"), answer
        refusal = json.loads(answer[2:])
        assert refusal["data"]["code"] == "invalid" and "batch" in refusal["data"]["message"], refusal
        assert refusal["message"] == refusal["data"]["message"]
        assert live.gateway.conns == {}  # not connected: no event of it is handled
    finally:
        ws.close()


async def test_batched_and_plain_clients_see_every_event_once_in_order(live):
    batched_ws, answer = await _connect(live, {"batch": 1})
    plain_ws, plain_answer = await _connect(live, {})
    assert answer.startswith("40{") and plain_answer.startswith("40{"), (answer, plain_answer)
    batched, plain = Seen(batched_ws), Seen(plain_ws)
    try:
        for n, ws in enumerate((batched_ws, plain_ws)):
            assert (await ws.call(n + 1, "join", {"stream_id": "demo"}))["ok"]
        chatters = [await live.viewer(f"batch-chatter-{i}") for i in range(CHATTERS)]  # python-socketio: plain
        state = await live.demo_state()

        async def burst() -> None:  # published without waiting between them: they gather into one write
            for i in range(BURST):
                await live.services.rooms.publish(state, "test:burst", {"i": i})

        acks = await asyncio.gather(burst(), *(c.say(f"{i}-{k}") for k in range(SAYS) for i, c in
                                               enumerate(chatters)))
        assert all(a["ok"] for a in acks[1:]), acks
        sent = sorted(a["message"]["seq"] for a in acks[1:])
        await _barrier(live, batched, plain, n=1)
        await live.barrier(*chatters)
        for seen in (batched, plain):
            room_events = seen.named("chat:new", "test:burst")
            seqs = [d["seq"] for d in room_events]
            assert seqs == sorted(set(seqs)), seqs  # each once, in order
            assert [d["seq"] for d in seen.named("chat:new")] == sent
            assert [d["i"] for d in seen.named("test:burst")] == list(range(BURST))
        # the same [name, data] elements, in the same order, whichever way they came
        assert batched.named("chat:new", "test:burst") == plain.named("chat:new", "test:burst")
        assert "batch" in batched.kinds(), batched.frames
        assert plain.kinds() == {"plain"}, plain.frames
        for c in chatters:  # python-socketio viewers are plain clients: they never see a `batch`
            assert "batch" not in c.events
            assert [d["seq"] for d in c.events["chat:new"]] == sent
        # a write of one event goes plain even to a batched socket (an idle room delivers at once): an event
        # published alone, well after the last (a viewer count may share its write: then it is tried again)
        for attempt in range(3):
            await asyncio.sleep(1.2)
            await live.services.rooms.publish(state, "test:single", {"n": attempt})
            await batched.until(lambda a=attempt: any(d["n"] == a for d in batched.named("test:single")))
            kind, names = next(f for f in reversed(batched.frames) if "test:single" in f[1])
            if names != ["test:single"]:
                assert kind == "batch" and len(names) > 1, batched.frames
                continue
            assert kind == "plain", batched.frames
            break
        else:
            raise AssertionError(f"no write of a single event in 3 tries: {batched.frames}")
    finally:
        batched_ws.close()
        plain_ws.close()
