"""Rate limits: `RateLimiter.hit(key, limit, window)` says whether one more action is allowed: `limit` at once,
then one every `window / limit` seconds (a token bucket, kept as GCRA's "theoretical arrival time": one number
per key). "5 per 10 s" thus lets a viewer chat steadily every 2 s, jitter included, and burst 5; `spaced(key, seconds)` allows one action per `seconds` and says how long is left otherwise.
`MemoryRateLimiter` keeps them in this process; `RedisRateLimiter` makes them global across workers and
machines (one Lua script per check, on Redis's clock), and falls back to this process's limits while Redis is
unreachable."""
from __future__ import annotations

import time
from typing import Protocol

from live.redis_support import FAILURES, LUA_NOW_MS, RedisLink


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> bool: ...

    async def spaced(self, key: str, seconds: float) -> float:
        """One action per `seconds`: 0 (and the action is remembered) when the last one is older, else the
        seconds left. With seconds=0 nothing is refused but the action is remembered, so a spacing switched on
        a moment later counts it (up to MAX_SPACING)."""
        ...


MAX_SPACING = 3600.0
LOCAL_PREFIXES = ("join:",)  # per-connection keys: never shared (RedisRateLimiter)


class MemoryRateLimiter:
    def __init__(self, max_keys: int = 200_000):
        self._tat: dict[str, float] = {}  # key -> when its bucket is full again (theoretical arrival time)
        self._last: dict[str, float] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: int, window: float) -> bool:
        now = time.monotonic()
        tat = self._tat.get(key)
        if tat is None:
            if len(self._tat) >= self._max_keys:
                self._tat = {k: t for k, t in self._tat.items() if t > now}
            tat = now
        new = max(tat, now) + window / limit
        if new - now > window + 1e-9:
            return False
        self._tat[key] = new
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


# KEYS: the bucket's theoretical arrival time (ms)   ARGV: limit, window ms
HIT = LUA_NOW_MS + """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + tonumber(ARGV[2]) / tonumber(ARGV[1])
if new - now > tonumber(ARGV[2]) + 0.001 then return 0 end
redis.call('SET', KEYS[1], string.format('%.3f', new), 'PX', math.ceil(new - now) + 1)
return 1
"""
# KEYS: key   ARGV: spacing ms, kept ms   -> ms left (0: allowed and remembered)
SPACED = LUA_NOW_MS + """
local last = redis.call('GET', KEYS[1])
if last and now - tonumber(last) < tonumber(ARGV[1]) then return tonumber(ARGV[1]) - (now - tonumber(last)) end
redis.call('SET', KEYS[1], now, 'PX', ARGV[2])
return 0
"""


class RedisRateLimiter:
    """Global limits. Keys starting with one of `LOCAL_PREFIXES` (per-connection limits: a connection lives on
    one worker) stay in this process and cost no round trip."""

    def __init__(self, link: RedisLink):
        self.link = link
        self.local = MemoryRateLimiter()
        self._hit = link.client.register_script(HIT)
        self._spaced = link.client.register_script(SPACED)

    async def hit(self, key: str, limit: int, window: float) -> bool:
        if self.link.up and not key.startswith(LOCAL_PREFIXES):
            try:
                return bool(await self._hit(keys=["live:rl:" + key], args=[limit, int(window * 1000)]))
            except FAILURES as exc:
                self.link.failed(exc)
        return await self.local.hit(key, limit, window)

    async def spaced(self, key: str, seconds: float) -> float:
        if self.link.up and not key.startswith(LOCAL_PREFIXES):
            try:
                left = await self._spaced(keys=["live:sp:" + key], args=[int(seconds * 1000), int(MAX_SPACING * 1000)])
                return int(left) / 1000
            except FAILURES as exc:
                self.link.failed(exc)
        return await self.local.spaced(key, seconds)
