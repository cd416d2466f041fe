"""The job queue's worker against real PostgreSQL: retries with backoff then held dead with the last error (and
Permanent at once), two workers over 200 jobs run each exactly once, and a worker whose connection is cut from the
server side while the database refuses connections for a while connects again once it is back, and goes on."""
from __future__ import annotations

import asyncio
from collections import Counter
from urllib.parse import urlsplit

import orjson
import pytest

from db import jobs as jobs_db
from live.jobs import Jobs, Permanent, enqueue, enqueue_many
from live.jobs.worker import backoff
from tests.helpers import owner_connection, until, with_database


async def enqueue_now(dsn: str, kind: str, payloads: list[dict], key: str | None = None) -> list[int]:
    async with owner_connection(dsn) as conn:
        async with conn.transaction():
            return [await enqueue(conn, kind, p, key=key) for p in payloads]


def test_backoff_grows_exponentially_with_full_jitter_under_the_ceiling():
    for attempts, ceiling in ((0, 2.0), (1, 4.0), (3, 16.0), (20, 3600.0)):
        waits = [backoff(attempts, 2.0, 3600.0, 2.0, 1.0) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits) and max(waits) > ceiling / 2
    # the refunds' schedule: 2 min, 8 min, 32 min, ~2 h, 6 h, each 80-100 % of it
    assert [round(backoff(a, 120.0, 6 * 3600.0, 4.0, 0.0)) for a in range(5)] == [120, 480, 1920, 7680, 21600]
    assert all(96 <= backoff(0, 120.0, 6 * 3600.0, 4.0, 0.2) <= 120 for _ in range(50))


async def test_a_failing_job_is_retried_then_held_dead_with_its_last_error(dsn):
    runs: list[int] = []
    jobs = Jobs(dsn, heartbeat_seconds=5)

    async def flaky(payload):
        runs.append(payload["n"])
        raise ValueError(f"boom {len(runs)}")

    async def refused(payload):
        raise Permanent("the card is gone")

    jobs.register("t.flaky", flaky, max_attempts=3, first_delay=0.05, max_delay=0.2)
    jobs.register("t.refused", refused, max_attempts=5)
    [flaky_id] = await enqueue_now(dsn, "t.flaky", [{"n": 1}])
    [refused_id] = await enqueue_now(dsn, "t.refused", [{"n": 2}])
    await jobs.start()
    try:
        async with owner_connection(dsn) as conn:
            async def both_dead() -> bool:
                return await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE status = 'failed'") == 2
            await until(both_dead, what="two dead jobs")
            dead = {r["id"]: r for r in await jobs_db.page(conn, "dead", None, None, 10)}
    finally:
        await jobs.stop()
    assert runs == [1, 1, 1]  # max_attempts runs in all
    assert (dead[flaky_id]["kind"], dead[flaky_id]["state"], dead[flaky_id]["attempts"]) == ("t.flaky", "dead", 3)
    assert "boom 3" in dead[flaky_id]["last_error"]
    assert (dead[refused_id]["attempts"], dead[refused_id]["last_error"]) == (1, "Permanent: the card is gone")
    # a dead job frees its key: the same work may be queued again
    assert (await enqueue_now(dsn, "t.flaky", [{"n": 3}], key="k1"))[0] is not None


async def test_two_workers_run_each_of_200_jobs_exactly_once(dsn):
    seen: Counter = Counter()
    by_worker: Counter = Counter()
    workers = [Jobs(dsn, heartbeat_seconds=5, concurrency=4) for _ in range(2)]
    for i, worker in enumerate(workers):
        async def handler(payload, _i=i):
            await asyncio.sleep(0.005)
            seen[payload["n"]] += 1
            by_worker[_i] += 1
        worker.register("t.count", handler)
    for worker in workers:
        await worker.start()
    try:
        await until(lambda: all(w.connected.is_set() for w in workers), what="workers connected")
        await enqueue_now(dsn, "t.count", [{"n": n} for n in range(200)])
        await until(lambda: len(seen) == 200, timeout=30, what="200 jobs run")
        async with owner_connection(dsn) as conn:
            await until(lambda: conn.fetchval("SELECT count(*) = 0 FROM pgqueuer"), what="the queue empty")
    finally:
        for worker in workers:
            await worker.stop()
    assert set(seen) == set(range(200)) and set(seen.values()) == {1}
    assert sum(by_worker.values()) == 200 and len(by_worker) == 2  # both took part


