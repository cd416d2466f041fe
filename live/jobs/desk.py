"""The admins' view of the job queue (REST: live/http/admin_jobs.py) and its gauges (/metrics): jobs by state with
their last error, a dead job requeued or discarded (each in the audit log). The only module of live.jobs that reads
the database through db/ (db/jobs.py); the queue and the worker use pgqueuer's statements."""
from __future__ import annotations

from db import Database, audit
from db import jobs as jobs_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.cursors import decode_cursor, encode_cursor
from live.errors import DomainError, not_found

MAX_PAGE = 200
MAX_KINDS = 200  # kinds reported in /metrics (there are about ten)
MAX_JOB_ID = 2**63 - 1


def _out(row) -> dict:
    return {"id": row["id"], "kind": row["kind"], "state": row["state"], "attempts": row["attempts"],
            "created": row["created"].isoformat(), "execute_after": row["execute_after"].isoformat(),
            "updated": row["updated"].isoformat(),
            "last_error": row["last_error"][:jobs_db.MAX_ERROR] if row["last_error"] else None}


class JobsDesk:
    def __init__(self, db: Database, kinds):
        self.db = db
        self._kinds = kinds  # () -> the kinds registered in this process (reported even when none is queued)
        self.snapshot: list[dict] = []  # the counts of the last scrape (`refresh`)

    async def list(self, principal: Principal, state: str | None, kind: str | None, cursor: str | None,
                   limit: int) -> dict:
        policy.admin(principal)
        before = decode_cursor(cursor, "bigint")[0] if cursor else None
        limit = max(1, min(limit, MAX_PAGE))
        async with self.db.tx(principal) as conn:
            rows = await jobs_db.page(conn, state, kind, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [_out(r) for r in rows], "next_cursor": encode_cursor(rows[-1]["id"]) if more else None}

    async def requeue(self, principal: Principal, job_id: int) -> dict:
        """A dead job queued again, due now, attempts reset (audited). 409 when it is not dead, or when another job
        with its key is queued or running."""
        policy.admin(principal)
        async with self.db.tx(principal) as conn:
            job = await self._dead(conn, job_id)
            if not await jobs_db.requeue(conn, job_id):
                raise DomainError("conflict", "another job with the same key is queued or running",
                                  details={"key": job["dedupe_key"]})
            await audit.record(conn, principal.user_id, "job.requeue", "job", job_id,
                               before={"state": "dead", "attempts": job["attempts"]},
                               after={"state": "queued", "attempts": 0}, kind=job["kind"],
                               last_error=job["last_error"])
            row = await jobs_db.get(conn, job_id)
        return _out(row)

    async def discard(self, principal: Principal, job_id: int) -> dict:
        """Delete a dead job (audited). 409 when it is not dead."""
        policy.admin(principal)
        async with self.db.tx(principal) as conn:
            job = await self._dead(conn, job_id)
            await jobs_db.discard(conn, job_id)
            await audit.record(conn, principal.user_id, "job.discard", "job", job_id,
                               before={"state": "dead", "attempts": job["attempts"]}, kind=job["kind"],
                               last_error=job["last_error"])
        return {"id": job_id, "discarded": True}

    @staticmethod
    async def _dead(conn, job_id: int):
        job = await jobs_db.get(conn, job_id, lock=True) if 0 < job_id <= MAX_JOB_ID else None
        if job is None:
            raise not_found("job")
        if job["state"] != "dead":
            raise DomainError("conflict", f"the job is {job['state']}, not dead", details={"state": job["state"]})
        return job

    async def refresh(self) -> list[dict]:
        """Read the counts per kind (one bounded query) into `snapshot`, for the /metrics collector."""
        async with self.db.tx(SYSTEM) as conn:
            rows = await jobs_db.counts(conn, MAX_KINDS)
        by_kind = {k: {"kind": k, "queued": 0, "running": 0, "retrying": 0, "dead": 0, "oldest_due": 0.0}
                   for k in self._kinds()}
        for r in rows:
            by_kind[r["kind"]] = dict(r)
        self.snapshot = [by_kind[k] for k in sorted(by_kind)][:MAX_KINDS]
        return self.snapshot
