"""One worker's link to Redis, shared by the room broker, presence, the control channel, sign-in states and rate
limits (as Centrifuge's redis_shard.go is shared by its Redis broker and presence).

`RedisLink` is a command client and ONE pub/sub connection read by a single task, which hands each message to
the handler of its channel (`listen`: the control channel, sign-in changes) or of its channel's prefix (`route`:
the rooms). It knows whether Redis is reachable (`up`), and when it is lost it reconnects with backoff,
resubscribes every channel it wants, and runs its `on_up` hooks (the broker's resync) before it reports itself up
again. The embedded server for development and tests is live/redis/embedded.py.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from typing import Awaitable, Callable

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from live.logging import get_logger

log = get_logger("live.redis")
COMMAND_TIMEOUT = 2.0
SUBSCRIBE_TIMEOUT = 3.0
MAX_BACKOFF = 5.0
FAILURES = (RedisError, OSError, asyncio.TimeoutError, ConnectionError)  # what "Redis is unreachable" looks like
# the opening of a Lua script that needs Redis's clock: `now` in milliseconds (TIME is not deterministic)
LUA_NOW_MS = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""


def worker_id() -> str:
    """A name for this process, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


# ---------------------------------------------------------------- one worker's link


class RedisLink:
    def __init__(self, url: str, *, name: str | None = None):
        self.url = url
        self.name = name or worker_id()
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=COMMAND_TIMEOUT, socket_connect_timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 0), health_check_interval=0, client_name="live")
        self.up = False
        self.last_error: str | None = None
        self._listeners: dict[bytes, Callable[[bytes], None]] = {}  # channel -> its handler (listen)
        self._routes: list[tuple[bytes, Callable[[bytes, bytes], None]]] = []  # (prefix, handler) (route)
        self.on_up: list[Callable[[], Awaitable[None]]] = []  # run after (re)connecting, before `up`
        self.on_down: list[Callable[[], None]] = []
        self._channels: set[bytes] = set()  # what this worker wants to be subscribed to
        self._confirm: dict[bytes, asyncio.Future] = {}
        self._ps = None
        self._lost = asyncio.Event()
        self._first = asyncio.Event()
        self._task: asyncio.Task | None = None

    # ---- lifecycle ----

    async def start(self, wait: float = 5.0) -> None:
        """Start the connection task; wait up to `wait` s for the first connection (then run degraded)."""
        self._task = asyncio.create_task(self._supervise(), name="redis-link")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._first.wait(), wait)
        if not self.up:
            log.warning("redis_unavailable_at_start", error=self.last_error)

    async def stop(self) -> None:
        self.on_down.clear()
        self.up = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self.client.aclose()

    async def probe(self) -> str:
        """Readiness: 'ok', or why Redis is not usable right now."""
        if not self.up:
            return f"error: {self.last_error or 'not connected'}"
        try:
            await asyncio.wait_for(self.client.ping(), 1.0)
            return "ok"
        except FAILURES as exc:
            self.failed(exc)
            return f"error: {type(exc).__name__}"

    def failed(self, exc: BaseException) -> None:
        """A command found Redis unreachable: go down now, reconnect in the background."""
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]
        if self.up:
            self._set_down()
        self._lost.set()

    # ---- subscriptions ----

    def listen(self, channel: bytes, handler: Callable[[bytes], None]) -> None:
        """Subscribe to a channel for the link's whole life (from its start, and again on every reconnection);
        each message's data goes to `handler`. Called once per channel, by the constructor of its user."""
        self._listeners[channel] = handler
        self._channels.add(channel)

    def route(self, prefix: bytes, handler: Callable[[bytes, bytes], None]) -> None:
        """Messages of the channels starting with `prefix` that are subscribed with `subscribe` go to
        `handler(channel, data)` (the room broker's rooms)."""
        self._routes.append((prefix, handler))

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        handler = self._listeners.get(channel)
        if handler is not None:
            handler(data)
            return
        for prefix, routed in self._routes:
            if channel.startswith(prefix):
                routed(channel, data)
                return

    async def subscribe(self, channel: bytes) -> bool:
        """Want this channel. True once Redis confirmed the subscription (everything published after this
        returns reaches us); False when Redis is down (it is subscribed on reconnection)."""
        self._channels.add(channel)
        ps = self._ps
        if ps is None or self._lost.is_set():
            return False
        fut = self._confirm.get(channel)
        if fut is None or fut.done():
            fut = self._confirm[channel] = asyncio.get_running_loop().create_future()
        try:
            await ps.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(fut), SUBSCRIBE_TIMEOUT)
            return True
        except FAILURES as exc:
            self.failed(exc)
            return False

    async def unsubscribe(self, channel: bytes) -> None:
        self._channels.discard(channel)
        ps = self._ps
        if ps is not None and not self._lost.is_set():
            try:
                await ps.unsubscribe(channel)
            except FAILURES as exc:
                self.failed(exc)

    # ---- the connection task ----

    def _set_down(self) -> None:
        self.up = False
        log.warning("redis_down", error=self.last_error)
        for hook in self.on_down:
            try:
                hook()
            except Exception:
                log.exception("redis_down_hook_failed")

    def _fail_confirmations(self) -> None:
        for fut in self._confirm.values():
            if not fut.done():
                fut.set_exception(ConnectionError("redis connection lost"))
                fut.exception()
        self._confirm.clear()

    async def _supervise(self) -> None:
        delay = 0.1
        while True:
            ps = reader = None
            try:
                await self.client.ping()
                ps = self.client.pubsub()
                self._lost.clear()
                loop = asyncio.get_running_loop()
                channels = sorted(self._channels)
                waits = [self._confirm.setdefault(ch, loop.create_future()) for ch in channels]
                if channels:
                    await ps.subscribe(*channels)
                else:
                    await ps.ping()  # the reader needs a connection
                reader = asyncio.ensure_future(self._reader(ps))
                self._ps = ps
                await self._until_lost(reader, asyncio.wait_for(asyncio.gather(*waits), SUBSCRIBE_TIMEOUT))
                for hook in self.on_up:  # resync with what happened while we were away
                    await self._until_lost(reader, hook())
                self.up = True
                self.last_error = None
                self._first.set()
                log.info("redis_up", url=self.url.split("@")[-1])
                delay = 0.1
                await self._until_lost(reader, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                self.last_error = self.last_error if self._lost.is_set() else f"{type(exc).__name__}: {exc}"[:200]
            finally:
                self._ps = None
                self._lost.set()
                self._fail_confirmations()
                if self.up:
                    self._set_down()
                if reader is not None:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await reader
                if ps is not None:
                    with contextlib.suppress(Exception):
                        await ps.aclose()
            self._first.set()
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(MAX_BACKOFF, delay * 2)

    async def _until_lost(self, reader: asyncio.Future, work) -> None:
        """Run `work` (or just wait, when None) until it ends, the reader ends or a command reports a loss."""
        waits = {reader, asyncio.ensure_future(self._lost.wait())}
        job = asyncio.ensure_future(work) if work is not None else None
        if job is not None:
            waits.add(job)
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if job is not None and job in done:
                job.result()
                return
            if reader in done:
                reader.result()
                raise ConnectionError("pub/sub reader ended")
            raise ConnectionError(self.last_error or "redis command failed")
        finally:
            for t in waits:
                if t is not reader:
                    t.cancel()
            for t in waits:
                if t is not reader:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t

    async def _reader(self, ps) -> None:
        while True:
            msg = await ps.get_message(timeout=None)
            if msg is None:
                continue
            kind = msg["type"]
            if kind == "message":
                try:
                    self._dispatch(msg["channel"], msg["data"])
                except Exception:
                    log.exception("redis_message_failed", channel=msg["channel"][:80])
            elif kind == "subscribe":
                fut = self._confirm.pop(msg["channel"], None)
                if fut is not None and not fut.done():
                    fut.set_result(True)
