"""Live availability on this worker, and the queue that sends a variant's cart changes to the database together.

StockBoard: a variant's latest known availability is kept in memory for HINT_SECONDS so that, in a flash sale,
buyers arriving after the last unit are answered `out_of_stock` without touching the database; any
availability this worker learns (a sale, a release, an expiry, a seller's adjustment) replaces it at once, and
it expires after HINT_SECONDS anyway (changes made by another worker). Only refusals come from it, never a
success. Every newer value is told to the listener (the rooms' stock:update).

Batches: the changes of one key (a variant) that arrive while an earlier call for it is at the database wait
here, in order, holding no pooled connection, and go together in the next call. So a flash sale is a few
round trips instead of one per buyer, and the rows the database locks are held by one transaction at a time
per worker instead of queued there."""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Awaitable, Callable, Generic, Sequence, TypeVar

from db.inventory import StockLevel
from live.errors import DomainError
from live.logging import get_logger

log = get_logger("live.commerce.stock")
HINT_SECONDS = 1.0
MAX_BATCH = 500

StockListener = Callable[[str, int], Awaitable[None]]
T = TypeVar("T")
R = TypeVar("R")


def out_of_stock(available: int | None) -> DomainError:
    if not available or available <= 0:
        return DomainError("out_of_stock", "sold out")
    return DomainError("out_of_stock", f"only {available} left")


class StockBoard:
    """What this worker knows of each variant's availability: the newest version it has seen, a short-lived
    hint used only to refuse, and the listener (the rooms' stock:update) told of every newer value."""

    def __init__(self, listener: StockListener | None = None):
        self.listener = listener
        self._known: dict[str, tuple[int, int, float]] = {}  # variant -> (version, available, hint until)

    def refuses(self, variant_id: str, qty: int) -> int | None:
        """The known availability when it is fresh and below qty (answer out_of_stock), else None."""
        known = self._known.get(variant_id)
        if known is not None and known[1] < qty and known[2] > time.monotonic():
            return known[1]
        return None

    async def seen(self, levels: list[StockLevel]) -> None:
        """Record availabilities read from committed changes; publish the ones newer than what we had."""
        for level in levels:
            known = self._known.get(level.variant_id)
            if known is not None and known[0] >= level.version:
                continue  # an older result reaching us late: never publish it over a newer one
            self._known[level.variant_id] = (level.version, level.available, time.monotonic() + HINT_SECONDS)
            if known is not None and known[1] == level.available:
                continue
            if self.listener is not None:
                try:
                    await self.listener(level.variant_id, level.available)
                except Exception:
                    log.exception("stock_listener_failed", variant_id=level.variant_id)

    def forget(self) -> None:
        self._known.clear()


class Batches(Generic[T, R]):
    """Per key, one call of `run(key, items)` at a time; items submitted meanwhile wait in arrival order and
    go together in the next call (at most `max_batch` per call). `screen(key, item)` may answer an item
    without the database when its turn comes (None sends it on). When a call of several items raises, it is
    split in halves that run again in order, each screened again first, down to single items: one bad item
    fails only its own caller and costs about 2 log2(n) calls more, not n (a change by a user who no longer
    exists in a flash sale's batch of 500: ~18 statements); a failure of every item costs at most 2n - 1."""

    def __init__(self, run: Callable[[str, list[T]], Awaitable[Sequence[R]]],
                 screen: Callable[[str, T], R | None] | None = None, max_batch: int = MAX_BATCH):
        self._run, self._screen, self.max_batch = run, screen, max_batch
        self._queues: dict[str, deque[tuple[T, asyncio.Future]]] = {}
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, key: str, item: T) -> R:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            task = asyncio.get_running_loop().create_task(self._drain(key, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queue.append((item, fut))
        return await fut

    async def _drain(self, key: str, queue: deque) -> None:
        try:
            while queue:
                batch = self._take(key, queue)
                if batch:
                    await self._call(key, batch)
        finally:
            del self._queues[key]
            for _item, fut in queue:  # only when cancelled (shutdown)
                fut.cancel()

    def _take(self, key: str, queue: deque) -> list[tuple[T, asyncio.Future]]:
        batch = []
        while queue and len(batch) < self.max_batch:
            item, fut = queue.popleft()
            if self._needs_call(key, item, fut):
                batch.append((item, fut))
        return batch

    def _needs_call(self, key: str, item: T, fut: asyncio.Future) -> bool:
        """False when the item is settled without a call: its caller gave up (cancelled), or the screen
        answered it (or raised: its caller gets the error, the others go on)."""
        if fut.done():
            return False
        try:
            answer = self._screen(key, item) if self._screen is not None else None
        except Exception as exc:
            fut.set_exception(exc)
            return False
        if answer is None:
            return True
        fut.set_result(answer)
        return False

    async def _call(self, key: str, batch: list[tuple[T, asyncio.Future]], *, first: bool = True) -> None:
        try:
            results = await self._run(key, [item for item, _ in batch])
        except asyncio.CancelledError:
            for _item, fut in batch:
                fut.cancel()
            raise
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            if first:
                log.warning("batch_failed_splitting", key=key, items=len(batch), error=repr(exc))
            half = len(batch) // 2
            for part in (batch[:half], batch[half:]):
                part = [(item, fut) for item, fut in part if self._needs_call(key, item, fut)]
                if part:
                    await self._call(key, part, first=False)
            return
        for (_item, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
