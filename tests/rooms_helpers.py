"""Helpers for room tests: real python-socketio clients over real sockets."""
from __future__ import annotations

import asyncio
from collections import defaultdict

import socketio


class Viewer:
    """A python-socketio AsyncClient that records every event it receives."""

    def __init__(self, base_url: str, token: str | None = None, transports=("websocket",)):
        self.url = base_url
        self.token = token
        self.transports = list(transports)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list] = defaultdict(list)
        self.order: list[tuple[str, dict]] = []
        self._waiters: list[tuple[str, object, asyncio.Future]] = []
        self.sio.on("*", self._on_any)

    async def _on_any(self, event, data=None):
        self.events[event].append(data)
        self.order.append((event, data))
        for item in list(self._waiters):
            name, pred, fut = item
            if name == event and not fut.done() and pred(data):
                fut.set_result(data)
                self._waiters.remove(item)

    async def connect(self):
        await self.sio.connect(self.url, auth={"token": self.token} if self.token else None,
                               transports=self.transports, wait_timeout=10)
        return self

    async def call(self, event: str, data: dict | None = None, timeout: float = 10):
        return await self.sio.call(event, data if data is not None else {}, timeout=timeout)

    async def wait_for(self, event: str, pred=lambda d: True, timeout: float = 10):
        """The first `event` received that satisfies pred (waits for it if needed)."""
        return await self.wait_after(event, 0, pred, timeout)

    def mark(self, event: str) -> int:
        return len(self.events.get(event, []))

    async def wait_after(self, event: str, after: int, pred=lambda d: True, timeout: float = 10):
        """The first `event` received at index >= after (a `mark`) that satisfies pred (waits for it if needed)."""
        for data in self.events.get(event, [])[after:]:
            if pred(data):
                return data
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((event, pred, fut))
        return await asyncio.wait_for(fut, timeout)

    async def close(self):
        if self.sio.connected:
            await self.sio.disconnect()
