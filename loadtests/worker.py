"""One generator process: its share of the viewers on its own event loop, driven by the parent over a pipe.

    parent                                   worker (this module)
      fork ------------------------------->  open its viewers (bounded concurrency, spread over --ramp)
      <------------------------------------  ("joined", ...)
      all joined: ("go", {at, until...}) ->  run the scenario's actions (scenarios.py)
      <------------------------------------  ("ran", ...)
      all ran: ("drain", {}) ------------->  wait until no chat frame arrives for a moment
      <------------------------------------  ("result", stats and per-viewer accounting)
    and every second ("tick", counters, CPU, the latency samples of that second).
"""
from __future__ import annotations

import asyncio
import os
import random
import resource
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

import jwt

from live.runner import raise_nofile
from loadtests.stats import Stats
from loadtests.viewer import Viewer

QUIET_S = 0.6  # drain: no chat frame for this long means everything sent has arrived


@dataclass
class Room:
    """One small room of --rooms (all of them in process 0): `viewers` join the stream `slug`, the first
    `actors` of them (with `tokens`) chat at `rate` messages/s in all; every viewer is tracked."""
    slug: str
    viewers: int
    tokens: list[str] = field(default_factory=list)
    actors: int = 0
    rate: float = 0.0


class RoomState:
    """A small room in a generator process: its own counters and latency (the main room's figures stay its
    own), its viewers and the seqs of its acked chat messages."""

    def __init__(self, room: Room):
        self.room = room
        self.stats = Stats()
        self.viewers: list[Viewer | None] = [None] * room.viewers
        self.chat_seqs: list[int] = []

    @property
    def slug(self) -> str:
        return self.room.slug

    def accounting(self) -> list[tuple]:
        return accounting(self.viewers)

    def result(self) -> dict:
        return {"chat_seqs": self.chat_seqs, "accounting": self.accounting(), "stats": self.stats.dump()}


def accounting(viewers: list[Viewer | None]) -> list[tuple]:
    """Per viewer that joined: `viewer_accounting`."""
    return [viewer_accounting(v) for v in viewers if v is not None and v.join_seq is not None]


def viewer_accounting(v: Viewer) -> tuple:
    """(join_seq, chat messages received, still connected, tracked seqs or None, duplicates seen, reconnected)."""
    seqs = sorted(v.seqs) if v.seqs is not None else None
    return (v.join_seq, v.received, v.alive, seqs, v.dups, v.rejoin)


@dataclass
class Plan:
    """Everything a worker needs, computed by the parent (picklable)."""
    scenario: str
    proc: int
    host: str
    port: int
    path: str
    stream: str
    viewers: int
    file_tokens: list[str] = field(default_factory=list)  # this process's share, used by its first viewers
    secret: str | None = None
    issuer: str = "live"
    actors: int = 0  # chatters (audience, reconnect) or buyers (flash-sale): the first viewers
    rate: float = 0.0  # chat messages per second, this process
    reactions: float = 0.0  # reactions per second, this process
    sample: float = 0.05
    drop: float = 0.0
    pause: float = 1.0
    duration: float = 10.0
    ramp: float = 0.0
    concurrency: int = 200
    join_timeout: float = 30.0
    ack_timeout: float = 15.0
    drain: float = 5.0
    variant: str | None = None
    qty: int = 1
    run_id: str = ""
    seed: int = 0
    t0: float = 0.0  # wall clock of the run's start (time series seconds count from it)
    batch: bool = False  # viewers opt into batched room events (CONNECT auth `batch: 1`)
    deflate: bool = False  # viewers offer permessage-deflate at the handshake
    timed: bool = True  # False in a bulk process of --probe-viewers: its tracked viewers check seqs, never time
    rooms: list[Room] = field(default_factory=list)  # --rooms: small rooms held by this process


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def mint(secret: str, issuer: str) -> str:
    """A viewer token signed with the server's secret, for a user that need not exist (enough to join and
    react; chatting and buying need real users: --tokens)."""
    now = int(time.time())
    return jwt.encode({"sub": str(uuid.uuid4()), "role": "customer", "name": "viewer", "iss": issuer,
                       "iat": now, "exp": now + 6 * 3600}, secret, algorithm="HS256")


