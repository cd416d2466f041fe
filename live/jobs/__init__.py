"""Durable background jobs on PostgreSQL (pgqueuer): `enqueue` in the caller's transaction, handlers registered
by kind on `Jobs`, run by every `live serve` (in process, by default) or by `live worker`. docs/jobs.md."""
from live.jobs.queue import Permanent, enqueue, enqueue_many
from live.jobs.worker import Jobs

__all__ = ["Jobs", "Permanent", "enqueue", "enqueue_many"]
