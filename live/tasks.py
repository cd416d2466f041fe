"""A worker's background tasks: periodic timers (the rooms' counts and reactions, commerce's sweepers) and
their orderly stop."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Awaitable, Callable, Iterable

from live.logging import get_logger

log = get_logger("live.tasks")


def every(interval: Callable[[], float], fn: Callable[[], Awaitable[None]], name: str) -> asyncio.Task:
    """A task running fn every interval() seconds (read each turn, so tests can shorten it); an error is
    logged and the timer goes on."""
    async def loop() -> None:
        while True:
            await asyncio.sleep(interval())
            try:
                await fn()
            except Exception:
                log.exception("timer_error", timer=name)
    return asyncio.create_task(loop(), name=name)


async def cancel_all(tasks: Iterable[asyncio.Task]) -> None:
    """Cancel the tasks and wait until each has ended."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
