"""Rooms across workers and machines: the Broker interface on Redis.

* A Redis channel per room (`live:room:<id>`). A worker subscribes when its first local viewer joins and
  unsubscribes shortly after its last leaves; one pub/sub connection per worker, read by one task.
* Publishing is ONE Lua script: INCR the room's seq, XADD the packet to the room's capped stream (the recovery
  history; stream id = seq) and PUBLISH `seq, ts, event, latest_key, packet` on the room's channel, atomically,
  so seq is global and every worker sees the same order. The publisher encodes the packet once (orjson) with
  a hole where the seq goes; Redis splices the number in; the bytes travel as they are to every viewer.
  Publishes issued in the same loop turn share one pipelined round trip. A publish may carry a guard (a key
  and the value it must still hold): the script checks it in the same step and publishes nothing otherwise
  (viewer counts: a count decided before another worker announced a newer one is not published after it).
* The epoch lives in Redis (`live:epoch`), so a client recovers on whichever worker it reconnects to; it
  changes only when Redis loses its data. The script refuses to publish under a stale epoch.
* A worker delivers a room's events in seq order and never one it already delivered. Its `current(room)` is
  the last seq it delivered, so a join ack and the live events after it line up exactly.
* When Redis is lost, each worker goes on with its own viewers: events are delivered locally under local seq
  numbers (a jump of a million above the last global one, so no client can mistake them for global ones) and
  recovery answers with fresh snapshots. When Redis returns, the link resubscribes and each room is resynced;
  a room that published locally moves its global seq above everything seen, leaving a hole in the history so
  that a client whose position lies in the outage gets a fresh snapshot instead of a wrong recovery.
"""
from __future__ import annotations

import asyncio
import os
import time

import orjson
from redis.exceptions import NoScriptError, ResponseError

from live.logging import get_logger
from live.redis.link import FAILURES, RedisLink
from live.rooms.broker import (
    HISTORY_SECONDS,
    HISTORY_SIZE,
    BrokerHandler,
    Counters,
    Envelope,
    Subscriber,
    history_since,
    with_totals,
)
from live.rooms.packets import EVENT, encode_event

log = get_logger("live.rooms.redis")
EPOCH_KEY = "live:epoch"
LOCAL_JUMP = 1_000_000  # local seqs during an outage start this far above the last global seq
KEY_TTL = 7 * 24 * 3600  # a room's seq, history and totals expire after a week without events
MAX_QUEUED = 20_000  # events held for a room while it resyncs

# KEYS: epoch, seq, hist[, counters][, guard]   ARGV: epoch, channel, head, tail, event, latest_key, ts, maxlen,
#                                                     ttl, guard value ('' = none)[, mid, field1, inc1, ...]
# -> {seq, totals}, or {0, ''} when the guard key no longer holds the guard value (nothing published)
PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('EPOCH stale') end
local nkeys = #KEYS
if ARGV[10] ~= '' then
  if redis.call('GET', KEYS[nkeys]) ~= ARGV[10] then return {0, ''} end
  nkeys = nkeys - 1
end
local seq = redis.call('INCR', KEYS[2])
local packet, totals
if nkeys >= 4 then
  for i = 12, #ARGV, 2 do redis.call('HINCRBY', KEYS[4], ARGV[i], ARGV[i + 1]) end
  local flat = redis.call('HGETALL', KEYS[4])
  local parts = {}
  for i = 1, #flat, 2 do parts[#parts + 1] = cjson.encode(flat[i]) .. ':' .. flat[i + 1] end
  totals = '{' .. table.concat(parts, ',') .. '}'
  packet = ARGV[3] .. totals .. ARGV[11] .. seq .. ARGV[4]
  redis.call('EXPIRE', KEYS[4], ARGV[9])
else
  totals = ''
  packet = ARGV[3] .. seq .. ARGV[4]
end
local id = seq .. '-0'
local ok = redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], id, 'p', packet, 'e', ARGV[5], 'k', ARGV[6],
                       't', ARGV[7])
