"""Helpers every test package uses: the database helpers (the owner's connection, scratch databases), the
settings of a test app, `until` (wait for a condition instead of sleeping), and `Viewer`, a real python-socketio
client with its received events. Fixtures are in the conftest.py files."""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import uuid
from collections import defaultdict
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import socketio

from live.config import load_settings

# one template per pytest-xdist worker (gw0, gw1...): workers sharing a TEST_DATABASE_URL must not drop each other's
TEMPLATE = "live_template" + ("_" + os.environ["PYTEST_XDIST_WORKER"] if os.environ.get("PYTEST_XDIST_WORKER") else "")
SECRET = "test-secret-" + "x" * 40


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@contextlib.asynccontextmanager
async def owner_connection(dsn: str):
    """A plain asyncpg connection to `dsn` as the database's owner (not the RLS role live_app), closed after."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def admin_sql(dsn: str, *sql: str) -> None:
    async with owner_connection(dsn) as conn:
        for statement in sql:
            await conn.execute(statement)


@contextlib.contextmanager
def scratch_database(admin_dsn: str, prefix: str, template: str | None = TEMPLATE):
    """The URL of a new database (a clone of `template`, or empty), dropped at the end (for sync fixtures)."""
    name = prefix + uuid.uuid4().hex[:12]
    asyncio.run(admin_sql(admin_dsn, f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")))
    try:
        yield with_database(admin_dsn, name)
    finally:
        asyncio.run(admin_sql(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def make_settings(tmp_path, **overrides):
    env = {"LIVE_ENV": "test", "JWT_SECRET": SECRET, "LIVE_DATA_DIR": str(tmp_path / "data"),
           "SEED_DEMO": "false", "LOG_LEVEL": "warning"}
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return load_settings(env)


async def until(condition, timeout: float = 10.0, *, step: float = 0.02, what: str = "condition",
                in_thread: bool = False) -> None:
    """Wait until `condition()` is true, asking every `step` seconds; AssertionError after `timeout` seconds.
    `condition` may return an awaitable (awaited each time); `in_thread=True` calls a blocking one (an HTTP probe
    of another process) in a worker thread."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        if in_thread:
            done = await asyncio.to_thread(condition)
        else:
            done = condition()
            if inspect.isawaitable(done):
                done = await done
        if done:
            return
        if loop.time() > end:
            raise AssertionError(f"{what} not reached in {timeout} s")
        await asyncio.sleep(step)


class Viewer:
    """A python-socketio AsyncClient that records every event it receives."""

    def __init__(self, base_url: str, token: str | None = None, transports=("websocket",)):
        self.url = base_url
        self.token = token
        self.transports = list(transports)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list] = defaultdict(list)
        self.order: list[tuple[str, dict]] = []
        self._waiters: list[tuple[str, object, asyncio.Future]] = []
        self.sio.on("*", self._on_any)

    async def _on_any(self, event, data=None):
        self.events[event].append(data)
        self.order.append((event, data))
        for item in list(self._waiters):
            name, pred, fut = item
            if name == event and not fut.done() and pred(data):
                fut.set_result(data)
                self._waiters.remove(item)

    async def connect(self):
        await self.sio.connect(self.url, auth={"token": self.token} if self.token else None,
                               transports=self.transports, wait_timeout=10)
        return self

    async def call(self, event: str, data: dict | None = None, timeout: float = 10):
        return await self.sio.call(event, data if data is not None else {}, timeout=timeout)

    async def wait_for(self, event: str, pred=lambda d: True, timeout: float = 10):
        """The first `event` received that satisfies pred (waits for it if needed)."""
        return await self.wait_after(event, 0, pred, timeout)

    def mark(self, event: str) -> int:
        return len(self.events.get(event, []))

    async def wait_after(self, event: str, after: int, pred=lambda d: True, timeout: float = 10):
        """The first `event` received at index >= after (a `mark`) that satisfies pred (waits for it if needed)."""
        for data in self.events.get(event, [])[after:]:
            if pred(data):
                return data
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((event, pred, fut))
        return await asyncio.wait_for(fut, timeout)

    async def close(self):
        if self.sio.connected:
            await self.sio.disconnect()


async def dead_jobs(dsn: str, n: int, kind: str = "t.admin") -> list[int]:
    """n jobs of `kind` held dead by a worker of the test (the app's own worker does not know the kind): their ids."""
    from live.jobs import Jobs, Permanent, enqueue

    jobs = Jobs(dsn)

    async def refuse(payload):
        raise Permanent(f"refused {payload['n']}")

    jobs.register(kind, refuse)
    async with owner_connection(dsn) as conn:
        ids = [await enqueue(conn, kind, {"n": i}) for i in range(n)]
    await jobs.drain()
    return ids
