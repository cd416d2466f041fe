"""Queries on the durable job queue (pgqueuer's tables, migrations/0015_jobs.sql) for the admins and /metrics:
the jobs by state with their last error (a keyset page), requeueing or discarding a dead job, and the counts per
kind and state. Enqueueing and running jobs is live/jobs (pgqueuer's own statements).

The states: `queued` (waiting, never failed), `retrying` (waiting for a retry after a failure), `running`
(picked by a worker), `dead` (held after its last attempt or a Permanent failure: status `failed`)."""
from __future__ import annotations

import asyncpg

STATES = {  # state -> its condition (fixed text: no caller data ever goes into the SQL)
    "queued": "j.status = 'queued' AND j.attempts = 0",
    "retrying": "j.status = 'queued' AND j.attempts > 0",
    "running": "j.status = 'picked'",
    "dead": "j.status = 'failed'",
}
_STATE = """CASE WHEN j.status = 'failed' THEN 'dead' WHEN j.status = 'picked' THEN 'running'
    WHEN j.attempts > 0 THEN 'retrying' ELSE 'queued' END"""
# runs that failed: a dead job's last failure is not counted in `attempts` by pgqueuer (only retries are)
_COLS = f"""j.id, j.entrypoint AS kind, {_STATE} AS state, j.attempts + (j.status = 'failed')::int AS attempts,
    j.created, j.execute_after, j.updated, (
        SELECT coalesce(l.traceback -> 'additional_context' ->> 'reason',
                        (l.traceback ->> 'exception_type') || ': ' || (l.traceback ->> 'exception_message'))
        FROM pgqueuer_log l WHERE l.job_id = j.id AND l.traceback IS NOT NULL
        ORDER BY l.created DESC, l.id DESC LIMIT 1) AS last_error"""
MAX_ERROR = 2000  # characters of the last error shown


async def page(conn: asyncpg.Connection, state: str | None, kind: str | None, before_id: int | None,
               limit: int) -> list[asyncpg.Record]:
    """Jobs (not finished ones: those are deleted), newest first, ids below `before_id`, at most `limit`."""
    where = STATES[state] if state else "j.status IN ('queued', 'picked', 'failed')"
    return await conn.fetch(
        f"""SELECT {_COLS} FROM pgqueuer j
            WHERE {where} AND ($1::text IS NULL OR j.entrypoint = $1) AND ($2::bigint IS NULL OR j.id < $2)
            ORDER BY j.id DESC LIMIT $3""", kind, before_id, limit)


async def get(conn: asyncpg.Connection, job_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLS}, j.dedupe_key FROM pgqueuer j WHERE j.id = $1"
                               + (" FOR UPDATE OF j" if lock else ""), job_id)


async def requeue(conn: asyncpg.Connection, job_id: int) -> bool:
    """A dead job back to the queue, due now, its attempts reset (the NOTIFY trigger wakes the workers). False
    when another job with the same dedupe key is queued or running (its row is not changed)."""
    try:
        async with conn.transaction():  # a savepoint: a key conflict leaves the caller's transaction usable
            done = await conn.fetchval(
                """WITH requeued AS (
                       UPDATE pgqueuer SET status = 'queued', execute_after = now(), updated = now(), attempts = 0,
                                           queue_manager_id = NULL
                       WHERE id = $1 AND status = 'failed' RETURNING id, entrypoint, priority)
                   INSERT INTO pgqueuer_log (job_id, status, entrypoint, priority)
                   SELECT id, 'queued', entrypoint, priority FROM requeued RETURNING job_id""", job_id)
    except asyncpg.UniqueViolationError:
        return False
    return done is not None


async def discard(conn: asyncpg.Connection, job_id: int) -> bool:
    """Delete a dead job (logged as `deleted`)."""
    done = await conn.fetchval(
        """WITH deleted AS (DELETE FROM pgqueuer WHERE id = $1 AND status = 'failed' RETURNING id, entrypoint, priority)
           INSERT INTO pgqueuer_log (job_id, status, entrypoint, priority)
           SELECT id, 'deleted', entrypoint, priority FROM deleted RETURNING job_id""", job_id)
    return done is not None


async def counts(conn: asyncpg.Connection, max_kinds: int) -> list[asyncpg.Record]:
    """Per kind (at most `max_kinds`): how many jobs are queued, running, retrying and dead, and the age in seconds
    of the oldest queued job that is due (0 when none is). One statement over the unfinished jobs."""
    return await conn.fetch(
        """SELECT entrypoint AS kind,
                  count(*) FILTER (WHERE status = 'queued' AND attempts = 0) AS queued,
                  count(*) FILTER (WHERE status = 'picked') AS running,
                  count(*) FILTER (WHERE status = 'queued' AND attempts > 0) AS retrying,
                  count(*) FILTER (WHERE status = 'failed') AS dead,
                  coalesce(extract(epoch FROM now() - min(execute_after)
                                   FILTER (WHERE status = 'queued' AND execute_after <= now())), 0)::float8
                      AS oldest_due
           FROM pgqueuer WHERE status IN ('queued', 'picked', 'failed')
           GROUP BY entrypoint ORDER BY entrypoint LIMIT $1""", max_kinds)
