"""Batched persistence of chat messages: ids are reserved from PostgreSQL in blocks, rows are written every
100 ms (or 500 at a time), and a failed write is retried, so a burst costs a few round trips, not one each."""
from __future__ import annotations

import asyncio
from collections import deque

import asyncpg

from db import Database
from db import chat as chat_db
from live.auth.principal import SYSTEM
from live.logging import get_logger

log = get_logger("live.chat.writer")
ID_BLOCK = 200
MAX_BUFFER = 100_000


class ChatWriter:
    def __init__(self, db: Database, *, interval: float = 0.1, batch: int = 500):
        self._db = db
        self._interval = interval
        self._batch = batch
        self._ids: deque[int] = deque()
        self._id_lock = asyncio.Lock()
        self._rows: list[list] = []
        self._by_id: dict[int, list] = {}
        self._wake = asyncio.Event()

    async def next_id(self) -> int:
        if not self._ids:
            async with self._id_lock:
                if not self._ids:
                    async with self._db.tx(SYSTEM) as conn:
                        self._ids.extend(await chat_db.reserve_ids(conn, ID_BLOCK))
        return self._ids.popleft()

    def add(self, msg_id: int, stream_id: str, user_id: str, text: str, seq: int | None, created_at) -> None:
        if len(self._rows) >= MAX_BUFFER:
            log.error("chat_buffer_full", dropped_id=msg_id)
            return
        row = [msg_id, stream_id, user_id, text, seq, created_at, False]
        self._rows.append(row)
        self._by_id[msg_id] = row
        if len(self._rows) >= self._batch:
            self._wake.set()

    def mark_deleted(self, msg_id: int, stream_id: str) -> bool:
        """Delete a message of this stream still waiting in the buffer; True if it was there."""
        row = self._by_id.get(msg_id)
        if row is None or row[1] != stream_id:
            return False
        row[6] = True
        return True

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        while self._rows:
            rows, self._rows = self._rows[: self._batch], self._rows[self._batch:]
            try:
                async with self._db.tx(SYSTEM) as conn:
                    await chat_db.insert_many(conn, [tuple(r) for r in rows])
            except (asyncpg.PostgresError, OSError, asyncio.TimeoutError) as exc:
                log.warning("chat_write_failed", error=str(exc), rows=len(rows))
                self._rows[:0] = rows  # keep them, in order, for the next attempt
                return
            for r in rows:
                self._by_id.pop(r[0], None)
