"""Batched persistence of chat messages: ids are reserved from PostgreSQL in blocks, rows are written every
100 ms (or 500 at a time), so a burst costs a few round trips, not one each.

A batch that fails because the database is unreachable or busy is kept, in order, for the next attempt. A batch
that PostgreSQL refuses for its content is split in halves until each bad row fails alone: such a row can never be
written, so it is set aside (logged with its id and stream, counted as `live_chat_rows_set_aside_total` in
/metrics) and every other row of the batch is stored."""
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
MAX_BUFFER = 100_000  # rows waiting to be written; beyond, new messages are broadcast but not stored (counted)


def _transient(exc: BaseException) -> bool:
    """A failure of the database or the link to it (retry the rows later), not of the rows themselves."""
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError,
                        asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError,
                        asyncpg.exceptions.TransactionRollbackError)):
        return True
    # asyncpg's client-side errors: a closed connection is transient, a value it cannot encode (a ValueError) not
    return isinstance(exc, asyncpg.InterfaceError) and not isinstance(exc, ValueError)


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
        self._flush_lock = asyncio.Lock()
        self._written: asyncio.Future | None = None  # resolved when the batch being written now has landed
        self.set_aside = 0  # rows PostgreSQL refused (never written)
        self.dropped = 0  # rows not kept because the buffer was full

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
            self.dropped += 1
            return
        row = [msg_id, stream_id, user_id, text, seq, created_at, False, False]  # [6] deleted, [7] being written
        self._rows.append(row)
        self._by_id[msg_id] = row
        if len(self._rows) >= self._batch:
            self._wake.set()

    async def delete_pending(self, msg_id: int, stream_id: str) -> bool:
        """Delete a message of this stream still waiting in the buffer: True if it was waiting (now written as
        deleted). False if it is not here (the caller deletes it in the database). A message being written right
        now is waited for first: marking the row then would be lost (its values are already on their way), so
        after that write lands it is in the database (False), or back in the buffer after a failed write (True)."""
        row = self._by_id.get(msg_id)
        if row is None or row[1] != stream_id:
            return False
        if row[7] and self._written is not None:
            await asyncio.shield(self._written)
            return await self.delete_pending(msg_id, stream_id)
        row[6] = True
        return True

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # never let the writer die: the rows stay for the next turn
                log.exception("chat_flush_failed")

    async def flush(self) -> None:
        """Write what the buffer holds. One flush at a time: a reader's flush (GET /chat) waits for the batch the
        writer's own turn has in flight, so what was said before the read is in the database when it reads."""
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        while self._rows:
            rows, self._rows = self._rows[: self._batch], self._rows[self._batch:]
            for r in rows:
                r[7] = True
            self._written = written = asyncio.get_running_loop().create_future()
            try:
                retry = await self._write(rows)
            finally:  # written rows left _by_id; the ones to retry wait in the buffer again
                for r in rows:
                    r[7] = False
                self._written = None
                written.set_result(None)
            if retry:
                self._rows[:0] = retry  # keep them, in order, for the next attempt
                return

    async def _write(self, rows: list[list]) -> list[list]:
        """Store rows, splitting a batch PostgreSQL refuses until each bad row fails alone (and is set aside).
        Returns the rows to try again later (the database is away), in order; [] when done."""
        try:
            async with self._db.tx(SYSTEM) as conn:
                await chat_db.insert_many(conn, [tuple(r[:7]) for r in rows])
        except Exception as exc:
            if _transient(exc):
                log.warning("chat_write_failed", error=str(exc), rows=len(rows))
                return rows
            if len(rows) == 1:
                self._set_aside(rows[0], exc)
                return []
            half = len(rows) // 2
            retry = await self._write(rows[:half])
            return retry + rows[half:] if retry else await self._write(rows[half:])
        for r in rows:
            self._by_id.pop(r[0], None)
        return []

    def _set_aside(self, row: list, exc: BaseException) -> None:
        self.set_aside += 1
        self._by_id.pop(row[0], None)
        log.error("chat_row_set_aside", message_id=row[0], stream_id=row[1], user_id=row[2],
                  error=f"{type(exc).__name__}: {str(exc)[:200]}")
