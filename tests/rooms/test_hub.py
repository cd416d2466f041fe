"""The hub's rolling, sliced sweep, with recording transports: every socket gets every event once and in order,
a joiner gets only what it does not have, a busy room holds one timer and an idle room none, batched sockets get
one frame per write, and a socket that stops reading is cut. (Real sockets: tests/rooms/test_rooms_*.py.)"""
from __future__ import annotations

import asyncio
import zlib

import orjson

from live.rooms import hub as hubmod
from live.rooms.broker import Envelope
from live.rooms.hub import Hub
from live.rooms.packets import encode_event
from live.rooms.transport import MAX_PENDING_BYTES, LeanSocket


class Recorder(asyncio.Transport):
    def __init__(self, backlog: int = 0):
        super().__init__()
        self.data = bytearray()
        self.writes = 0
        self.backlog = backlog
        self.aborted = False

    def write(self, data) -> None:
        self.data += data
        self.writes += 1

    def is_closing(self) -> bool:
        return self.aborted

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def abort(self) -> None:
        self.aborted = True

    def events(self) -> list[list]:
        """The [name, data] events written, batches unpacked, in order."""
        out: list[list] = []
        for payload in self.frames():
            name, data = orjson.loads(payload[2:])
            out.extend(data if name == "batch" else [[name, data]])
        return out

    def frames(self) -> list[bytes]:
        """The payloads of the server's (unmasked, final, text) frames, compressed ones inflated."""
        out, buf, i = [], bytes(self.data), 0
        self.compressed = 0
        while i < len(buf):
            assert buf[i] in (0x81, 0xC1)  # final text frames; RSV1: permessage-deflate
            rsv1 = buf[i] == 0xC1
            n, i = buf[i + 1], i + 2
            if n == 126:
                n, i = int.from_bytes(buf[i:i + 2], "big"), i + 2
            elif n == 127:
                n, i = int.from_bytes(buf[i:i + 8], "big"), i + 8
            payload = buf[i:i + n]
            if rsv1:
                payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
                self.compressed += 1
            out.append(payload)
            i += n
        return out


def sock(sid: str, batched: bool = False, backlog: int = 0, deflate: bool = False) -> LeanSocket:
    s = LeanSocket.for_websocket(None, sid, Recorder(backlog))
    s.batched, s.deflate = batched, deflate
    return s


class Seq:
    def __init__(self):
        self.n = 0

    def __call__(self, event: str = "chat:new", latest: str | None = None, **data) -> Envelope:
        self.n += 1
        return Envelope(self.n, event, encode_event(event, {"seq": self.n, **data}), latest, 0.0)


async def drain(hub: Hub, room: str = "r", seconds: float = 5.0) -> None:
    """Until the room's sweep has caught up (no timer left)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while hub.rooms[room].handle is not None:
        assert asyncio.get_running_loop().time() < deadline, "the sweep never caught up"
        await asyncio.sleep(0.001)


def seqs(s: LeanSocket) -> list[int]:
    return [d["seq"] for _n, d in s.transport.events()]


async def test_every_socket_gets_every_event_once_in_order_across_slices(monkeypatch):
    monkeypatch.setattr(hubmod, "SLICE", 7)
    hub, seq = Hub(), Seq()
    socks = [sock(f"s{i}", batched=i % 3 == 0) for i in range(50)]
    for s in socks:
        hub.add("r", s.sid, s, 0)
    assert len(hub.rooms["r"].slices) == 8
    for burst in range(20):
        for _ in range(burst % 4 + 1):
            hub.deliver("r", seq())
        await asyncio.sleep(0.0005 * (burst % 3))
    await drain(hub)
    for s in socks:
        assert seqs(s) == list(range(1, seq.n + 1)), s.sid
    room = hub.rooms["r"]
    assert room.log == [] and all(sl.cursor == room.end for sl in room.slices)
    assert hub.stats["writes"] == sum(s.transport.writes for s in socks)


async def test_each_mode_gets_its_own_write_made_once_per_cursor_and_events_compressed_once(monkeypatch):
    """Plain, batched, compressed and batched-compressed sockets in the same slices: every event once and in
    order for each; compressed sockets get RSV1 frames; an event's compressed frame is made once for all, and
    dropped with the event from the room's log."""
    monkeypatch.setattr(hubmod, "SLICE", 5)
    hub, seq = Hub(), Seq()
    socks = [sock(f"s{i}", batched=bool(i & 1), deflate=bool(i & 2)) for i in range(20)]
    for s in socks:
        hub.add("r", s.sid, s, 0)
    made = []
    real = hubmod.deflated_frame
    monkeypatch.setattr(hubmod, "deflated_frame", lambda payload: made.append(payload) or real(payload))
    sent = []
    for burst in range(12):
        for _ in range(burst % 3 + 1):
            sent.append(seq(text=f"message {seq.n + 1}: " + "is the red one in stock? " * 6))
            hub.deliver("r", sent[-1])
        await asyncio.sleep(0.0005 * (burst % 2))
    await drain(hub)
    for s in socks:
        assert seqs(s) == list(range(1, seq.n + 1)), s.sid
        assert (s.transport.compressed > 0) == s.deflate, s.sid
    singles = [p for p in made if not p.startswith(hubmod.BATCH_HEAD)]
    assert singles and len(singles) == len(set(singles))  # an event's compressed frame is made once for all
    assert all(e.deflated is None for e in sent)  # and let go once every slice has had the event
    assert hub.stats["bytes"] == sum(len(s.transport.data) for s in socks)


