"""Failures with real worker processes and a real Redis: a worker killed with SIGKILL, Redis restarted under
running workers, and a worker shut down gracefully while its viewers move to another one."""
from __future__ import annotations

import asyncio
import signal

import pytest
import socketio

from tests.helpers import until
from tests.rooms.harness import SELLER
from tests.workers.cluster import Balancer, readyz, redis_and_nodes, texts, user


@pytest.fixture
def two_nodes(dsn, tmp_path):
    with redis_and_nodes(tmp_path, dsn, "ab") as (redis, nodes):
        yield redis, nodes


async def test_viewers_of_a_killed_worker_leave_the_count(two_nodes, viewers):
    _redis, (a, b) = two_nodes
    observer = await viewers.on(b)
    for node in (a, a, a, b):
        await viewers.on(node)
    await observer.wait_for("viewer:count", lambda d: d["count"] == 5, timeout=15)
    a.stop(signal.SIGKILL)  # no goodbye: its presence must expire (PRESENCE_TTL 6 s, reported every second)
    mark = observer.mark("viewer:count")
    await observer.wait_after("viewer:count", mark, lambda d: d["count"] == 2, timeout=10)  # the issue: ≤ 10 s


async def test_redis_restarted_mid_stream(two_nodes, viewers, dsn):
    redis, (a, b) = two_nodes
    seller = await viewers.on(a, SELLER, "seller")
    on_a = await viewers.on(a)
    on_b = await viewers.on(b)
    assert (await seller.say("before"))["ok"]
    await on_b.wait_for("chat:new", lambda d: d["text"] == "before")

    redis.stop()
    for node in (a, b):  # each worker still serves; readiness says degraded (HTTP 200: keep sending traffic)
        await until(lambda n=node: readyz(n.port)[1].get("status") == "degraded", 15, step=0.2, in_thread=True)
        status, body = readyz(node.port)
        assert status == 200 and body["checks"]["database"] == "ok" and body["checks"]["redis"].startswith("error")
    ack = await seller.say("during")  # local chat still works for the viewers of A
    assert ack["ok"], ack
    await on_a.wait_for("chat:new", lambda d: d["text"] == "during")
    late = await viewers.on(a)  # joining still works (a fresh snapshot)
    assert late.joined["recovered"] is False

    redis.start()
    for node in (a, b):
        await until(lambda n=node: readyz(n.port)[1].get("status") == "ok", 20, step=0.2, in_thread=True)
    assert (await seller.say("after"))["ok"]  # cross-worker delivery is back
    for v in (on_a, on_b, late):
        await v.wait_for("chat:new", lambda d: d["text"] == "after")
    for v in (on_a, on_b):  # nobody ever saw the seq go back, nothing twice
        seqs = [seq for seq, _ in texts(v, "")]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    assert [t for _, t in texts(on_a, "")][-3:] == ["before", "during", "after"]
    assert "during" not in [t for _, t in texts(on_b, "")]  # A's outage-time chat stayed on A
    # counts and history are shared again: a viewer moving from A to B recovers
    mover = await viewers.on(b)
    await on_a.wait_for("viewer:count", lambda d: d["count"] == 5, timeout=15)
    assert (await seller.say("once more"))["ok"]
    await mover.wait_for("chat:new", lambda d: d["text"] == "once more")
    last_seq, epoch = mover.events["chat:new"][-1]["seq"], mover.joined["epoch"]
    await mover.close()
    assert (await seller.say("while moving"))["ok"]
    await on_b.wait_for("chat:new", lambda d: d["text"] == "while moving")
    moved = await viewers.on(a, join=None)
    ack = await moved.join(last_seq=last_seq, epoch=epoch)
    assert ack["ok"] and ack["recovered"] is True
    assert [d["text"] for e, d in ack["events"] if e == "chat:new"] == ["while moving"]


async def test_graceful_shutdown_moves_viewers_to_another_worker(two_nodes, viewers, dsn):
    _redis, (a, b) = two_nodes
    balancer = await Balancer([a.port, b.port]).start()  # sends every new connection to A while A accepts
    seller = await viewers.on(b, SELLER, "seller")
    _uid, token = await user(dsn, "mover")
    client = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)
    got: list[tuple[str, dict]] = []
    acks: list[dict] = []
    position = {"seq": None, "epoch": None}

    @client.on("*")
    async def on_any(event, data=None):
        got.append((event, data))
        if isinstance(data, dict) and "seq" in data:
            position["seq"] = max(position["seq"] or 0, data["seq"])

    @client.event
    async def connect():  # what a browser app does on every (re)connection: join again with its position
        payload = {"stream_id": "demo"}
        if position["epoch"] is not None:
            payload.update(last_seq=position["seq"], epoch=position["epoch"])
        ack = await client.call("join", payload, timeout=10)
        acks.append(ack)
        position["epoch"] = ack["epoch"]
        position["seq"] = max(position["seq"] or 0, ack["seq"])
        for event, data in ack.get("events", []):
            got.append((event, data))

    try:
        await client.connect(f"http://127.0.0.1:{balancer.port}", auth={"token": token}, transports=["websocket"])
        await until(lambda: len(acks) == 1, 15, step=0.2, in_thread=True)
        assert acks[0]["ok"] and acks[0]["recovered"] is False
        for i in range(3):
            assert (await seller.say(f"move {i}"))["ok"]
        await until(lambda: sum(1 for e, d in got if e == "chat:new" and d["text"].startswith("move")) == 3,
                    15, step=0.2, in_thread=True)

        stopping = asyncio.create_task(asyncio.to_thread(a.stop, signal.SIGTERM))
        await until(lambda: any(e == "server:reconnect" for e, _ in got), 15, step=0.2, in_thread=True)
        for i in range(3, 6):  # sent while the viewer is between workers
            assert (await seller.say(f"move {i}"))["ok"]
        assert await stopping == 0  # A exited cleanly
        await until(lambda: len(acks) == 2, 20, step=0.2, in_thread=True)
        assert acks[1]["ok"] and acks[1]["recovered"] is True, acks[1]  # landed on B, recovered
        assert (await seller.say("move 6"))["ok"]
        await until(lambda: sum(1 for e, d in got if e == "chat:new" and d["text"] == "move 6") == 1,
                    15, step=0.2, in_thread=True)
        chat = [d["text"] for e, d in got if e == "chat:new" and d["text"].startswith("move")]
        assert chat == [f"move {i}" for i in range(7)]  # every message once, in order
        assert dict(got)["server:reconnect"] == {"reason": "shutdown"}
    finally:
        await client.disconnect()
        await balancer.close()
