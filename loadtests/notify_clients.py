"""The online followers of the notification benchmark (loadtests/notify.py): one process holding a signed-in
Socket.IO socket per follower (raw websockets: loadtests/viewer.py's `Viewer`, which here joins no room), that
notes the wall time of every `notification:new` it gets. Driven by the parent over a pipe:

    parent                                   followers (this module)
      fork ------------------------------->  connect every socket (bounded concurrency)
      <------------------------------------  ("ready", {connected, errors})
      ("collect", {since, until}) -------->  wait until every socket has a notice since `since` (or `until`)
      <------------------------------------  ("result", {first arrival per socket, counts, kinds})
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import orjson

from live.rooms import packets
from loadtests.stats import Stats
from loadtests.viewer import Viewer
from loadtests.worker import run_child

NOTICE = packets.event_prefix("notification:new")
MAX_NOTICES_KEPT = 16  # per socket: arrival times and kinds kept (more are counted only)


@dataclass
class FollowerPlan:
    host: str
    port: int
    path: str
    tokens: list[str]  # one signed-in socket per token (a follower's)
    concurrency: int = 100  # handshakes in flight (the server caps pending ones per IP: 256)
    connect_timeout: float = 30.0


class Follower(Viewer):
    """A signed-in socket that stays out of rooms and keeps its `notification:new` arrivals."""

    __slots__ = ("notices",)

    def __init__(self, ctx, index: int, token: str):
        super().__init__(ctx, index, token)
        self.notices: list[tuple[float, str | None]] = []  # (arrival, kind)

    def on_packet(self, p: bytes) -> None:
        if p.startswith(NOTICE):
            now = time.time()
            self.ctx.notices += 1
            if len(self.notices) < MAX_NOTICES_KEPT:
                try:
                    data = orjson.loads(p[2:])[1]
                    kind = data["notification"]["kind"]
                except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
                    kind = None
                self.notices.append((now, kind))
        elif p.startswith(packets.CONNECT):  # connected: no join, the socket is online for its user
            self.stats.connected += 1
            self.stats.open += 1
            self.state = "open"
            self._finish(True)
        else:
            super().on_packet(p)


class Followers:
    """The process's context (what a `Viewer` expects of its `ctx`)."""

    def __init__(self, plan: FollowerPlan):
        self.plan = plan
        self.stats = Stats()
        self.path, self.host_header, self.stream = plan.path, f"{plan.host}:{plan.port}", ""
        self.first_ack = None
        self.sockets: list[Follower] = []
        self.notices = 0

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.plan.concurrency)

        async def one(i: int, token: str) -> None:
            async with slots:
                f = Follower(self, i, token)
                try:
                    await loop.create_connection(lambda: f, self.plan.host, self.plan.port)
                    ok = await asyncio.wait_for(asyncio.shield(f.done), self.plan.connect_timeout)
                except (OSError, asyncio.TimeoutError) as exc:
                    self.stats.error(f"connect:{type(exc).__name__}")
                    return
                if ok:
                    self.sockets.append(f)

        await asyncio.gather(*(one(i, t) for i, t in enumerate(self.plan.tokens)))

    async def collect(self, since: float, until: float) -> dict:
        """First `notification:new` per socket since `since`, waiting until all have one or `until` (wall)."""
        while time.time() < until and any(not any(t >= since for t, _ in s.notices) for s in self.sockets):
            await asyncio.sleep(0.05)
        firsts, kinds, per_socket = [], Counter(), Counter()
        for s in self.sockets:
            mine = [(t, k) for t, k in s.notices if t >= since]
            firsts.append(min(t for t, _ in mine) if mine else None)
            kinds.update(k or "?" for _, k in mine)
            per_socket[len(mine)] += 1
        return {"online": sum(1 for s in self.sockets if s.alive), "connected": len(self.sockets),
                "firsts": firsts, "kinds": dict(kinds), "notices_per_socket": dict(per_socket),
                "errors": dict(self.stats.errors)}

    async def main(self, conn) -> None:
        await self.connect()
        conn.send(("ready", {"connected": len(self.sockets), "errors": dict(self.stats.errors)}))
        while True:
            kind, data = await asyncio.to_thread(conn.recv)
            if kind == "collect":
                conn.send(("result", await self.collect(data["since"], data["until"])))
            else:
                break
        for s in self.sockets:
            s.close()
        await asyncio.sleep(0.05)


def run_followers(plan: FollowerPlan, conn) -> None:
    """The child process's entry point."""
    run_child(conn, lambda: Followers(plan).main(conn))