async def test_an_idle_room_holds_no_timer_and_delivers_at_once_a_busy_one_holds_one():
    hub, seq = Hub(), Seq()
    s = sock("a")
    hub.add("r", "a", s, 0)
    assert hub.timers() == 0
    hub.deliver("r", seq())
    hub.deliver("r", seq())
    assert hub.timers() == 1  # two events, one timer
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert seqs(s) == [1, 2] and s.transport.writes == 1  # coalesced into one write, next loop turn
    await drain(hub)
    assert hub.timers() == 0


async def test_201_busy_rooms_hold_at_most_one_timer_each_and_none_once_idle(monkeypatch):
    monkeypatch.setattr(hubmod, "SLICE", 16)
    hub, seq = Hub(), Seq()
    members = {}
    for r in range(201):
        members[f"r{r}"] = [sock(f"r{r}-{i}") for i in range(40 if r == 0 else 3)]
        for s in members[f"r{r}"]:
            hub.add(f"r{r}", s.sid, s, 0)
    scheduled = []
    loop = asyncio.get_running_loop()
    real_soon, real_later = loop.call_soon, loop.call_later

    def count(real):
        def call(*args, **kw):
            fn = args[0] if callable(args[0]) else args[1]  # call_soon(fn, room) or call_later(delay, fn, room)
            if getattr(fn, "__self__", None) is hub:
                scheduled.append(args[-1])
            return real(*args, **kw)
        return call

    monkeypatch.setattr(loop, "call_soon", count(real_soon))
    monkeypatch.setattr(loop, "call_later", count(real_later))
    for _ in range(3):
        scheduled.clear()
        busy = hub.timers()  # rooms still sweeping from the last round keep their timer
        for r in range(201):
            hub.deliver(f"r{r}", seq())
            hub.deliver(f"r{r}", seq())  # a second event while the timer is set: no second timer
        assert len(scheduled) == len({id(room) for room in scheduled}) == 201 - busy
        assert hub.timers() == 201
        await asyncio.sleep(0.002)
    for r in range(201):
        await drain(hub, f"r{r}")
    assert hub.timers() == 0 and all(not room.log for room in hub.rooms.values())  # idle: no timer, no log
    for r in range(201):
        for s in members[f"r{r}"]:
            assert len(seqs(s)) == 6, s.sid


