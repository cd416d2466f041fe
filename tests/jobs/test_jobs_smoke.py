"""The job queue's core against real PostgreSQL: a job enqueued in a transaction runs once after the commit, not
at all after a rollback; a failing job is retried then held (dead)."""
import asyncpg

from live.jobs import Jobs, Permanent, enqueue


async def test_enqueue_commit_rollback_and_dead(dsn):
    seen: list[dict] = []
    jobs = Jobs(dsn)

    async def ok(payload):
        seen.append(payload)

    async def bad(payload):
        raise Permanent("no")

    jobs.register("t.ok", ok)
    jobs.register("t.bad", bad)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await enqueue(conn, "t.ok", {"n": 1})
        tr = conn.transaction()
        await tr.start()
        await enqueue(conn, "t.ok", {"n": 2})
        await tr.rollback()
        async with conn.transaction():
            await enqueue(conn, "t.bad", {"n": 3})
            assert await enqueue(conn, "t.ok", {"n": 4}, key="k") is not None
            assert await enqueue(conn, "t.ok", {"n": 5}, key="k") is None
        await jobs.drain()
        assert sorted(p["n"] for p in seen) == [1, 4]
        held = await conn.fetch("SELECT entrypoint FROM pgqueuer WHERE status = 'failed'")
        assert [r["entrypoint"] for r in held] == ["t.bad"]
    finally:
        await conn.close()