def attach_pipe(loop, conn, callback, *args) -> None:
    """Call `callback(*args)` when the pipe has a message. The fd is made blocking again after the loop
    registers it (libuv sets O_NONBLOCK), so `recv` and `send` move whole messages larger than the pipe's
    buffer instead of failing half-way with EAGAIN."""
    loop.add_reader(conn.fileno(), callback, *args)
    os.set_blocking(conn.fileno(), True)


class Generator:
    def __init__(self, plan: Plan, conn, scenario):
        self.plan, self.conn, self.scenario = plan, conn, scenario
        self.stats = Stats()
        self.stream = plan.stream
        self.timed = plan.timed
        self.path = plan.path
        self.host_header = f"{plan.host}:{plan.port}"
        self.first_ack: dict | None = None
        self.rng = random.Random(plan.seed * 1000 + plan.proc)
        self.viewers: list[Viewer | None] = []
        self.tokens: list[str | None] = []
        self.cmds: asyncio.Queue = asyncio.Queue()
        self.last_join_wall = 0.0
        self.sem: asyncio.Semaphore | None = None
        self.cpu0 = cpu_seconds()
        self.rooms = [RoomState(r) for r in plan.rooms]

    def all_viewers(self):
        """The main room's viewers, then the small rooms' (None for one that never connected)."""
        yield from self.viewers
        for room in self.rooms:
            yield from room.viewers

    # ---- the pipe to the parent ----

    def send(self, kind: str, data) -> None:
        self.conn.send((kind, data))

    def phase(self, kind: str, data: dict) -> None:
        """A phase message, with this process's CPU seconds so far and the wall time."""
        self.send(kind, {**data, "cpu": cpu_seconds() - self.cpu0, "wall": time.time()})

    def _readable(self) -> None:
        try:
            self.cmds.put_nowait(self.conn.recv())
        except (EOFError, OSError):  # the parent is gone
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
            self.cmds.put_nowait(("stop", {}))

    async def _ticks(self) -> None:
        t0 = self.plan.t0
        while True:
            now = time.time()
            await asyncio.sleep(1.0 - ((now - t0) % 1.0))
            mono = time.monotonic()
            for v in self.all_viewers():
                if v is not None and v.acks:
                    v.expire_acks(mono, self.plan.ack_timeout)
            self.send("tick", {"t": round(time.time() - t0), "cpu": cpu_seconds() - self.cpu0,
                               **self.stats.snapshot(), "lat": self.stats.take_second().dump()})

    # ---- opening viewers ----

    def token_for(self, i: int) -> str | None:
        if i < len(self.plan.file_tokens):
            return self.plan.file_tokens[i]
        return self.minted()

    def minted(self) -> str | None:
        return mint(self.plan.secret, self.plan.issuer) if self.plan.secret else None

    async def open_one(self, i: int, *, track: bool, watch: bool, prev: Viewer | None = None,
                       room: RoomState | None = None) -> Viewer | None:
        """Viewer i of the main room, or of a small `room`."""
        loop = asyncio.get_running_loop()
        stats = self.stats if room is None else room.stats
        if room is None:
            token = self.tokens[i]
        else:
            token = room.room.tokens[i] if i < len(room.room.tokens) else self.minted()
        async with self.sem:
            v = Viewer(self, i, token, track=track, watch=watch, prev=prev, batch=self.plan.batch,
                       stream=room and room.slug, stats=room and room.stats)
            try:
                await loop.create_connection(lambda: v, self.plan.host, self.plan.port)
            except ConnectionRefusedError:
                stats.error("connect_refused")
                return None
            except OSError as exc:
                stats.error(f"connect_failed:{exc.strerror or type(exc).__name__}")
                return None
            try:
                ok = await asyncio.wait_for(asyncio.shield(v.done), self.plan.join_timeout)
            except asyncio.TimeoutError:
                stats.error("join_timeout")
                v.close()
                return v
        if not ok:
            v.close()
        elif not v.rejoin:
            self.last_join_wall = time.time()
        return v

    async def open_all(self) -> None:
        plan = self.plan
        n = plan.viewers
        self.tokens = [self.token_for(i) for i in range(n)]
        self.viewers = [None] * n
        tracked = [self.rng.random() < plan.sample for _ in range(n)]
        for i in self.scenario.always_tracked(self):
            tracked[i] = True
        watch = self.scenario.watch_stock

        async def one(i: int) -> None:
            self.viewers[i] = await self.open_one(i, track=tracked[i], watch=watch)

        async def in_room(room: RoomState, i: int) -> None:
            room.viewers[i] = await self.open_one(i, track=True, watch=False, room=room)

        # the small rooms' viewers are interleaved with the main room's, over the same ramp
        everyone = [(one, (i,)) for i in range(n)] + [(in_room, (room, i)) for room in self.rooms
                                                      for i in range(room.room.viewers)]
        if self.rooms:
            random.Random(plan.seed).shuffle(everyone)
        tasks = []
        start = time.monotonic()
        for k, (fn, fargs) in enumerate(everyone):
            if plan.ramp:
                delay = start + plan.ramp * k / len(everyone) - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fn(*fargs)))
        await asyncio.gather(*tasks)

    def joined_viewers(self) -> list[Viewer]:
        return [v for v in self.viewers if v is not None and v.join_seq is not None and v.alive]

    # ---- after the run ----

    async def drain(self, limit: float) -> None:
        """Wait until no chat frame has arrived for QUIET_S (at most `limit` seconds)."""
        deadline = time.monotonic() + limit
        last, quiet_since = self.stats.received, time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if self.stats.received != last:
                last, quiet_since = self.stats.received, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_S:
                return

    def accounting(self) -> list[tuple]:
        """Per viewer of the main room that joined: `viewer_accounting`."""
        return accounting(self.viewers)

    def rooms_joined(self) -> dict:
        """Per small room: viewers joined and the errors met while joining (a refused join names its code)."""
        return {r.slug: {"joined": r.stats.joined, "viewers": r.room.viewers, "errors": dict(r.stats.errors)}
                for r in self.rooms}

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        self.sem = asyncio.Semaphore(self.plan.concurrency)
        attach_pipe(loop, self.conn, self._readable)
        ticker = asyncio.create_task(self._ticks())
        try:
            await self.open_all()
            snapshot = None
            if self.first_ack is not None:
                snapshot = {k: self.first_ack.get(k) for k in ("seq", "epoch", "spotlight", "viewers")}
            self.phase("joined", {"joined": self.stats.joined, "last_join_wall": self.last_join_wall,
                                 "snapshot": snapshot, "rooms": self.rooms_joined()})
            kind, data = await self.cmds.get()
            ran = {}
            if kind == "go":
                ran = await self.scenario.run(self, data)
                self.phase("ran", ran)
                kind, data = await self.cmds.get()
                if kind == "drain":
                    await self.scenario.settle(self, data)
            self.phase("result", {"proc": self.plan.proc, "stats": self.stats.dump(), "ran": ran,
                                 "accounting": self.accounting(), "extra": self.scenario.extra(self),
                                 "rooms": {r.slug: r.result() for r in self.rooms}})
        finally:
            ticker.cancel()
            for v in self.all_viewers():
                if v is not None:
                    v.close()
            await asyncio.sleep(0.05)


def run_child(conn, main: Callable[[], Coroutine]) -> None:
    """The body of a forked load-generating process: more file descriptors, uvloop, `main()` to its end; an
    exception is told to the parent through `conn` (("error", text)) before it is raised."""
    raise_nofile()  # the server's own: soft limit to the hard one (or fs.nr_open when unlimited)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(main())
    except Exception as exc:  # tell the parent instead of dying silently
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass
        raise
    finally:
        conn.close()


def run_worker(plan: Plan, conn) -> None:
    """The child process's entry point."""
    from loadtests.scenarios import SCENARIOS

    run_child(conn, lambda: Generator(plan, conn, SCENARIOS[plan.scenario]()).main())
