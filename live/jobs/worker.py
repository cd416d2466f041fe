"""Running jobs: the handlers registered by kind, and the pgqueuer QueueManager that picks jobs (SKIP LOCKED,
heartbeats: a job whose worker died is picked again) and runs them with retries (exponential backoff with jitter);
a job that keeps failing, or raises Permanent, is held with status `failed` (dead) for an admin.

One process runs one QueueManager on one connection of its own (NOTIFY wakes it; it polls every
POLL_SECONDS besides). When that connection is lost (PostgreSQL restarted, the backend terminated), the manager
ends, and `Jobs` connects again with a growing delay (RECONNECT_FIRST_SECONDS doubling up to RECONNECT_MAX_SECONDS)
until it is back; jobs it had picked stay `picked` and are picked again once their heartbeat is stale."""
from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from datetime import timedelta
from typing import Awaitable, Callable

import asyncpg
import orjson
from pgqueuer.core.executors import DatabaseRetryEntrypointExecutor, EntrypointExecutorParameters
from pgqueuer.core.qm import QueueManager
from pgqueuer.domain import errors, models
from pgqueuer.queries import Queries

from live.jobs.queue import Permanent
from live.logging import get_logger

log = get_logger("live.jobs")
Handler = Callable[[dict], Awaitable[None]]

POLL_SECONDS = 5.0  # besides NOTIFY, the queue is looked at this often (a job that became due, a stale one)
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
STOP_GRACE_SECONDS = 20.0  # `stop` waits this long for running jobs; those still running are picked again later


def backoff(attempts: int, first: float, maximum: float, multiplier: float, jitter: float) -> float:
    """Seconds before the next try of a job that failed `attempts + 1` times: first x multiplier^attempts, at most
    `maximum`, less a random part of it (jitter 1.0: anywhere between 0 and that, "full jitter")."""
    ceiling = min(first * multiplier ** min(attempts, 64), maximum)
    return ceiling * (1.0 - jitter * random.random())


@dataclasses.dataclass(frozen=True)
class _Kind:
    handler: Handler
    max_attempts: int
    first_delay: float
    max_delay: float
    multiplier: float
    jitter: float


@dataclasses.dataclass
class _Retrying(DatabaseRetryEntrypointExecutor):
    """pgqueuer's database retries with our backoff; Permanent, or the last attempt's failure, holds the job."""

    kind: _Kind | None = None

    async def execute(self, job: models.Job, context: models.Context) -> None:
        spec = self.kind
        assert spec is not None
        try:
            await spec.handler(orjson.loads(job.payload) if job.payload else {})
        except errors.RetryRequested:
            raise
        except Permanent as exc:
            log.warning("job_dead", kind=job.entrypoint, job_id=job.id, attempt=job.attempts + 1, error=repr(exc)[:300])
            raise
        except Exception as exc:
            if job.attempts + 1 >= spec.max_attempts:
                log.warning("job_dead", kind=job.entrypoint, job_id=job.id, attempt=job.attempts + 1,
                            error=repr(exc)[:300])
                raise
            delay = backoff(job.attempts, spec.first_delay, spec.max_delay, spec.multiplier, spec.jitter)
            log.warning("job_retry", kind=job.entrypoint, job_id=job.id, attempt=job.attempts + 1,
                        delay=round(delay, 1), error=repr(exc)[:300])
            raise errors.RetryRequested(delay=timedelta(seconds=delay), reason=repr(exc)[:2000]) from exc


