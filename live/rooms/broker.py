"""Publish/subscribe per room with a sequence number and a bounded history for recovery.

`Broker` is the interface; `MemoryBroker` is the in-process implementation (one worker); `RedisBroker`
(live/rooms/redis_broker.py) spreads rooms across workers and machines. A published event is encoded once, by
the publishing worker, into the Socket.IO packet text that every viewer receives.
"""
from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

from live.rooms.packets import encode_event

HISTORY_SIZE = 1000
HISTORY_SECONDS = 300.0


@dataclass(slots=True)
class Envelope:
    seq: int
    event: str
    packet: bytes  # Socket.IO EVENT packet text: 42["event",{...}]
    latest_key: str | None  # events with the same key supersede each other (counts, reactions, stock)
    ts: float
    # its websocket frame compressed (permessage-deflate), made once by the first write that needs it
    deflated: bytes | None = field(default=None, compare=False, repr=False)


Subscriber = Callable[[str, Envelope], None]


class BrokerHandler(Protocol):
    """Who a broker hands its room events to (RoomService), registered once by the container."""

    def on_event(self, room: str, env: Envelope) -> None:
        """Every event of a room this worker follows, in seq order, whoever published it."""
        ...

    async def on_follow(self, room: str, history: list[Envelope]) -> None:
        """A shared broker starts (again) receiving a room's events, `history` its latest ones."""
        ...


# (field name, increments, the caller's last known totals): running totals of a room, e.g. reactions. A shared
# broker keeps them itself (the known totals are its fallback); the memory broker adds to the known totals.
Counters = tuple[str, dict[str, int], dict[str, int]]


def with_totals(data: dict, counters: Counters | None) -> dict:
    """The event's data with the running totals (known totals plus increments) as data[name]."""
    if counters is None:
        return data
    name, increments, known = counters
    return {**data, name: {k: known.get(k, 0) + increments.get(k, 0) for k in {**known, **increments}}}


class Broker(Protocol):
    epoch: str
    shared: bool  # True when other workers publish into the same rooms

    def register(self, handler: BrokerHandler) -> None:
        """Hand every room event to `handler` (once, before the first subscribe or publish)."""
        ...

    async def publish(self, room: str, event: str, data: dict, *, latest_key: str | None = None,
                      counters: Counters | None = None, guard: tuple[str, str] | None = None) -> Envelope | None:
        """Publish to every viewer of the room (on every worker). With counters=(name, increments, known), the
        increments are added to the room's running totals and the event carries the totals as data[name].
        `guard` is what Presence.announce_guard gave (None with one worker): a shared broker publishes nothing
        and returns None when it no longer holds."""
        ...

    async def subscribe(self, room: str) -> None: ...

    async def unsubscribe(self, room: str) -> None: ...

    async def since(self, room: str, last_seq: int) -> tuple[list[Envelope] | None, int]:
        """Events after last_seq (None if that is older than the history) and the current seq."""
        ...

    async def current(self, room: str) -> int:
        """The room's seq as delivered on this worker."""
        ...

    def follows(self, room: str) -> bool:
        """Whether this worker receives every event of the room (its cached room state is then current)."""
        ...


class MemoryBroker:
    def __init__(self, *, size: int = HISTORY_SIZE, max_age: float = HISTORY_SECONDS):
        self.epoch = uuid.uuid4().hex[:12]
        self._deliver: Subscriber = lambda room, env: None
        self._size = size
        self._max_age = max_age
        self._seq: dict[str, int] = {}
        self._history: dict[str, deque[Envelope]] = {}

    shared = False

    def register(self, handler: BrokerHandler) -> None:
        self._deliver = handler.on_event

    async def publish(self, room: str, event: str, data: dict, *, latest_key: str | None = None,
                      counters: Counters | None = None, guard: None = None) -> Envelope:
        data = with_totals(data, counters)
        seq = self._seq.get(room, 0) + 1
        self._seq[room] = seq
        env = Envelope(seq, event, encode_event(event, {**data, "seq": seq}), latest_key, time.time())
        hist = self._history.get(room)
        if hist is None:
            hist = self._history[room] = deque(maxlen=self._size)
        hist.append(env)
        self._deliver(room, env)
        return env

    async def subscribe(self, room: str) -> None:
        return None

    async def unsubscribe(self, room: str) -> None:
        return None

    async def since(self, room: str, last_seq: int) -> tuple[list[Envelope] | None, int]:
        return history_since(self._history.get(room, ()), last_seq, self._seq.get(room, 0), self._max_age)

    async def current(self, room: str) -> int:
        return self._seq.get(room, 0)

    def follows(self, room: str) -> bool:
        return True  # one worker: every event of every room is published here


def history_since(hist, last_seq: int, current: int, max_age: float) -> tuple[list[Envelope] | None, int]:
    if last_seq > current or last_seq < 0:
        return None, current
    if last_seq == current:
        return [], current
    items = [e for e in hist if last_seq < e.seq <= current]
    if (not items or items[0].seq != last_seq + 1 or len(items) != current - last_seq
            or items[0].ts < time.time() - max_age):
        return None, current  # a gap: part of what was missed is gone (trimmed, or never in the history)
    return collapse(items), current


def collapse(items: list[Envelope]) -> list[Envelope]:
    """Keep every event, except that of events sharing a latest_key only the newest stays."""
    newest = {e.latest_key: e.seq for e in items if e.latest_key is not None}
    if not newest:
        return items
    return [e for e in items if e.latest_key is None or newest[e.latest_key] == e.seq]
