"""Local fan-out: which sockets of this worker are in which room, and delivery by a rolling, sliced sweep.

A room's members are kept in slices of at most `SLICE` sockets, each with a cursor into the room's short log of
events. One timer per busy room writes the next slice that is behind: everything it has not had yet, coalesced
into one buffer written with one `transport.write` per socket. After a slice's writes, the room waits in
proportion to what they cost, so a busy room spends at most `BUDGET` of the worker on its writes and the loop
reads chat, acks and pongs between slices. An event waits for its slice's turn: at most one sweep of the room
(about the room's write cost / `BUDGET`), where a whole-room flush made it wait for the rest of one flush, a tick
and its place in the next. A room whose slices are all up to date holds no timer; its next event goes out at once.
Events that carry a `latest_key` (counts, reactions, stock) keep only their newest value within a write.
A socket that opted into batched events (`LeanSocket.batched`) gets a write of several events as one
`42["batch",[[name, data], ...]]` frame; everyone else gets one frame per event. A socket that agreed on
permessage-deflate gets those frames compressed: each event's frame once per worker (`Envelope.deflated`), a
batch once per cursor, so compression costs per write of a slice, not per viewer.
"""
from __future__ import annotations

import asyncio
import time

from live.rooms.broker import Envelope, collapse
from live.rooms.transport import BATCHED, DEFLATE, MAX_PENDING_BYTES, LeanSocket
from live.rooms.wsframes import deflated_frame, text_frame

SLICE = 512  # sockets written in one go: about 3-8 ms of writes, after which the loop reads again
BUDGET = 0.5  # default share of the worker a busy room's writes may take (HUB_BUDGET)
MAX_SWEEP = 0.25  # default: a room's sweep takes at most this long (s), even if writes cost more (HUB_MAX_SWEEP_MS)
MAX_POLLING_QUEUE = 500
BATCH_HEAD, BATCH_TAIL = b'42["batch",[', b"]]"


class Slice:
    __slots__ = ("members", "cursor")

    def __init__(self, cursor: int):
        self.members: dict[str, LeanSocket] = {}
        self.cursor = cursor  # index (since the room began) of the first log entry this slice has not had


class Room:
    __slots__ = ("name", "members", "slices", "where", "floors", "log", "base", "turn", "handle", "ready_at",
                 "audience", "buffers")

    def __init__(self, name: str):
        self.name = name
        self.members: dict[str, LeanSocket] = {}
        self.slices: list[Slice] = []
        self.where: dict[str, Slice] = {}
        self.floors: dict[str, int] = {}  # sid -> highest seq it already has (joined with events unsent)
        self.log: list[Envelope] = []  # the events some slice has not had yet
        self.base = 0  # index of log[0]
        self.turn = 0  # the slice whose turn is next
        self.handle: asyncio.Handle | None = None
        self.ready_at = 0.0  # monotonic time before which the next slice waits (its budget)
        self.audience = 0  # viewers on all workers (presence), 0 until known
        self.buffers: dict[int, list] = {}  # cursor -> [events, write of each socket mode], for the current log end

    @property
    def end(self) -> int:
        return self.base + len(self.log)


def _frames(items: list[Envelope], mode: int) -> bytes:
    """The write of `items` for a socket of `mode` (`LeanSocket.mode`: BATCHED and DEFLATE bits)."""
    if mode & BATCHED and len(items) > 1:
        payload = BATCH_HEAD + b",".join(e.packet[2:] for e in items) + BATCH_TAIL
        return deflated_frame(payload) if mode & DEFLATE else text_frame(payload)
    if not mode & DEFLATE:
        return b"".join(text_frame(e.packet) for e in items)
    for e in items:
        if e.deflated is None:
            e.deflated = deflated_frame(e.packet)
    return b"".join(e.deflated for e in items)


