"""Rate limits: `RateLimiter.hit(key, limit, window)` says whether one more action fits in the window (a
sliding log); `spaced(key, seconds)` allows one action per `seconds` and says how long is left otherwise.
`MemoryRateLimiter` keeps them in this process; `RedisRateLimiter` makes them global across workers and
machines (one Lua script per check, on Redis's clock), and falls back to this process's limits while Redis is
unreachable."""
from __future__ import annotations

import itertools
import time
from collections import deque
from typing import Protocol

from live.redis_support import FAILURES, RedisLink


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> bool: ...

    async def spaced(self, key: str, seconds: float) -> float:
        """One action per `seconds`: 0 (and the action is remembered) when the last one is older, else the
        seconds left. With seconds=0 nothing is refused but the action is remembered, so a spacing switched on
        a moment later counts it (up to MAX_SPACING)."""
        ...


MAX_SPACING = 3600.0


class MemoryRateLimiter:
    def __init__(self, max_keys: int = 200_000):
        self._hits: dict[str, deque[float]] = {}
        self._last: dict[str, float] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: int, window: float) -> bool:
        now = time.monotonic()
        q = self._hits.get(key)
        if q is None:
            if len(self._hits) >= self._max_keys:
                self._sweep(now, window)
            q = self._hits[key] = deque()
        while q and q[0] <= now - window:
            q.popleft()
        if len(q) >= limit:
            return False
        q.append(now)
        return True

    async def spaced(self, key: str, seconds: float) -> float:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < seconds:
            return seconds - (now - last)
        if len(self._last) >= self._max_keys:
            self._last = {k: t for k, t in self._last.items() if now - t < MAX_SPACING}
        self._last[key] = now
        return 0.0

    def _sweep(self, now: float, window: float) -> None:
        for key in [k for k, q in self._hits.items() if not q or q[-1] <= now - window]:
            del self._hits[key]


_NOW = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# KEYS: log (sorted set)   ARGV: limit, window ms, unique member
HIT = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# KEYS: key   ARGV: spacing ms, kept ms   -> ms left (0: allowed and remembered)
SPACED = _NOW + """
local last = redis.call('GET', KEYS[1])
if last and now - tonumber(last) < tonumber(ARGV[1]) then return tonumber(ARGV[1]) - (now - tonumber(last)) end
redis.call('SET', KEYS[1], now, 'PX', ARGV[2])
return 0
"""


class RedisRateLimiter:
    """Global limits. Keys starting with one of `local_prefixes` (per-connection limits: a connection lives on
    one worker) stay in this process and cost no round trip."""

    def __init__(self, link: RedisLink, *, local_prefixes: tuple[str, ...] = ("join:",)):
        self.link = link
        self.local = MemoryRateLimiter()
        self._local_prefixes = local_prefixes
        self._hit = link.client.register_script(HIT)
        self._spaced = link.client.register_script(SPACED)
        self._ids = itertools.count()

    async def hit(self, key: str, limit: int, window: float) -> bool:
        if self.link.up and not key.startswith(self._local_prefixes):
            try:
                member = f"{self.link.name}:{next(self._ids)}"
                return bool(await self._hit(keys=["live:rl:" + key], args=[limit, int(window * 1000), member]))
            except FAILURES as exc:
                self.link.failed(exc)
        return await self.local.hit(key, limit, window)

    async def spaced(self, key: str, seconds: float) -> float:
        if self.link.up and not key.startswith(self._local_prefixes):
            try:
                left = await self._spaced(keys=["live:sp:" + key], args=[int(seconds * 1000), int(MAX_SPACING * 1000)])
                return int(left) / 1000
            except FAILURES as exc:
                self.link.failed(exc)
        return await self.local.spaced(key, seconds)
