"""A serving worker raises its file descriptor limit (RLIMIT_NOFILE) from the soft to the hard limit, so it can hold
as many viewers as the system allows (issue 17: 20,000 viewers over `--workers 2`): a real `live serve --workers 2`
started with a low soft limit."""
from __future__ import annotations

import asyncio
import json
import resource
import signal
import subprocess
import sys

import psutil

from tests.helpers import until
from tests.workers.cluster import ROOT, Node, free_ports, node_env

LOW = 512


def _low_soft_limit() -> None:  # in the child before exec: what a shell's `ulimit -Sn 512` does
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW, hard))


async def test_each_worker_raises_its_soft_fd_limit_to_the_hard_one(dsn, tmp_path):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard > LOW, "the test needs a hard limit above 512"
    base = free_ports(2)
    log = tmp_path / "serve.log"
    env = {**node_env(tmp_path, dsn, None, "nofile"), "LOG_LEVEL": "info"}
    proc = subprocess.Popen([sys.executable, "-m", "live", "serve", "--port", str(free_ports(1)), "--workers", "2",
                             "--worker-ports", str(base)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"), preexec_fn=_low_soft_limit)
    try:
        for port in (base, base + 1):
            w = Node(proc, port, log)
            await until(lambda w=w: w.ready() or proc.poll() is not None, 60, step=0.1, in_thread=True,
                        what=f"worker on {port}")
            assert proc.poll() is None, log.read_text()[-3000:]
        parent = psutil.Process(proc.pid)
        assert parent.rlimit(psutil.RLIMIT_NOFILE) == (LOW, hard)  # the supervisor holds few sockets: unchanged
        workers = {c.pid: c for c in parent.children() for conn in c.net_connections("tcp")
                   if conn.status == psutil.CONN_LISTEN and conn.laddr.port in (base, base + 1)}.values()
        assert len(workers) == 2, workers  # the processes listening on the workers' own ports
        expected = hard if hard != resource.RLIM_INFINITY else int(open("/proc/sys/fs/nr_open").read())
        for worker in workers:
            assert worker.rlimit(psutil.RLIMIT_NOFILE) == (expected, hard)
        logged = [json.loads(line) for line in log.read_text().splitlines() if '"nofile_limit"' in line]
        assert len(logged) == 2, log.read_text()[-3000:]
        assert all(e["soft_before"] == LOW and e["soft"] == expected and e["hard"] == hard for e in logged), logged
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
