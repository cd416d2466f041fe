"""Viewer counts. `LocalPresence` counts the sockets of this worker (one worker). `RedisPresence` adds up the
counts every worker reports to Redis each second; a worker that stops reporting (killed with SIGKILL) drops
out of the total after `PRESENCE_TTL` seconds. Either way the count is announced by one worker when it changes.

With Redis, deciding to announce (the tally sets the room's `announced` key) and publishing are two round trips,
and two workers may decide one after the other (A: total 4, then B: total 5) yet publish in the other order (B's
5, then A's 4): every viewer would keep 4 while `announced` says 5, so no worker would announce again. An
announcement is therefore published with the guard `announce_guard` gives (RedisBroker.publish checks, in the
same script, that the announced key still holds this total): a stale announcement is dropped, not published."""
from __future__ import annotations

from typing import Protocol

from live.logging import get_logger
from live.redis.link import FAILURES, LUA_NOW_MS, RedisLink
from live.rooms.redis_broker import room_key

log = get_logger("live.rooms.presence")
PRESENCE_TTL = 6.0  # seconds without a report before a worker's viewers stop counting
WORKERS_KEY = "live:workers"


class Presence(Protocol):
    async def tally(self, local: dict[str, int]) -> dict[str, tuple[int, bool]]:
        """Report this worker's viewers per room (a room reported before and missing here now counts 0: its
        last local viewer left) and get, per room, the total and whether this worker should announce it (it
        changed since it was last announced)."""
        ...

    async def leave_all(self) -> None:
        """This worker stops: its viewers no longer count."""
        ...

    def announce_guard(self, room: str, total: int) -> tuple[str, str] | None:
        """The guard (RedisBroker.publish) the announcement of `total` is published with, or None when no
        other worker announces this room's counts."""
        ...


class LocalPresence:
    def __init__(self):
        self._announced: dict[str, int] = {}

    async def tally(self, local: dict[str, int]) -> dict[str, tuple[int, bool]]:
        out = {}
        for room, n in {**dict.fromkeys(self._announced.keys() - local.keys(), 0), **local}.items():
            if n:
                out[room] = (n, self._announced.get(room) != n)
                self._announced[room] = n
            else:  # the last local viewer left: nobody to tell; the next viewer hears the count again
                self._announced.pop(room, None)
                out[room] = (0, False)
        return out

    async def leave_all(self) -> None:
        self._announced.clear()

    def announce_guard(self, room: str, total: int) -> None:
        return None  # one worker: its announcements are published in the order they are decided


# KEYS: workers, then per room (viewers hash, announced key)   ARGV: worker, ttl ms, then one count per room
TALLY = LUA_NOW_MS + """
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 100 * ttl)
local out = {}
for i = 2, #KEYS, 2 do
  local hash, announced = KEYS[i], KEYS[i + 1]
  local n = tonumber(ARGV[2 + i / 2])
  if n > 0 then redis.call('HSET', hash, ARGV[1], n) else redis.call('HDEL', hash, ARGV[1]) end
  local flat = redis.call('HGETALL', hash)
  local total = 0
  for j = 1, #flat, 2 do
    local beat = redis.call('ZSCORE', KEYS[1], flat[j])
    if beat and tonumber(beat) >= now - ttl then
      total = total + tonumber(flat[j + 1])
    else
      redis.call('HDEL', hash, flat[j])  -- a worker that stopped reporting
    end
  end
  if total > 0 then redis.call('EXPIRE', hash, 3600) end
  local announce = 0
  if n > 0 and redis.call('GET', announced) ~= tostring(total) then
    redis.call('SET', announced, total, 'EX', 3600)
    announce = 1
  end
  out[#out + 1] = total
  out[#out + 1] = announce
end
return out
"""


class RedisPresence:
    """Per room a hash {worker: viewers}; per worker a heartbeat in the sorted set `live:workers`."""

    def __init__(self, link: RedisLink, *, ttl: float = PRESENCE_TTL):
        self.link = link
        self.ttl = ttl
        self._script = link.client.register_script(TALLY)
        self._reported: set[str] = set()

    async def tally(self, local: dict[str, int]) -> dict[str, tuple[int, bool]]:
        if not self.link.up:
            return {}  # without Redis the total is unknown: counts stay as last announced
        # a room this worker reported and no longer has (even if that report was lost with Redis) goes to 0
        local = {**{room: 0 for room in self._reported if room not in local}, **local}
        if not local:
            return {}
        rooms = list(local)
        keys = [WORKERS_KEY]
        for room in rooms:
            keys += [room_key(room, "viewers"), room_key(room, "announced")]  # beside the broker's room keys
        self._reported |= {r for r, n in local.items() if n}  # before the call: a failed report may have landed
        try:
            flat = await self._script(keys=keys, args=[self.link.name, int(self.ttl * 1000), *local.values()])
        except FAILURES as exc:
            self.link.failed(exc)
            return {}
        self._reported -= {r for r, n in local.items() if not n}
        return {room: (int(flat[2 * i]), bool(flat[2 * i + 1])) for i, room in enumerate(rooms)}

    def announce_guard(self, room: str, total: int) -> tuple[str, str]:
        """Published only while no worker has announced another total since (the tally's SET)."""
        return room_key(room, "announced"), str(total)

    async def leave_all(self) -> None:
        if not self.link.up:
            return
        try:
            if self._reported:
                await self.tally(dict.fromkeys(self._reported, 0))
            await self.link.client.zrem(WORKERS_KEY, self.link.name)
        except FAILURES as exc:
            log.warning("presence_leave_failed", error=str(exc))