class Hub:
    def __init__(self, budget: float = BUDGET, max_sweep: float = MAX_SWEEP):
        self.budget, self.max_sweep = budget, max_sweep
        self.rooms: dict[str, Room] = {}
        # live/metrics.py exports them; write_seconds: wall time of slice writes
        self.stats = {"flushes": 0, "frames": 0, "writes": 0, "bytes": 0, "write_seconds": 0.0, "dropped": 0}

    def timers(self) -> int:
        """Rooms holding a timer (busy rooms): at most one each, none for an idle room."""
        return sum(1 for r in self.rooms.values() if r.handle is not None)

    def add(self, room_name: str, sid: str, sock: LeanSocket, floor_seq: int) -> None:
        room = self.rooms.get(room_name)
        if room is None:
            room = self.rooms[room_name] = Room(room_name)
        if sid in room.where:  # joined again (two joins of one socket racing): one slice only
            self._forget(room, sid)
        last = next((s for s in reversed(room.slices) if len(s.members) < SLICE), None)  # refill before adding
        if last is None:
            cursor = room.end  # a new slice starts after what the joiner has (the log is in seq order)
            while cursor > room.base and room.log[cursor - 1 - room.base].seq > floor_seq:
                cursor -= 1
            last = Slice(cursor)
            room.slices.append(last)
        elif last.cursor < room.end and room.log[last.cursor - room.base].seq <= floor_seq:
            room.floors[sid] = floor_seq  # its slice has events unsent that the joiner has already
        last.members[sid] = sock
        room.where[sid] = last
        room.members[sid] = sock

    def remove(self, room_name: str, sid: str) -> bool:
        """Remove a socket; True when the room has no local member left."""
        room = self.rooms.get(room_name)
        if room is None:
            return True
        self._forget(room, sid)
        if not room.members:
            if room.handle is not None:
                room.handle.cancel()
            for e in room.log:
                e.deflated = None
            del self.rooms[room_name]
            return True
        return False

    def _forget(self, room: Room, sid: str) -> None:
        room.members.pop(sid, None)
        room.floors.pop(sid, None)
        sl = room.where.pop(sid, None)
        if sl is None:
            return
        sl.members.pop(sid, None)
        if not sl.members:
            i = room.slices.index(sl)
            del room.slices[i]
            if room.turn > i:
                room.turn -= 1

    def set_audience(self, room_name: str, viewers: int) -> None:
        """The room's viewers on all workers. A worker holding a share of a room would sweep it faster than
        one holding all of it, coalescing fewer events per write at a higher CPU cost per delivery; its budget is
        divided by its share (2 workers: each spends BUDGET/2), so the sweep takes as long as on one worker."""
        room = self.rooms.get(room_name)
        if room is not None:
            room.audience = viewers

    def local_count(self, room_name: str) -> int:
        room = self.rooms.get(room_name)
        return len(room.members) if room else 0

    def deliver(self, room_name: str, env: Envelope) -> None:
        room = self.rooms.get(room_name)
        if room is None:
            return
        room.log.append(env)
        room.buffers.clear()
        if room.handle is None:
            loop = asyncio.get_running_loop()
            wait = room.ready_at - time.monotonic()
            room.handle = loop.call_soon(self._step, room) if wait <= 0 else loop.call_later(wait, self._step, room)

    def _step(self, room: Room) -> None:
        """Write the next slice that is behind, then wait its budget before the next one (or hold no timer)."""
        room.handle = None
        slices, end = room.slices, room.end
        n = len(slices)
        sl = None
        for k in range(n):
            i = (room.turn + k) % n
            if slices[i].cursor < end:
                sl, room.turn = slices[i], (i + 1) % n
                break
        if sl is None:
            return
        started = time.monotonic()
        written = self._write(room, sl, end)
        finished = time.monotonic()
        cost = finished - started
        stats = self.stats
        stats["flushes"] += 1
        stats["writes"] += written
        stats["write_seconds"] += cost
        share = max(1.0, room.audience / len(room.members)) if room.members else 1.0
        wait = cost * (share / self.budget - 1.0)
        if slices:  # a sweep never takes longer than max_sweep
            wait = min(wait, max(0.0, self.max_sweep / len(slices) - cost))
        room.ready_at = finished + wait
        low = min((s.cursor for s in slices), default=end)
        if low > room.base:
            for e in room.log[:low - room.base]:
                e.deflated = None  # the broker's history keeps the event for recovery, not its compressed frame
            del room.log[:low - room.base]
            room.base = low
        if room.log:
            room.handle = asyncio.get_running_loop().call_later(wait, self._step, room)

    def _write(self, room: Room, sl: Slice, end: int) -> int:
        cursor = sl.cursor
        sl.cursor = end
        cached = room.buffers.get(cursor)  # slices at the same cursor share the events and their writes
        if cached is None:
            items = room.log[cursor - room.base:]
            if len(items) > 1:
                items = collapse(items)
            cached = room.buffers[cursor] = [items, _frames(items, 0), None, None, None]
            self.stats["frames"] += len(items)
        items, plain = cached[0], cached[1]
        floors = room.floors
        count = len(sl.members)
        slow: list[tuple[str, LeanSocket]] = []
        nplain = 0
        other = 0
        # the hot loop: LeanSocket.write_raw inlined; anything unusual (polling, closing, a backlog near the cap,
        # a viewer that joined with events unsent) takes the slow path below
        for sid, sock in sl.members.items():
            transport = sock.transport
            if transport is None or (floors and sid in floors) or transport.is_closing() \
                    or transport.get_write_buffer_size() > MAX_PENDING_BYTES:
                slow.append((sid, sock))
            elif mode := sock.mode:  # batched, compressed or both: one write of the mode's own, made once a cursor
                data = cached[1 + mode]
                if data is None:
                    data = cached[1 + mode] = _frames(items, mode)
                transport.write(data)
                other += len(data)
            else:
                transport.write(plain)
                nplain += 1
        self.stats["bytes"] += nplain * len(plain) + other
        for sid, sock in slow:
            self._slow_path(room, sid, sock, items)
        return count

    def _slow_path(self, room: Room, sid: str, sock: LeanSocket, items: list[Envelope]) -> None:
        floor = room.floors.pop(sid, None)
        if floor is not None:
            items = [e for e in items if e.seq > floor]
        if sock.transport is not None:
            if items and not sock.write_raw(_frames(items, sock.mode)):
                self._drop(room, sid, sock)
            return
        if sock.closed or sock.closing or sock.dropped:
            self._drop(room, sid, sock)
            return
        if sock.queue.qsize() > MAX_POLLING_QUEUE:  # a long-polling client that stopped polling
            sock.dropped = True
            self._drop(room, sid, sock)
            asyncio.get_running_loop().create_task(sock.close(wait=False, abort=True))
            return
        for e in items:
            sock.push(e.packet)

    def _drop(self, room: Room, sid: str, sock: LeanSocket) -> None:
        self._forget(room, sid)
        if sock.dropped:
            self.stats["dropped"] += 1
