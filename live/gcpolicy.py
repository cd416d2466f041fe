"""The garbage collector's pauses, kept out of bursts.

CPython's cyclic collector stops the event loop while it runs and walks every object of the generations it
collects; on this machine that is ~0.4-0.6 µs per object. A flash sale's 5,000 waiting cart:adds are ~250,000
live objects (coroutines, tasks, futures, payloads): with Python's thresholds (700, 10, 10) three full
collections of 100-190 ms fell inside the burst, more than half of the time to the last ack.

When a worker starts serving, `settle()`:
  * collects once and freezes what exists (modules, the app, the pools: ~100,000 objects that live as long
    as the process), so no later collection walks them again;
  * sets the thresholds (GC_THRESHOLDS, default 10000,50,100): a young collection every 10,000 net
    allocations instead of 700 (most request objects die young, freed by reference counting before one
    runs); a middle one after 50 young ones, so the objects of a burst that outlive a young collection are
    usually freed before a middle collection walks them; a full one after 100 middle ones (and, as always
    in CPython, only once a quarter of the old objects are new). Measured (docs/benchmarks.md): flash-sale
    p99 ack 600 ms with the freeze alone, ~500 ms with 10000,20,100, 300-350 ms with 10000,50,100; the
    10,000-viewer audience and join storm are unchanged (p99 within run-to-run noise, 3.2 KB per connection).
Cyclic garbage waits longer to be freed. GC_THRESHOLDS=default keeps Python's thresholds (the freeze still
happens)."""
from __future__ import annotations

import gc

from live.logging import get_logger

log = get_logger("live.gc")


def settle(thresholds: tuple[int, int, int] | None) -> None:
    gc.collect()
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    log.info("gc_settled", frozen=gc.get_freeze_count(), thresholds=list(gc.get_threshold()))