async def test_a_worker_whose_database_goes_away_and_comes_back_connects_again(dsn):
    seen: list[int] = []
    jobs = Jobs(dsn, heartbeat_seconds=5)

    async def record(payload):
        seen.append(payload["n"])

    jobs.register("t.record", record)
    await jobs.start()
    try:
        await asyncio.wait_for(jobs.connected.wait(), 10)
        first = jobs._conn.get_server_pid()
        # the database goes away for a while: the worker's connection is cut and no new one is accepted
        name = urlsplit(dsn).path.lstrip("/")
        async with owner_connection(with_database(dsn, "postgres")) as conn:
            await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            try:
                assert await conn.fetchval("SELECT pg_terminate_backend($1)", first)
                await until(lambda: not jobs.connected.is_set(), timeout=20, what="the loss noticed")
                await asyncio.sleep(1.5)  # its tries fail (with a growing pause between them, logged)
                assert not jobs.connected.is_set()
            finally:
                await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        # back: the worker connects again after its current pause
        await until(lambda: jobs._conn is not None and jobs.connected.is_set()
                    and jobs._conn.get_server_pid() != first, timeout=20, what="a new connection")
        await enqueue_now(dsn, "t.record", [{"n": 7}])
        await until(lambda: seen == [7], what="the job run on the new connection")
    finally:
        await jobs.stop()


async def test_enqueue_is_one_statement_in_the_callers_transaction(dsn):
    """The job exists iff the transaction commits; a key dedupes; bad kinds are refused before SQL."""
    async with owner_connection(dsn) as conn:
        tr = conn.transaction()
        await tr.start()
        assert await enqueue(conn, "t.x", {"a": 1}, key="same") is not None
        assert await enqueue(conn, "t.x", {"a": 2}, key="same") is None
        await tr.rollback()
        assert await conn.fetchval("SELECT count(*) FROM pgqueuer") == 0
        with pytest.raises(ValueError):
            await enqueue(conn, "t." + "x" * 200, {})
        for delay in (float("nan"), -1.0, 1e12):
            with pytest.raises(ValueError):
                await enqueue(conn, "t.x", {}, delay=delay)


async def test_enqueue_many_is_one_statement_with_enqueues_keys_and_checks(dsn):
    statements: list[str] = []
    async with owner_connection(dsn) as conn:
        assert await enqueue(conn, "t.many", {"n": 0}, key="held") is not None  # queued: holds its key
        conn.add_query_logger(lambda record: statements.append(record.query))
        async with conn.transaction():
            ids = await enqueue_many(conn, "t.many", [{"n": n} for n in range(1, 6)],
                                     keys=["a", "held", "a", None, "b"], delay=60)
        await asyncio.sleep(0.05)  # the query logger is called soon after each statement
        assert len([q for q in statements if q.strip().rstrip(";") not in ("BEGIN", "COMMIT")]) == 1
        rows = await conn.fetch("SELECT id, payload, dedupe_key, execute_after > now() + interval '50 s' AS later "
                                "FROM pgqueuer WHERE id = ANY($1::bigint[]) ORDER BY id", ids)
        assert [(orjson.loads(r["payload"]), r["dedupe_key"], r["later"]) for r in rows] == [
            ({"n": 1}, "a", True), ({"n": 4}, None, True), ({"n": 5}, "b", True)]  # "held" and the 2nd "a": skipped
        assert ids == [r["id"] for r in rows]
        assert await conn.fetchval("SELECT count(*) FROM pgqueuer_log WHERE job_id = ANY($1::bigint[]) "
                                   "AND status = 'queued'", ids) == 3
        await asyncio.sleep(0.05)
        statements.clear()
        assert await enqueue_many(conn, "t.many", []) == []
        for bad in ({"kind": "t." + "x" * 200}, {"keys": ["k" * 201, None]}, {"keys": ["only one"]},
                    {"delay": float("nan")}, {"delay": -1.0}):
            with pytest.raises(ValueError):
                await enqueue_many(conn, bad.get("kind", "t.many"), [{}, {}], keys=bad.get("keys"),
                                   delay=bad.get("delay", 0.0))
        await asyncio.sleep(0.05)
        assert statements == []  # nothing to queue, and refused before any SQL