async def test_a_joiner_gets_only_the_events_after_its_snapshot(monkeypatch):
    monkeypatch.setattr(hubmod, "SLICE", 2)
    hub, seq = Hub(), Seq()
    old = [sock("o1"), sock("o2")]  # one full slice
    for s in old:
        hub.add("r", s.sid, s, 0)
    hub.deliver("r", seq())
    hub.deliver("r", seq())
    late = sock("late")  # a new slice: starts after seq 2, which its join snapshot had
    hub.add("r", "late", late, 2)
    hub.deliver("r", seq())
    await drain(hub)
    assert seqs(old[0]) == [1, 2, 3] and seqs(late) == [3]
    # a joiner into a slice that is behind gets a floor: what the slice had not had, minus what it has
    third = sock("third")
    hub.add("r", "third", third, 3)  # the slice of "late", up to date: no floor needed
    hub.deliver("r", seq())
    hub.deliver("r", seq())
    await asyncio.sleep(0)
    fourth = sock("fourth")
    hub.add("r", "fourth", fourth, 5)  # joins slice 3 (new) after seq 5
    await drain(hub)
    assert seqs(third) == [4, 5] and seqs(fourth) == []
    hub.deliver("r", seq())
    await drain(hub)
    assert seqs(fourth) == [6] and seqs(late) == [3, 4, 5, 6]


async def test_a_joiner_into_a_slice_that_is_behind_skips_what_its_snapshot_had(monkeypatch):
    monkeypatch.setattr(hubmod, "SLICE", 3)
    hub, seq = Hub(), Seq()
    a = sock("a")
    hub.add("r", "a", a, 0)
    hub.deliver("r", seq())  # written on the next loop turn: slice of a is behind until then
    hub.deliver("r", seq())
    b = sock("b")
    hub.add("r", "b", b, 2)  # same slice, its snapshot has 1 and 2
    hub.deliver("r", seq())
    await drain(hub)
    assert seqs(a) == [1, 2, 3] and seqs(b) == [3]
    assert hub.rooms["r"].floors == {}


async def test_latest_value_events_collapse_within_a_write_chat_never_does():
    hub, seq = Hub(), Seq()
    s = sock("a")
    hub.add("r", "a", s, 0)
    hub.deliver("r", seq("viewer:count", latest="count", n=1))
    hub.deliver("r", seq("chat:new"))
    hub.deliver("r", seq("viewer:count", latest="count", n=2))
    hub.deliver("r", seq("chat:new"))
    await drain(hub)
    assert [(n, d.get("n")) for n, d in s.transport.events()] == \
        [("chat:new", None), ("viewer:count", 2), ("chat:new", None)]


async def test_batched_sockets_get_one_frame_per_write_plain_ones_one_per_event():
    hub, seq = Hub(), Seq()
    plain, batched = sock("p"), sock("b", batched=True)
    hub.add("r", "p", plain, 0)
    hub.add("r", "b", batched, 0)
    for _ in range(5):
        hub.deliver("r", seq())
    await drain(hub)
    assert len(batched.transport.frames()) == 1 and batched.transport.frames()[0].startswith(b'42["batch",[')
    assert len(plain.transport.frames()) == 5 and all(b"batch" not in f for f in plain.transport.frames())
    assert seqs(plain) == seqs(batched) == [1, 2, 3, 4, 5]
    hub.deliver("r", seq())  # one event goes out plain even to a batched socket
    await drain(hub)
    assert batched.transport.frames()[-1].startswith(b'42["chat:new"')


async def test_a_socket_over_the_backlog_cap_is_cut_and_the_others_go_on(monkeypatch):
    monkeypatch.setattr(hubmod, "SLICE", 2)
    hub, seq = Hub(), Seq()
    good = [sock("g1"), sock("g2"), sock("g3")]
    stuck = sock("stuck", backlog=MAX_PENDING_BYTES + 1)
    for s in [*good[:1], stuck, *good[1:]]:
        hub.add("r", s.sid, s, 0)
    hub.deliver("r", seq())
    await drain(hub)
    assert stuck.dropped and stuck.transport is None and hub.stats["dropped"] == 1
    assert "stuck" not in hub.rooms["r"].members and "stuck" not in hub.rooms["r"].where
    hub.deliver("r", seq())
    await drain(hub)
    assert all(seqs(s) == [1, 2] for s in good)


async def test_leaving_empties_slices_and_the_last_member_removes_the_room(monkeypatch):
    monkeypatch.setattr(hubmod, "SLICE", 2)
    hub, seq = Hub(), Seq()
    socks = [sock(f"s{i}") for i in range(5)]
    for s in socks:
        hub.add("r", s.sid, s, 0)
    hub.deliver("r", seq())
    for s in socks[:4]:
        assert hub.remove("r", s.sid) is False
    assert len(hub.rooms["r"].slices) == 1
    await drain(hub)
    assert seqs(socks[4]) == [1]
    hub.deliver("r", seq())
    assert hub.remove("r", "s4") is True and "r" not in hub.rooms and hub.timers() == 0
    await asyncio.sleep(0.01)  # the cancelled timer never fires


