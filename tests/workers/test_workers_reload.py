"""A worker reading a stream's row again because another worker changed it (the broker's control message,
RoomService.reload_soon), while that other worker goes on changing it. Played in one process: the other worker's
doings are a row update in the database, its room event and its control message; the read is held between
reading the row and storing it, which is where a loaded machine can pause it."""
from __future__ import annotations

import asyncio

from db import streams as streams_db
from live.auth.principal import SYSTEM
from tests.rooms.harness import err


async def test_a_row_read_in_flight_neither_undoes_newer_events_nor_absorbs_a_newer_change(live, monkeypatch):
    rooms = live.services.rooms
    state = await live.demo_state()
    title = state.title
    viewer = await live.viewer("reload-chatter")
    reads: list[tuple[int, str]] = []
    first_read, release = asyncio.Event(), asyncio.Event()
    fetch = rooms.streams._fetch

    async def held_fetch(id_or_slug: str):
        fresh = await fetch(id_or_slug)
        reads.append((fresh.slow_mode, fresh.title))
        if len(reads) == 1:  # the first read has the row, and stalls before storing it
            first_read.set()
            await release.wait()
        return fresh

    monkeypatch.setattr(rooms.streams, "_fetch", held_fetch)

    async def other_worker_changes(seconds: int, **row) -> None:
        async with live.services.db.tx(SYSTEM) as conn:
            await streams_db.update(conn, state.id, {"slow_mode_seconds": seconds, **row})
        await rooms.publish(state, "chat:slowmode", {"stream_id": state.id, "seconds": seconds})

    await other_worker_changes(30)
    reading = rooms.reload_soon(state.id)
    await asyncio.wait_for(first_read.wait(), 10)
    assert reads == [(30, title)]
    await other_worker_changes(0, title="Renamed while reading")  # slow mode off again a moment later
    assert state.slow_mode == 0  # the event is applied at once...
    assert rooms.reload_soon(state.id) is reading  # ...and the control message comes while the read is held
    release.set()
    await asyncio.wait_for(reading, 10)
    assert reads == [(30, title), (0, "Renamed while reading")]  # the row was read again after the change
    assert state.slow_mode == 0 and state.title == "Renamed while reading"
    assert err(await viewer.say("first")) is None
    assert err(await viewer.say("second, at once")) is None  # slow mode is off on this worker too