if type(ok) == 'table' and ok.err then
  redis.call('DEL', KEYS[3])  -- the history outlived its counter (evicted): start it again
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], id, 'p', packet, 'e', ARGV[5], 'k', ARGV[6], 't', ARGV[7])
end
redis.call('EXPIRE', KEYS[2], ARGV[9])
redis.call('EXPIRE', KEYS[3], ARGV[9])
redis.call('PUBLISH', ARGV[2], seq .. '\\n' .. ARGV[7] .. '\\n' .. ARGV[5] .. '\\n' .. ARGV[6] .. '\\n' .. packet)
return {seq, totals}
"""

# KEYS: seq   ARGV: floor, ttl  -> the seq becomes max(current, floor) + 1, a seq no event will carry
BUMP = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
local new = math.max(cur, floor) + 1
redis.call('SET', KEYS[1], new, 'EX', ARGV[2])
return new
"""


ROOM_PREFIX = b"live:room:"
_PREFIX_LEN = len(ROOM_PREFIX)


def room_channel(room: str) -> bytes:
    return ROOM_PREFIX + room.encode()


def room_key(room: str, part: str) -> str:
    return f"live:{{{room}}}:{part}"  # hash tag: a room's keys stay together


def packet_parts(event: str, data: dict, splice: str | None = None) -> tuple[bytes, bytes, bytes]:
    """The packet 42[event, {**data, (splice: <totals>,) "seq": <seq>}] as (head, mid, tail) around the values
    Redis inserts; with no splice, mid is empty and the packet is head + seq + tail."""
    body = orjson.dumps(data)
    head = EVENT + b"[" + orjson.dumps(event) + b"," + body[:-1] + (b"," if len(body) > 2 else b"")
    if splice is None:
        return head + b'"seq":', b"", b"}]"
    return head + orjson.dumps(splice) + b":", b',"seq":', b"}]"


class Feed:
    """A room this worker is subscribed to."""

    __slots__ = ("room", "seq", "live", "dirty", "queue", "sync")

    def __init__(self, room: str):
        self.room = room
        self.seq = 0  # the last seq delivered here (or assigned here while Redis was away)
        self.live = False  # synced with Redis: events are delivered as they come
        self.dirty = False  # published locally during an outage
        self.queue: list[Envelope] = []  # events that came while syncing
        self.sync: asyncio.Future | None = None


