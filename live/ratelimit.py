"""Rate limits: `RateLimiter.hit(key, limit, window)` says whether one more action fits in the window.
In-process sliding windows here; a Redis implementation makes them global across workers."""
from __future__ import annotations

import time
from collections import deque
from typing import Protocol


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> bool: ...


class MemoryRateLimiter:
    def __init__(self, max_keys: int = 200_000):
        self._hits: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: int, window: float) -> bool:
        now = time.monotonic()
        q = self._hits.get(key)
        if q is None:
            if len(self._hits) >= self._max_keys:
                self._sweep(now, window)
            q = self._hits[key] = deque()
        while q and q[0] <= now - window:
            q.popleft()
        if len(q) >= limit:
            return False
        q.append(now)
        return True

    def _sweep(self, now: float, window: float) -> None:
        for key in [k for k, q in self._hits.items() if not q or q[-1] <= now - window]:
            del self._hits[key]
