"""Running jobs: the handlers registered by kind, and the pgqueuer QueueManager that picks jobs (SKIP LOCKED,
heartbeats: a job whose worker died is picked again) and runs them with retries (exponential backoff with full
jitter); a job that keeps failing, or raises Permanent, is held with status `failed` (dead) for an admin."""
from __future__ import annotations

import asyncio
import dataclasses
import random
from datetime import timedelta
from typing import Awaitable, Callable

import asyncpg
import orjson
from pgqueuer.core.executors import DatabaseRetryEntrypointExecutor, EntrypointExecutorParameters
from pgqueuer.core.qm import QueueManager
from pgqueuer.domain import errors, models, types
from pgqueuer.queries import Queries

from live.jobs.queue import Permanent
from live.logging import get_logger

log = get_logger("live.jobs")
Handler = Callable[[dict], Awaitable[None]]


@dataclasses.dataclass
class _Retrying(DatabaseRetryEntrypointExecutor):
    """pgqueuer's database retries, with full jitter on the backoff and Permanent failing at once."""

    async def execute(self, job: models.Job, context: models.Context) -> None:
        try:
            await super(DatabaseRetryEntrypointExecutor, self).execute(job, context)
        except errors.RetryRequested:
            raise
        except Permanent:
            raise
        except Exception as exc:
            if job.attempts + 1 >= self.max_attempts:
                raise
            ceiling = min(self.initial_delay * (self.backoff_multiplier ** job.attempts), self.max_delay)
            delay = ceiling * (0.5 + random.random() / 2)
            log.warning("job_retry", kind=job.entrypoint, job_id=job.id, attempt=job.attempts + 1,
                        delay=round(delay.total_seconds(), 1), error=repr(exc)[:300])
            raise errors.RetryRequested(delay=delay, reason=repr(exc)[:300]) from exc


@dataclasses.dataclass(frozen=True)
class _Kind:
    handler: Handler
    max_attempts: int
    first_delay: float
    max_delay: float


class Jobs:
    def __init__(self, dsn: str, *, heartbeat_seconds: float = 30.0, concurrency: int = 8):
        self.dsn = dsn
        self.heartbeat = timedelta(seconds=heartbeat_seconds)
        self.concurrency = concurrency
        self._kinds: dict[str, _Kind] = {}
        self._conn: asyncpg.Connection | None = None
        self._qm: QueueManager | None = None
        self._task: asyncio.Task | None = None

    def register(self, kind: str, handler: Handler, *, max_attempts: int = 8, first_delay: float = 2.0,
                 max_delay: float = 3600.0) -> None:
        """`handler(payload)` runs each job of `kind`; it must be safe to run twice for one job."""
        if kind in self._kinds:
            raise ValueError(f"job kind {kind!r} registered twice")
        self._kinds[kind] = _Kind(handler, max_attempts, first_delay, max_delay)

    def _manager(self, conn: asyncpg.Connection) -> QueueManager:
        qm = QueueManager(Queries.from_asyncpg_connection(conn))
        for kind, spec in self._kinds.items():
            async def run(job: models.Job, _h: Handler = spec.handler) -> None:
                await _h(orjson.loads(job.payload) if job.payload else {})
            qm.register_executor(kind, _Retrying(
                EntrypointExecutorParameters(concurrency_limit=0, func=run, on_failure="hold"),
                max_attempts=spec.max_attempts, initial_delay=timedelta(seconds=spec.first_delay),
                max_delay=timedelta(seconds=spec.max_delay)))
        return qm

    async def start(self) -> None:
        """Run jobs in this process until `stop`."""
        self._conn = await asyncpg.connect(self.dsn)
        self._qm = self._manager(self._conn)
        self._task = asyncio.create_task(self._qm.run(
            dequeue_timeout=timedelta(seconds=5), batch_size=self.concurrency,
            heartbeat_timeout=self.heartbeat), name="jobs")

    async def stop(self) -> None:
        if self._qm is not None:
            self._qm.shutdown.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 30)
            except Exception:
                log.exception("jobs_stop")
        if self._conn is not None:
            await self._conn.close()
        self._qm = self._task = self._conn = None

    async def drain(self) -> None:
        """Run every job that is due until none is left (tests, and `live worker --drain`)."""
        conn = await asyncpg.connect(self.dsn)
        try:
            await self._manager(conn).run(mode=types.QueueExecutionMode.drain, batch_size=self.concurrency,
                                          dequeue_timeout=timedelta(seconds=0.2), heartbeat_timeout=self.heartbeat)
        finally:
            await conn.close()