class Jobs:
    def __init__(self, dsn: str, *, heartbeat_seconds: float = 30.0, concurrency: int = 8):
        self.dsn = dsn
        self.heartbeat = timedelta(seconds=heartbeat_seconds)
        self.concurrency = max(2, concurrency)
        self._kinds: dict[str, _Kind] = {}
        self._conn: asyncpg.Connection | None = None
        self._qm: QueueManager | None = None
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()  # set while the manager runs on a live connection (tests, readiness)

    def register(self, kind: str, handler: Handler, *, max_attempts: int = 8, first_delay: float = 2.0,
                 max_delay: float = 3600.0, multiplier: float = 2.0, jitter: float = 1.0) -> None:
        """`handler(payload)` runs each job of `kind`; it must be safe to run twice for one job. A failure is
        tried again after `backoff(...)` seconds, up to `max_attempts` runs in all; then the job is dead."""
        if kind in self._kinds:
            raise ValueError(f"job kind {kind!r} registered twice")
        if max_attempts < 1 or first_delay < 0 or max_delay < first_delay or multiplier < 1 or not 0 <= jitter <= 1:
            raise ValueError(f"job kind {kind!r}: bad retry policy")
        self._kinds[kind] = _Kind(handler, max_attempts, first_delay, max_delay, multiplier, jitter)

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def _manager(self, conn: asyncpg.Connection) -> QueueManager:
        qm = QueueManager(Queries.from_asyncpg_connection(conn))
        for kind, spec in self._kinds.items():
            qm.register_executor(kind, _Retrying(
                EntrypointExecutorParameters(concurrency_limit=0, func=_never, on_failure="hold"), kind=spec))
        return qm

    def _run_args(self) -> dict:
        # max_concurrent_tasks bounds what this process has picked (pgqueuer wants it at least twice the batch)
        return {"batch_size": max(1, self.concurrency // 2), "max_concurrent_tasks": self.concurrency,
                "heartbeat_timeout": self.heartbeat}

    async def start(self) -> None:
        """Run jobs in this process until `stop` (connecting again whenever the connection is lost)."""
        if self._task is not None:
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._supervise(), name="jobs")

    async def _supervise(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while not self._stopping.is_set():
            try:
                conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_SECONDS)
            except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("jobs_connect_failed", error=repr(exc)[:300], retry_in=delay)
                await self._pause(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            self._conn, self._qm = conn, self._manager(conn)
            if self._stopping.is_set():  # `stop` came while this connected
                self._qm.shutdown.set()
            began = time.monotonic()
            log.info("jobs_started", kinds=self.kinds(), concurrency=self.concurrency)
            self.connected.set()
            try:
                await self._qm.run(dequeue_timeout=timedelta(seconds=POLL_SECONDS), **self._run_args())
            except Exception as exc:  # the connection went away (or a query on it failed): connect again
                log.warning("jobs_connection_lost", error=repr(exc)[:300], retry_in=delay)
            finally:
                self.connected.clear()
                self._qm = self._conn = None
                if not conn.is_closed():
                    conn.terminate()
            if self._stopping.is_set():
                break
            if time.monotonic() - began > 60:
                delay = RECONNECT_FIRST_SECONDS
            await self._pause(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop picking jobs and wait up to `grace` seconds for the running ones. Those still running then are cut
        off with their connection: they stay `picked` and another worker runs them again (handlers are safe to
        run twice) once their heartbeat is stale."""
        self._stopping.set()
        if self._qm is not None:
            self._qm.shutdown.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            log.warning("jobs_stop_timeout", grace=grace)
            if self._conn is not None and not self._conn.is_closed():
                self._conn.terminate()  # before the cancel: pgqueuer would log a canceled job as finished
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        log.info("jobs_stopped")

    async def drain(self) -> None:
        """Run the jobs of the registered kinds that are due (and those left by a dead worker) in this process
        until none is left; a retry pushed into the future is not waited for (tests)."""
        conn = await asyncpg.connect(self.dsn)
        qm = self._manager(conn)
        task = asyncio.create_task(qm.run(dequeue_timeout=timedelta(seconds=0.2), **self._run_args()))
        try:
            while not task.done():
                await asyncio.sleep(0.05)
                left = await qm.queries.driver.fetch(_LEFT, self.kinds(), qm.queue_manager_id, self.heartbeat)
                if left[0]["n"] == 0 and not qm.job_context:
                    break
        finally:
            qm.shutdown.set()
            await task


# jobs a drain waits for: due ones, its own in flight (until their end is written), those of a dead worker
_LEFT = """SELECT count(*) AS n FROM pgqueuer WHERE entrypoint = ANY($1::text[]) AND (
    (status = 'queued' AND execute_after <= now()) OR (status = 'picked' AND queue_manager_id = $2::uuid)
    OR (status = 'picked' AND heartbeat < now() - $3::interval))"""


async def _never(job: models.Job) -> None:  # pgqueuer's executor wants a function; _Retrying calls the handler
    raise RuntimeError("not called")
