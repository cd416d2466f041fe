"""Rate limits: `RateLimiter.hit(key, limit, window)` says whether one more action is allowed: `limit` at once,
then one every `window / limit` seconds (a token bucket, kept as GCRA's "theoretical arrival time": one number
per key). "5 per 10 s" thus lets a viewer chat steadily every 2 s, jitter included, and burst 5;
`spaced(key, seconds)` allows one action per `seconds` and says how long is left otherwise.
`MemoryRateLimiter` keeps them in this process; `RedisRateLimiter` makes them global across workers and
machines (one Lua script per check, on Redis's clock), and falls back to this process's limits while Redis is
unreachable. `wait` is `hit` that also says how long until the next action is allowed (Retry-After).

`Limits` names the limits of REST routes and sign-in (`DEFAULT_LIMITS`, overridden by the RATE_LIMITS setting)
and raises `RateLimited` (429 with its Retry-After) over one."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from live.errors import DomainError
from live.redis.link import FAILURES, LUA_NOW_MS, RedisLink


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> bool: ...

    async def wait(self, key: str, limit: int, window: float) -> float:
        """Like `hit`: 0 when the action is allowed (and counted), else the seconds until it would be."""
        ...

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
        return await self.wait(key, limit, window) == 0

    async def wait(self, key: str, limit: int, window: float) -> float:
        now = time.monotonic()
        tat = self._tat.get(key)
        if tat is None:
            if len(self._tat) >= self._max_keys:
                self._tat = {k: t for k, t in self._tat.items() if t > now}
            tat = now
        new = max(tat, now) + window / limit
        if new - now > window + 1e-9:
            return new - now - window
        self._tat[key] = new
        return 0.0

    async def spaced(self, key: str, seconds: float) -> float:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < seconds:
            return seconds - (now - last)
        if len(self._last) >= self._max_keys:
            self._last = {k: t for k, t in self._last.items() if now - t < MAX_SPACING}
        self._last[key] = now
        return 0.0


# KEYS: the bucket's theoretical arrival time (ms)   ARGV: limit, window ms   -> ms to wait (0: allowed, counted)
HIT = LUA_NOW_MS + """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + tonumber(ARGV[2]) / tonumber(ARGV[1])
local over = new - now - tonumber(ARGV[2])
if over > 0.001 then return math.ceil(over) end
redis.call('SET', KEYS[1], string.format('%.3f', new), 'PX', math.ceil(new - now) + 1)
return 0
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
        return await self.wait(key, limit, window) == 0

    async def wait(self, key: str, limit: int, window: float) -> float:
        if self.link.up and not key.startswith(LOCAL_PREFIXES):
            try:
                return int(await self._hit(keys=["live:rl:" + key], args=[limit, int(window * 1000)])) / 1000
            except FAILURES as exc:
                self.link.failed(exc)
        return await self.local.wait(key, limit, window)

    async def spaced(self, key: str, seconds: float) -> float:
        if self.link.up and not key.startswith(LOCAL_PREFIXES):
            try:
                left = await self._spaced(keys=["live:sp:" + key], args=[int(seconds * 1000), int(MAX_SPACING * 1000)])
                return int(left) / 1000
            except FAILURES as exc:
                self.link.failed(exc)
        return await self.local.spaced(key, seconds)


# ---------------------------------------------------------------- named limits (REST, sign-in)


@dataclass(frozen=True, slots=True)
class Limit:
    count: int  # actions at once, then one every window / count seconds
    window: float  # seconds


# The limits of REST routes (table in live/http/limits.py) and of sign-in (live/auth/). Keys: per signed-in user
# ("user") or per client address ("ip"); the sign-in ones per address and e-mail/wallet. RATE_LIMITS overrides.
DEFAULT_LIMITS: dict[str, Limit] = {
    "auth_email_start": Limit(20, 3600),  # code requests per client address
    "auth_email_verify": Limit(30, 3600),  # code verifications per client address
    "email_code_per_address": Limit(3, 900),  # code requests per client address and e-mail address
    "email_guess_per_address": Limit(5, 900),  # verifications per client address and e-mail address
    "auth_wallet_nonce": Limit(30, 600),  # wallet nonces per client address
    "auth_wallet_verify": Limit(30, 600),  # wallet verifications per client address
    "wallet_new_account": Limit(5, 3600),  # accounts created by wallet sign-in per client address
    "checkout": Limit(20, 60),  # per user
    "cart": Limit(120, 60),  # cart writes per user
    "search": Limit(120, 60),  # product list/search per user (or client address)
    "follow": Limit(30, 60),  # follows and unfollows per user
    "cover": Limit(20, 3600),  # stream cover uploads per user (each may store a new file on disk)
    "upload": Limit(60, 3600),  # product image uploads per user (POST /seller/uploads; each may store a file)
    # and per day (checked after `upload`): 100 at once, then one every 14.4 min. Files no row names are deleted
    # after 24 h (the uploads.sweep job): this bounds what a seller can leave on disk to about 100 x 5 MiB a day
    "upload_daily": Limit(100, 86400),
    "whep": Limit(30, 60),  # WHEP offers (embedded media playback sessions) per user or client address
    "write": Limit(120, 60),  # any other POST/PUT/PATCH/DELETE under /api/ per user (or client address)
    "contact_per_ip": Limit(5, 3600),  # contact-form messages per client address (live/contact.py)
    "contact_per_email": Limit(3, 3600),  # contact-form messages per sender's email address
}


def parse_limits(text: str) -> dict[str, Limit | None]:
    """`name=COUNT/SECONDS` or `name=off`, comma-separated (RATE_LIMITS); ValueError naming what is wrong."""
    out: dict[str, Limit | None] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = (x.strip() for x in item.partition("="))
        if not sep or name not in DEFAULT_LIMITS:
            raise ValueError(f"{item!r}: expected name=COUNT/SECONDS or name=off, name one of "
                             f"{', '.join(DEFAULT_LIMITS)}")
        if value.lower() == "off":
            out[name] = None
            continue
        count, slash, seconds = value.partition("/")
        try:
            limit = Limit(int(count), float(seconds))
        except ValueError:
            raise ValueError(f"{item!r}: expected COUNT/SECONDS like 20/60") from None
        if not slash or not (1 <= limit.count <= 1_000_000 and 0.001 <= limit.window <= 86_400):
            raise ValueError(f"{item!r}: COUNT must be 1..1000000 and SECONDS 0.001..86400")
        out[name] = limit
    return out


class RateLimited(DomainError):
    def __init__(self, message: str, retry_after: float):
        super().__init__("rate_limited", message)
        self.retry_after = max(1, math.ceil(retry_after))


class Limits:
    """Named limits over a RateLimiter: `await limits.check(name, key)` raises RateLimited (429, Retry-After)."""

    def __init__(self, limiter: RateLimiter, overrides: str = ""):
        self.limiter = limiter
        self.table = {**DEFAULT_LIMITS, **parse_limits(overrides)}

    async def check(self, name: str, key: str, message: str = "too many requests; try again later") -> None:
        limit = self.table[name]
        if limit is None:
            return
        wait = await self.limiter.wait(f"{name}:{key}", limit.count, limit.window)
        if wait > 0:
            raise RateLimited(message, wait)
