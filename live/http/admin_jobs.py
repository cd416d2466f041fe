"""Admin REST on the durable job queue (live/jobs/desk.py, docs/jobs.md): the jobs by state with their last error,
a dead job requeued or discarded (audited). Admins only."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from live.errors import not_found
from live.http.api import API, Api, Call

api = Api()
ADMIN = {"tag": "admin", "auth": "user", "roles": ("admin",)}
KIND = r"^[a-z0-9_]{1,40}(\.[a-z0-9_]{1,40}){0,2}$"
MAX_ID_DIGITS = 18  # a job id is a positive bigint


class JobsQuery(BaseModel):
    state: Literal["dead", "queued", "running", "retrying"] | None = Field(
        default=None, description="dead (held), queued, running (picked by a worker), retrying (waiting after a "
        "failure); none: all of them")
    kind: str | None = Field(default=None, pattern=KIND, description="e.g. email.send")
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")
    limit: int = Field(default=50, ge=1, le=200)


class JobOut(BaseModel):
    id: int
    kind: str
    state: Literal["dead", "queued", "running", "retrying"]
    attempts: int = Field(description="runs that failed so far (reset by a requeue)")
    created: str
    execute_after: str = Field(description="when it is (or was) due")
    updated: str
    last_error: str | None


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class Discarded(BaseModel):
    id: int
    discarded: bool


def job_id(call: Call) -> int:
    value = call.param("id")
    if not value.isascii() or not value.isdigit() or len(value) > MAX_ID_DIGITS:
        raise not_found("job")
    return int(value)


@api.route("GET", f"{API}/admin/jobs", summary="Jobs by state (dead, queued, running, retrying) and kind, newest "
           "first, with their attempts and last error; cursor pages", query=JobsQuery, response=JobPage, **ADMIN)
async def list_jobs(call: Call):
    q = call.query
    return await call.services.jobs_desk.list(call.principal, q.state, q.kind, q.cursor, q.limit)


@api.route("POST", f"{API}/admin/jobs/{{id}}/requeue", summary="Queue a dead job again, due now, its attempts "
           "reset (audited); 409 when it is not dead", response=JobOut, errors=(404, 409), **ADMIN)
async def requeue_job(call: Call):
    return await call.services.jobs_desk.requeue(call.principal, job_id(call))


@api.route("DELETE", f"{API}/admin/jobs/{{id}}", summary="Discard a dead job (audited); 409 when it is not dead",
           response=Discarded, errors=(404, 409), **ADMIN)
async def discard_job(call: Call):
    return await call.services.jobs_desk.discard(call.principal, job_id(call))
