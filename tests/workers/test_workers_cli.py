"""`live serve --workers 2` as a real command: the parent seeds the database once and starts an embedded Redis,
the workers share rooms through it, a worker killed with SIGKILL is restarted, and SIGTERM stops everything,
Redis included."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess

import psutil

from tests.helpers import until
from tests.rooms.harness import SELLER
from tests.workers.cluster import Node, Viewers, free_ports, start_node


def _listener(parent: psutil.Process, port: int) -> psutil.Process | None:
    """The child process listening on a port."""
    for child in parent.children(recursive=True):
        try:
            if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in child.net_connections("tcp")):
                return child
        except psutil.Error:
            continue
    return None


async def test_serve_workers_share_rooms_through_an_embedded_redis(dsn, tmp_path):
    base = free_ports(2)
    node = start_node(tmp_path, dsn, None, "parent", "--workers", "2", "--worker-ports", str(base),
                      env={"SEED_DEMO": "true"})
    parent = psutil.Process(node.proc.pid)
    w0, w1 = (Node(node.proc, port, node.log) for port in (base, base + 1))  # each worker alone on its port
    viewers = Viewers(dsn)
    try:
        for w in (w0, w1):
            await until(lambda w=w: w.ready() or node.proc.poll() is not None, 60, step=0.1, in_thread=True,
                        what=f"worker on {w.port}")
            assert node.proc.poll() is None, node.log.read_text()[-3000:]
        # redis-server rewrites its command line ("redis-server 127.0.0.1:<port>") once it runs: its directory is
        # its working directory (--dir)
        redis = [c for c in parent.children() if c.name() == "redis-server"]
        assert len(redis) == 1 and redis[0].cwd() == str((tmp_path / "data-parent" / "redis").resolve())
        first = _listener(parent, w0.port)
        assert first is not None and first.pid != _listener(parent, w1.port).pid

        seller = await viewers.on(w0, SELLER, "seller")  # the demo stream exists: the parent seeded it
        other = await viewers.on(w1)
        assert (await seller.say("across workers"))["ok"]
        await other.wait_for("chat:new", lambda d: d["text"] == "across workers")

        first.kill()  # SIGKILL: the parent starts a new worker 0
        await until(lambda: (p := _listener(parent, w0.port)) is not None and p.pid != first.pid, 30, step=0.1,
                    in_thread=True, what="worker 0 restarted")
        await until(w0.ready, 30, step=0.1, in_thread=True, what="restarted worker ready")
        seller = await viewers.on(w1, SELLER, "seller")
        again = await viewers.on(w0)
        assert (await seller.say("after the restart"))["ok"]
        await again.wait_for("chat:new", lambda d: d["text"] == "after the restart")
    finally:
        await viewers.close_viewers()
        children = parent.children(recursive=True)
        node.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(node.proc.wait, 30)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            raise
    assert code == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, alive  # the workers and the embedded Redis are gone with the parent


async def test_a_serving_worker_freezes_start_up_objects_and_sets_gc_thresholds(dsn, tmp_path):
    node = start_node(tmp_path, dsn, None, "gc", env={"GC_THRESHOLDS": "1234,56,78", "LOG_LEVEL": "info"})
    try:
        await until(lambda: node.ready(redis="") or node.proc.poll() is not None, 60, step=0.1, in_thread=True,
                    what="node ready")  # no Redis
        assert node.proc.poll() is None, node.log.read_text()[-3000:]
        settled = [json.loads(line) for line in node.log.read_text().splitlines() if '"gc_settled"' in line]
        assert len(settled) == 1 and settled[0]["thresholds"] == [1234, 56, 78]
        assert settled[0]["frozen"] > 10_000  # modules, the app, the pools
    finally:
        node.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(node.proc.wait, 30)
