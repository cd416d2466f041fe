"""The per-key queue behind the flash sale (live/commerce/stock.py, Batches), on its own: what waits together goes
together, in order; screened items never reach the call; a failing batch is retried item by item; a caller that
gave up is skipped."""
from __future__ import annotations

import asyncio

import pytest

from live.commerce.stock import Batches


class Recorder:
    def __init__(self, gate: asyncio.Event | None = None, bad: set | None = None):
        self.calls: list[tuple[str, list]] = []
        self.gate, self.bad = gate, bad or set()

    async def run(self, key: str, items: list) -> list:
        self.calls.append((key, list(items)))
        if self.gate is not None:
            await self.gate.wait()
        if self.bad & set(items):
            raise ValueError(f"bad item among {items}")
        return [f"{key}:{i}" for i in items]


async def test_items_waiting_together_go_in_one_call_in_order():
    gate = asyncio.Event()
    rec = Recorder(gate)
    batches = Batches(rec.run, max_batch=3)
    first = asyncio.ensure_future(batches.submit("v", 0))
    await asyncio.sleep(0)  # the first call starts with item 0 alone
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batches.submit("v", i)) for i in range(1, 6)]
    other = asyncio.ensure_future(batches.submit("w", 9))  # another key does not wait for "v"
    await asyncio.sleep(0.01)
    gate.set()
    assert await first == "v:0"
    assert await asyncio.gather(*rest) == [f"v:{i}" for i in range(1, 6)]
    assert await other == "w:9"
    assert [c for c in rec.calls if c[0] == "v"] == [("v", [0]), ("v", [1, 2, 3]), ("v", [4, 5])]
    assert batches._queues == {}  # nothing left behind


async def test_screened_items_are_answered_without_the_call():
    rec = Recorder()
    batches = Batches(rec.run, screen=lambda key, item: "refused" if item % 2 else None)
    results = await asyncio.gather(*[batches.submit("v", i) for i in range(6)])
    assert results == ["v:0", "refused", "v:2", "refused", "v:4", "refused"]
    assert all(i % 2 == 0 for _key, items in rec.calls for i in items)


async def test_a_failing_batch_is_retried_item_by_item():
    rec = Recorder(bad={3})
    batches = Batches(rec.run)
    results = await asyncio.gather(*[batches.submit("v", i) for i in range(5)], return_exceptions=True)
    assert results[:3] == ["v:0", "v:1", "v:2"] and results[4] == "v:4"
    assert isinstance(results[3], ValueError)
    assert ("v", [3]) in rec.calls and any(len(items) > 1 for _key, items in rec.calls)


async def test_a_caller_that_gave_up_is_skipped():
    gate = asyncio.Event()
    rec = Recorder(gate)
    batches = Batches(rec.run)
    first = asyncio.ensure_future(batches.submit("v", 0))
    await asyncio.sleep(0.01)
    gone = asyncio.ensure_future(batches.submit("v", 1))
    kept = asyncio.ensure_future(batches.submit("v", 2))
    await asyncio.sleep(0)
    gone.cancel()
    gate.set()
    assert await first == "v:0" and await kept == "v:2"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert rec.calls == [("v", [0]), ("v", [2])]


async def test_stop_cancels_what_waits():
    gate = asyncio.Event()
    batches = Batches(Recorder(gate).run)
    waiting = [asyncio.ensure_future(batches.submit("v", i)) for i in range(3)]
    await asyncio.sleep(0.01)
    await batches.stop()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