class RedisBroker:
    shared = True

    def __init__(self, link: RedisLink, *, size: int = HISTORY_SIZE, max_age: float = HISTORY_SECONDS,
                 ttl: int = KEY_TTL):
        self.link = link
        self.epoch = "local-" + os.urandom(4).hex()  # until Redis says
        self._deliver: Subscriber = lambda room, env: None
        self._handler: BrokerHandler | None = None
        self._size, self._max_age, self._ttl = size, max_age, ttl
        self._feeds: dict[str, Feed] = {}
        self._offline: dict[str, int] = {}  # local seqs of rooms published to without a feed, during outages
        self._since: dict[tuple[str, int, int], asyncio.Future] = {}
        self._batch: list[tuple[list, list, asyncio.Future]] = []
        self._sha: dict[str, str] = {}
        link.route(ROOM_PREFIX, self._on_message)
        link.on_up.append(self._resync)
        link.on_down.append(self._down)

    # ---- Broker interface ----

    def register(self, handler: BrokerHandler) -> None:
        self._handler = handler
        self._deliver = handler.on_event

    def follows(self, room: str) -> bool:
        feed = self._feeds.get(room)
        return feed is not None and feed.live and self.link.up

    async def current(self, room: str) -> int:
        feed = self._feeds.get(room)
        return feed.seq if feed is not None else self._offline.get(room, 0)

    async def subscribe(self, room: str) -> None:
        feed = self._feeds.get(room)
        if feed is None:
            feed = self._feeds[room] = Feed(room)
        if feed.live:
            return
        if feed.sync is None and not await self.link.subscribe(room_channel(room)):
            return  # Redis is down: the resync on reconnection follows the room
        if self._feeds.get(room) is feed:
            await self._ensure_synced(feed)

    async def _ensure_synced(self, feed: Feed) -> None:
        if feed.live:
            return
        if feed.sync is not None:
            await asyncio.shield(feed.sync)
        else:
            await self._sync(feed)

    async def unsubscribe(self, room: str) -> None:
        if self._feeds.pop(room, None) is not None:
            await self.link.unsubscribe(room_channel(room))

    async def publish(self, room: str, event: str, data: dict, *, latest_key: str | None = None,
                      counters: Counters | None = None, guard: tuple[str, str] | None = None) -> Envelope | None:
        """See Broker.publish. With guard=(key, value), the event is published only if that key (one of the
        room's, e.g. RedisPresence's announced count) still holds that value when the script runs; else
        nothing is published and None is returned."""
        ts = time.time()
        if "seq" in data:
            data = {k: v for k, v in data.items() if k != "seq"}
        head, mid, tail = packet_parts(event, data, counters[0] if counters else None)
        if self.link.up:
            keys = [EPOCH_KEY, room_key(room, "seq"), room_key(room, "hist")]
            args = [self.epoch, room_channel(room), head, tail, event, latest_key or "", repr(ts), self._size,
                    self._ttl, guard[1] if guard is not None else ""]
            if counters is not None:
                keys.append(room_key(room, "c:" + counters[0]))
                args.append(mid)
                for k, n in counters[1].items():
                    args += [k, n]
            if guard is not None:
                keys.append(guard[0])
            try:
                seq, totals = await self._call(keys, args)
                seq = int(seq)
                if seq == 0:
                    return None  # the guard refused it
                return Envelope(seq, event, head + totals + mid + str(seq).encode() + tail, latest_key, ts)
            except FAILURES as exc:  # EPOCH (Redis lost its data) comes here too: resync first
                self.link.failed(exc)
        return self._publish_local(room, event, data, latest_key, counters, ts)

    async def since(self, room: str, last_seq: int) -> tuple[list[Envelope] | None, int]:
        feed = self._feeds.get(room)
        if feed is None or not feed.live or not self.link.up:
            return None, await self.current(room)  # no shared history right now: a fresh snapshot
        current = feed.seq
        if last_seq < 0 or last_seq > current or current - last_seq > self._size:
            return None, current
        if last_seq == current:
            return [], current
        key = (room, last_seq, current)
        fut = self._since.get(key)
        if fut is None:  # a reconnect storm asks the same question many times: one read answers all
            fut = self._since[key] = asyncio.ensure_future(self._read_since(room, last_seq, current))
            fut.add_done_callback(lambda _f: self._since.pop(key, None))
        try:
            return await asyncio.shield(fut)
        except FAILURES as exc:
            self.link.failed(exc)
            return None, current

    async def totals(self, room: str, name: str) -> dict[str, int]:
        raw = await self.link.client.hgetall(room_key(room, "c:" + name))
        return {k.decode(): int(v) for k, v in raw.items()}

    # ---- internals ----

    async def _read_since(self, room: str, last_seq: int, current: int) -> tuple[list[Envelope] | None, int]:
        entries = await self.link.client.xrange(room_key(room, "hist"), f"{last_seq + 1}-0", f"{current}-0")
        return history_since([_entry(e) for e in entries], last_seq, current, self._max_age)

    def _publish_local(self, room, event, data, latest_key, counters, ts) -> Envelope:
        data = with_totals(data, counters)
        feed = self._feeds.get(room)
        if feed is None:
            seq = self._offline[room] = self._offline.get(room, LOCAL_JUMP) + 1
        else:
            if not feed.dirty:
                feed.dirty = True
                feed.seq += LOCAL_JUMP
            feed.seq += 1
            seq = feed.seq
        env = Envelope(seq, event, encode_event(event, {**data, "seq": seq}), latest_key, ts)
        if feed is not None:
            self._deliver(room, env)
        return env

    async def _call(self, keys: list, args: list):
        """Run the publish script; calls made in the same loop turn share one pipelined round trip."""
        fut = asyncio.get_running_loop().create_future()
        self._batch.append((keys, args, fut))
        if len(self._batch) == 1:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._send()))
        return await fut

    async def _send(self) -> None:
        batch, self._batch = self._batch, []
        try:
            results = await self._pipeline(batch)
            if any(isinstance(r, NoScriptError) for r in results):  # Redis was flushed: load and go again
                await self._load_scripts()
                results = await self._pipeline(batch)
        except Exception as exc:  # noqa: BLE001 - every caller gets the failure
            results = [exc] * len(batch)
        for (_k, _a, fut), res in zip(batch, results):
            if fut.done():
                continue
            if isinstance(res, BaseException):
                fut.set_exception(res if isinstance(res, FAILURES) else ResponseError(str(res)))
            else:
                fut.set_result((res[0], res[1] or b""))

    async def _pipeline(self, batch) -> list:
        pipe = self.link.client.pipeline(transaction=False)
        for keys, args, _fut in batch:
            pipe.evalsha(self._sha["publish"], len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)

    async def _load_scripts(self) -> None:
        client = self.link.client
        self._sha = {"publish": await client.script_load(PUBLISH), "bump": await client.script_load(BUMP)}

    def _on_message(self, channel: bytes, data: bytes) -> None:
        feed = self._feeds.get(channel[_PREFIX_LEN:].decode())
        if feed is None:
            return  # unsubscribed a moment ago
        seq, ts, event, key, packet = data.split(b"\n", 4)
        env = Envelope(int(seq), event.decode(), packet, key.decode() or None, float(ts))
        if not feed.live:
            if len(feed.queue) < MAX_QUEUED:
                feed.queue.append(env)
            return
        if env.seq <= feed.seq:
            return  # already delivered (or older than this worker's position)
        feed.seq = env.seq
        self._deliver(feed.room, env)

    def _down(self) -> None:
        for feed in self._feeds.values():
            feed.live = False
            feed.queue.clear()

    async def _resync(self) -> None:
        """Redis is back (or reached for the first time): epoch, scripts, then every followed room."""
        client = self.link.client
        await self._load_scripts()
        await client.set(EPOCH_KEY, os.urandom(6).hex(), nx=True)
        epoch = (await client.get(EPOCH_KEY)).decode()
        if epoch != self.epoch:
            log.info("redis_epoch", epoch=epoch, previous=self.epoch)
            self.epoch = epoch
        self._offline.clear()
        for feed in list(self._feeds.values()):
            if self._feeds.get(feed.room) is feed:
                await self._ensure_synced(feed)

    async def _sync(self, feed: Feed) -> None:
        """Start following a room: take Redis's seq as this worker's position (moving it above anything this
        worker numbered locally), reload the room's state, then deliver what came meanwhile."""
        loop = asyncio.get_running_loop()
        feed.sync = loop.create_future()
        try:
            base = int(await self.link.client.get(room_key(feed.room, "seq")) or 0)
            if feed.dirty or base < feed.seq:
                base = int(await self.link.client.evalsha(self._sha["bump"], 1, room_key(feed.room, "seq"),
                                                          feed.seq, self._ttl))
            history = []
            if self._handler is not None:
                if base:
                    entries = await self.link.client.xrevrange(room_key(feed.room, "hist"), f"{base}-0", "-",
                                                               count=200)
                    history = [_entry(e) for e in reversed(entries)]
                try:
                    await self._handler.on_follow(feed.room, history)
                except FAILURES:
                    raise
                except Exception:
                    log.exception("room_follow_failed", room=feed.room)
            feed.seq, feed.dirty = base, False
            queued, feed.queue = feed.queue, []
            feed.live = True
            for env in queued:
                if env.seq > feed.seq:
                    feed.seq = env.seq
                    self._deliver(feed.room, env)
        except FAILURES as exc:
            self.link.failed(exc)
        finally:
            sync, feed.sync = feed.sync, None
            sync.set_result(None)


def _entry(entry) -> Envelope:
    sid, f = entry
    return Envelope(int(sid.split(b"-", 1)[0]), f[b"e"].decode(), f[b"p"], f[b"k"].decode() or None, float(f[b"t"]))
