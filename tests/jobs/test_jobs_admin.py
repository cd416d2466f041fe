"""The admins' job desk over real HTTP and the job gauges of /metrics: dead jobs listed with their last error (a
bounded keyset page), requeued (admins only; 409 when not dead; audited) and then run, discarded; the counts per
kind and state read at scrape time."""
from __future__ import annotations

from live.auth.principal import SYSTEM
from live.jobs import Jobs, enqueue
from tests.helpers import dead_jobs, owner_connection


async def test_dead_jobs_listed_requeued_and_discarded_by_admins_only(shop, dsn):
    admin, buyer = await shop.user(role="admin"), await shop.user()
    ids = await dead_jobs(dsn, 3)
    await shop.call("GET", "/admin/jobs?state=dead", buyer, expect=403)
    await shop.call("GET", "/admin/jobs?state=dead", expect=401)  # signed out
    await shop.call("GET", "/admin/jobs?state=sleeping", admin, expect=400)
    await shop.call("GET", "/admin/jobs?limit=201", admin, expect=400)
    await shop.call("GET", "/admin/jobs?cursor=nonsense", admin, expect=400)

    first = await shop.call("GET", "/admin/jobs?state=dead&kind=t.admin&limit=2", admin)
    assert [j["id"] for j in first["items"]] == [ids[2], ids[1]] and first["next_cursor"]
    rest = await shop.call("GET", f"/admin/jobs?state=dead&kind=t.admin&limit=2&cursor={first['next_cursor']}", admin)
    assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    job = rest["items"][0]
    assert (job["kind"], job["state"], job["attempts"]) == ("t.admin", "dead", 1)
    assert job["last_error"] == "Permanent: refused 0"
    assert (await shop.call("GET", "/admin/jobs?state=queued&kind=t.admin", admin))["items"] == []

    await shop.call("POST", f"/admin/jobs/{ids[0]}/requeue", buyer, expect=403)
    await shop.call("POST", "/admin/jobs/999999999/requeue", admin, expect=404)
    await shop.call("POST", "/admin/jobs/not-a-number/requeue", admin, expect=404)
    back = await shop.call("POST", f"/admin/jobs/{ids[0]}/requeue", admin)
    assert (back["id"], back["state"], back["attempts"]) == (ids[0], "queued", 0)
    err = await shop.call("POST", f"/admin/jobs/{ids[0]}/requeue", admin, expect=409)
    assert err["error"]["code"] == "conflict"
    await shop.call("DELETE", f"/admin/jobs/{ids[0]}", admin, expect=409)  # only a dead job is discarded

    # the requeued job runs (its kind mended) and is gone
    ran: list[dict] = []
    mended = Jobs(dsn)

    async def accept(payload):
        ran.append(payload)

    mended.register("t.admin", accept)
    await mended.drain()
    assert ran == [{"n": 0}]

    await shop.call("DELETE", f"/admin/jobs/{ids[1]}", buyer, expect=403)
    assert await shop.call("DELETE", f"/admin/jobs/{ids[1]}", admin) == {"id": ids[1], "discarded": True}
    await shop.call("DELETE", f"/admin/jobs/{ids[1]}", admin, expect=404)
    left = await shop.call("GET", "/admin/jobs?kind=t.admin", admin)
    assert [(j["id"], j["state"]) for j in left["items"]] == [(ids[2], "dead")]
    async with shop.services.db.tx(SYSTEM) as conn:
        audit = await conn.fetch("SELECT action, entity_id, actor_id::text AS actor FROM audit_log "
                                 "WHERE entity = 'job' ORDER BY id")
    assert [(a["action"], a["entity_id"], a["actor"]) for a in audit] == [
        ("job.requeue", str(ids[0]), admin.id), ("job.discard", str(ids[1]), admin.id)]


def gauge(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not in /metrics")


async def test_metrics_count_jobs_per_kind_and_state(shop, dsn):
    await dead_jobs(dsn, 2)
    async with owner_connection(dsn) as conn:
        await enqueue(conn, "t.waiting", {})
        await enqueue(conn, "t.waiting", {}, delay=3600)
        await conn.execute("UPDATE pgqueuer SET execute_after = now() - interval '90 seconds' "
                           "WHERE entrypoint = 't.waiting' AND execute_after < now() + interval '1 minute'")
        await enqueue(conn, "t.later", {})
        await conn.execute("UPDATE pgqueuer SET attempts = 2, execute_after = now() + interval '1 hour' "
                           "WHERE entrypoint = 't.later'")
    text = await (await shop.client.get("/metrics")).text()
    assert gauge(text, "live_jobs", kind="t.admin", state="dead") == 2
    assert gauge(text, "live_jobs", kind="t.admin", state="queued") == 0
    assert gauge(text, "live_jobs", kind="t.waiting", state="queued") == 2
    assert gauge(text, "live_jobs", kind="t.later", state="retrying") == 1
    assert 90 <= gauge(text, "live_jobs_oldest_due_seconds", kind="t.waiting") < 600
    assert gauge(text, "live_jobs_oldest_due_seconds", kind="t.later") == 0  # waiting, but not due
    # the kinds this process runs are reported even with nothing queued
    assert gauge(text, "live_jobs", kind="email.send", state="running") == 0
