"""The garbage collector's pauses, kept out of bursts.

CPython's cyclic collector stops the event loop while it runs, and a full (generation 2) collection walks
every tracked object. With thousands of sockets and a burst of pending requests (a flash sale's 5,000 waiting
cart:adds are ~250,000 objects) the default thresholds (700, 10, 10) ran three full collections inside the
burst, 100-190 ms each: more than half of the time to the last ack (measured, docs/benchmarks.md).

When a worker starts serving, `settle()`:
  * collects once and freezes what exists (modules, the app, the pools: ~100,000 objects that live as long as
    the process), so no later collection walks them again;
  * raises the thresholds (GC_THRESHOLDS, default 10000,20,100): a young collection every 10,000 net
    allocations instead of 700 (most request objects die young, by reference counting, before it), and a
    full one after 100 middle ones instead of 10 (CPython also waits until a quarter of the old objects are
    new). Cyclic garbage waits longer to be freed; the memory per connection is measured in the join storm.
GC_THRESHOLDS=default keeps Python's thresholds (the freeze still happens)."""
from __future__ import annotations

import gc

from live.logging import get_logger

log = get_logger("live.gc")


def settle(thresholds: tuple[int, int, int] | None) -> None:
    gc.collect()
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    log.debug("gc_settled", frozen=gc.get_freeze_count(), thresholds=gc.get_threshold())