async def test_a_busy_room_waits_in_proportion_to_its_writes(monkeypatch):
    """The budget: after a slice's writes the next slice waits cost x (share / BUDGET - 1)."""
    monkeypatch.setattr(hubmod, "SLICE", 2)
    clock = [100.0]
    monkeypatch.setattr(hubmod.time, "monotonic", lambda: clock[0])
    hub, seq = Hub(), Seq()
    socks = [sock(f"s{i}") for i in range(4)]
    for s in socks:
        hub.add("r", s.sid, s, 0)
        s.transport.write = lambda data, t=s.transport: (clock.__setitem__(0, clock[0] + 0.001),
                                                        Recorder.write(t, data))
    hub.set_audience("r", 8)  # half the room is on another worker: share 2
    hub.deliver("r", seq())
    room = hub.rooms["r"]
    hub._step(room)
    assert abs(room.ready_at - (100.002 + 0.002 * (2 / hubmod.BUDGET - 1))) < 1e-9
    assert room.handle is not None  # the second slice is still behind
    room.handle.cancel()


async def test_a_joiner_in_a_new_slice_gets_the_events_after_its_snapshot_already_logged(monkeypatch):
    """Defensive: were an event past the joiner's snapshot seq logged before it joins, a new slice starts before it
    (RedisBroker.current answers the seq delivered so far, so today the log holds nothing past the snapshot)."""
    monkeypatch.setattr(hubmod, "SLICE", 1)
    hub, seq = Hub(), Seq()
    a = sock("a")
    hub.add("r", "a", a, 0)
    for _ in range(3):
        hub.deliver("r", seq())
    b = sock("b")
    hub.add("r", "b", b, 1)  # its snapshot had seq 1; 2 and 3 are logged, unsent to its new slice
    await drain(hub)
    assert seqs(a) == [1, 2, 3] and seqs(b) == [2, 3]


async def test_a_socket_joined_twice_is_in_one_slice_and_gone_once_it_leaves(monkeypatch):
    monkeypatch.setattr(hubmod, "SLICE", 2)
    hub, seq = Hub(), Seq()
    a, b = sock("a"), sock("b")
    hub.add("r", "a", a, 0)
    hub.add("r", "b", b, 0)  # the first slice is full
    hub.add("r", "a", a, 0)  # two joins of one socket racing
    assert sum("a" in sl.members for sl in hub.rooms["r"].slices) == 1
    hub.deliver("r", seq())
    await drain(hub)
    assert seqs(a) == [1]
    hub.remove("r", "a")
    hub.deliver("r", seq())
    await drain(hub)
    assert seqs(a) == [1] and seqs(b) == [1, 2]


async def test_joiners_refill_slices_left_part_empty(monkeypatch):
    monkeypatch.setattr(hubmod, "SLICE", 4)
    hub = Hub()
    for i in range(12):
        hub.add("r", f"s{i}", sock(f"s{i}"), 0)
    for turn in range(5):  # viewers come and go: the slices stay as few as the members need
        for i in range(0, 12, 2):
            hub.remove("r", f"s{i}")
            hub.add("r", f"s{i}", sock(f"s{i}"), 0)
    assert len(hub.rooms["r"].slices) == 3


async def test_one_slice_on_a_worker_holding_a_sliver_of_a_big_room_waits_at_most_a_sweep(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(hubmod.time, "monotonic", lambda: clock[0])
    hub, seq = Hub(), Seq()
    s = sock("a")
    s.transport.write = lambda data, t=s.transport: (clock.__setitem__(0, clock[0] + 0.001), Recorder.write(t, data))
    hub.add("r", "a", s, 0)
    hub.set_audience("r", 20000)  # share 20,000: the budget alone would wait 40 s
    hub.deliver("r", seq())
    room = hub.rooms["r"]
    room.handle.cancel()
    hub._step(room)
    assert room.ready_at - clock[0] <= hub.max_sweep
