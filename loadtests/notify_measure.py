"""One run of the notification benchmark (loadtests/notify.py), on the tool's event loop: the room's chat runs (the
audience coordinator), the online followers are connected (their process), t0 = the start call; then the database
is polled until everything is enqueued, the sink until every mail arrived, the followers' process for their first
`notification:new`; the chat's per-second latency histograms give its p99 before, during and after."""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import aiohttp
import asyncpg

from loadtests.probe import ServerProbe
from loadtests.report import build
from loadtests.scenarios import sleep_until
from loadtests.stats import Hist

if TYPE_CHECKING:
    from loadtests.notify import Run
    from loadtests.notify_seed import Seller

POLL_SECONDS = 0.05  # the database is asked this often whether everything is enqueued
SINK_POLL_SECONDS = 0.25
MAIL_SETTLE_SECONDS = 1.0  # after the last expected mail: copies would arrive meanwhile
MAIL_IDLE_SECONDS = 15.0  # once enqueued: no new mail at the sink for this long ends the wait
KIND = "follow.live_now"
START_TIMEOUT_SECONDS = 30.0  # the start call's answer

_MARKS = """SELECT (SELECT coalesce(max(id), 0) FROM notifications) AS notifications,
                   (SELECT coalesce(max(id), 0) FROM email_outbox) AS outbox"""
_COUNTS = """SELECT (SELECT count(*) FROM notifications WHERE id > $1) AS notifications,
                    (SELECT count(*) FROM email_outbox WHERE id > $2) AS outbox"""
_JOBS = """SELECT count(*) FROM (SELECT id FROM pgqueuer WHERE entrypoint = 'email.send' AND created >= $1
                                 UNION SELECT job_id FROM pgqueuer_log WHERE entrypoint = 'email.send'
                                       AND created >= $1) j"""
_FINAL = """SELECT
    (SELECT count(*) FROM notifications WHERE id > $1 AND kind = $3 AND data->>'stream_id' = $4) AS rows,
    (SELECT count(DISTINCT user_id) FROM notifications WHERE id > $1 AND kind = $3) AS users,
    (SELECT count(*) FROM notifications WHERE id > $1 AND kind = $3 AND delivered_at IS NOT NULL) AS delivered,
    (SELECT count(*) FROM notifications WHERE id > $1 AND kind <> $3) AS other_kinds,
    (SELECT count(*) FROM email_outbox WHERE id > $2 AND kind = $3) AS outbox,
    (SELECT count(DISTINCT user_id) FROM email_outbox WHERE id > $2 AND kind = $3) AS outbox_users,
    (SELECT count(*) FROM email_outbox WHERE id > $2 AND kind = $3 AND sent_at IS NOT NULL) AS sent"""


_JOB_LOG = """SELECT entrypoint, status::text AS status, count(*) AS n, extract(epoch FROM min(created)) AS first,
                      extract(epoch FROM max(created)) AS last
               FROM pgqueuer_log WHERE created >= $1 GROUP BY 1, 2 ORDER BY 1, 4"""
_STAMPS = """SELECT
    (SELECT extract(epoch FROM min(created_at)) FROM notifications WHERE id > $1) AS notifications_tx,
    (SELECT extract(epoch FROM min(delivered_at)) FROM notifications WHERE id > $1) AS deliver_tx_first,
    (SELECT extract(epoch FROM max(delivered_at)) FROM notifications WHERE id > $1) AS deliver_tx_last,
    (SELECT extract(epoch FROM min(created_at)) FROM email_outbox WHERE id > $2) AS outbox_tx,
    (SELECT extract(epoch FROM min(sent_at)) FROM email_outbox WHERE id > $2) AS first_sent,
    (SELECT extract(epoch FROM max(sent_at)) FROM email_outbox WHERE id > $2) AS last_sent"""


async def timeline(conn: asyncpg.Connection, marks, t0: float) -> dict:
    """When each step happened, in seconds from t0, from the database's own clock: the job log (queued, picked,
    successful per job kind: first and last) and the transaction times stored in the rows (now() of the
    transaction that wrote them)."""
    def off(v) -> float | None:
        return None if v is None else round(float(v) - t0, 3)

    jobs = {}
    for r in await conn.fetch(_JOB_LOG, _ts(t0)):
        jobs.setdefault(r["entrypoint"], {})[r["status"]] = {"n": r["n"], "first": off(r["first"]),
                                                             "last": off(r["last"])}
    stamps = await conn.fetchrow(_STAMPS, marks["notifications"], marks["outbox"])
    return {"jobs": jobs, "rows": {k: off(v) for k, v in stamps.items()}}


async def enqueued(dsn: str, marks, expected: int, t0: float, timeout: float) -> dict:
    """Seconds from t0 until every follower's notification row, then its outbox row, exists (committed)."""
    conn = await asyncpg.connect(dsn)
    out: dict = {"notifications_s": None, "outbox_s": None, "timeline": []}
    n = {"notifications": 0, "outbox": 0}
    try:
        while time.time() - t0 < timeout:
            n = await conn.fetchrow(_COUNTS, marks["notifications"], marks["outbox"])
            now = round(time.time() - t0, 3)
            if not out["timeline"] or out["timeline"][-1][1:] != (n["notifications"], n["outbox"]):
                out["timeline"].append((now, n["notifications"], n["outbox"]))
            if out["notifications_s"] is None and n["notifications"] >= expected:
                out["notifications_s"] = now
            if out["outbox_s"] is None and n["outbox"] >= expected:
                out["outbox_s"] = now
                out["email_jobs_then"] = await conn.fetchval(_JOBS, _ts(t0))
            if out["notifications_s"] is not None and out["outbox_s"] is not None:
                break
            await asyncio.sleep(POLL_SECONDS)
        out["notifications"], out["outbox"] = n["notifications"], n["outbox"]
    finally:
        await conn.close()
    return out


def _ts(epoch: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc)


_QUEUE = """SELECT count(*) FILTER (WHERE status = 'queued') AS queued, count(*) FILTER (WHERE status = 'picked')
                   AS picked FROM pgqueuer WHERE entrypoint = 'email.send'"""
QUEUE_POLL_SECONDS = 0.5


async def queue_watch(dsn: str, t0: float, stop: asyncio.Event) -> list[tuple[float, int, int]]:
    """(s from t0, queued, picked) of the email.send jobs every QUEUE_POLL_SECONDS until `stop`: whether the job
    runner keeps its JOBS_CONCURRENCY slots busy while mails are sent."""
    conn = await asyncpg.connect(dsn)
    out = []
    try:
        while not stop.is_set():
            r = await conn.fetchrow(_QUEUE)
            out.append((round(time.time() - t0, 1), r["queued"], r["picked"]))
            try:
                await asyncio.wait_for(stop.wait(), QUEUE_POLL_SECONDS)
            except asyncio.TimeoutError:
                pass
    finally:
        await conn.close()
    return out


async def mails(sink_url: str, t0: float, expected: int, timeout: float, enqueue_task: asyncio.Task,
                full_poll: bool = False) -> dict:
    """The sink's count since t0, once every expected mail arrived (or none came for MAIL_IDLE_SECONDS after the
    enqueueing ended, or the timeout)."""
    last_n, last_change = -1, time.time()
    async with aiohttp.ClientSession() as s:
        while True:
            async with s.get(f"{sink_url}/stats", params={"since": str(t0), "full": "1" if full_poll else "0"}) as resp:
                stats = await resp.json()
            now = time.time()
            if stats["messages"] != last_n:
                last_n, last_change = stats["messages"], now
            if stats["messages"] >= expected:  # a moment more, for any copy sent twice to show up
                await asyncio.sleep(MAIL_SETTLE_SECONDS)
                break
            if now - t0 > timeout or (enqueue_task.done() and now - last_change > MAIL_IDLE_SECONDS):
                break
            await asyncio.sleep(SINK_POLL_SECONDS)
        async with s.get(f"{sink_url}/stats", params={"since": str(t0)}) as resp:
            return await resp.json()


def window(coord, start: float, end: float, overlap: bool = False) -> dict:
    """Chat delivery latency of the seconds wholly inside [start, end] (wall clock), or with `overlap` of every
    second that overlaps it: a tick at second k of the audience holds the samples that arrived in (k-1, k] after
    its t0."""
    h = Hist()
    lo, hi = start - coord.t0, end - coord.t0
    for k, hist in coord.lat_by_second.items():
        inside = (k > lo and k - 1 < hi) if overlap else (k - 1 >= lo - 1e-6 and k <= hi + 1e-6)
        if inside:
            h.merge(hist)
    return h.summary()


def percentiles(values: list[float]) -> dict:
    h = Hist()
    for v in values:
        h.add(v)
    return h.summary()


async def measure(run: Run, seller: Seller, stream_id: str, followers: int, online: int, args, coord,
                  fconn) -> dict:
    """The followers' process is connected ("ready" read), the audience's processes are joining."""
    a = run.args
    coord_task = asyncio.create_task(coord.main())
    while "joined" not in coord.times:
        if coord_task.done():
            coord_task.result()
            raise SystemExit("the audience ended before joining")
        await asyncio.sleep(0.05)
    go_at = coord.times["joined"] + 0.3  # the coordinator's GO_DELAY for the audience
    await sleep_until(go_at + a.before)
    probes = {"server": ServerProbe(run.server.pid),
              **{"worker" + (f"_{i + 1}" if i else ""): ServerProbe(w.pid) for i, w in enumerate(run.workers)},
              "postgres": ServerProbe(run.postmaster())}
    conn = await asyncpg.connect(run.dsn)
    try:
        marks = await conn.fetchrow(_MARKS)
    finally:
        await conn.close()
    for p in probes.values():
        p.mark("t0")
    sink0 = await _sink_cpu(run.sink_url)
    t0 = time.time()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=START_TIMEOUT_SECONDS)) as s:
        async with s.post(f"{run.url}/api/v1/livestreams/{stream_id}/start", json={},
                          headers={"Authorization": f"Bearer {seller.token}"}) as resp:
            start_status, start_body = resp.status, await resp.text()
    answered = time.time()
    fconn.send(("collect", {"since": t0, "until": t0 + a.timeout}))
    notices_task = asyncio.create_task(asyncio.to_thread(fconn.recv))
    enqueue_task = asyncio.create_task(enqueued(run.dsn, marks, followers, t0, a.timeout))
    stop = asyncio.Event()
    watch_task = asyncio.create_task(queue_watch(run.dsn, t0, stop))
    sink = await mails(run.sink_url, t0, followers, a.timeout, enqueue_task, a.sink_full_poll)
    enq = await enqueue_task
    stop.set()
    queue = await watch_task
    kind, notices = await notices_task
    fconn.send(("stop", {}))
    firsts = [f for f in notices.get("firsts", ()) if f is not None] if kind == "result" else []
    fanout = max([t0 + (enq["outbox_s"] or 0), t0 + (enq["notifications_s"] or 0), *firsts])  # rows and pushes
    done = max(fanout, sink["last"] or t0)
    for p in probes.values():
        p.mark("done")
    sink1 = await _sink_cpu(run.sink_url)
    conn = await asyncpg.connect(run.dsn)
    try:
        final = dict(await conn.fetchrow(_FINAL, marks["notifications"], marks["outbox"], KIND, stream_id))
        steps = await timeline(conn, marks, t0)
    finally:
        await conn.close()
    out = await coord_task
    chat = build(args, coord, out, coord.scenario, None)
    until = go_at + args.duration
    result = {
        "followers": followers, "online": online, "start": {"status": start_status, "body": start_body[:300],
                                                            "answer_ms": round((answered - t0) * 1000, 1)},
        "enqueue": enq, "final": final, "steps": steps, "email_jobs_by_time": queue,
        "mail": {**{k: sink[k] for k in ("messages", "distinct_message_ids", "without_message_id", "recipients",
                                         "max_per_recipient", "dropped", "refused_auth", "per_second")},
                 "first_s": round(sink["first"] - t0, 3) if sink["first"] else None,
                 "last_s": round(sink["last"] - t0, 3) if sink["last"] else None,
                 "per_s": round((sink["messages"] - 1) / (sink["last"] - sink["first"]), 1)
                 if sink["messages"] > 1 and sink["last"] > sink["first"] else None,
                 "per_s_from_t0": round(sink["messages"] / (sink["last"] - t0), 1) if sink["last"] else None},
        "notices": {"expected": online, "connected": notices.get("connected"), "received": len(firsts),
                    "kinds": notices.get("kinds"), "per_socket": notices.get("notices_per_socket"),
                    "errors": notices.get("errors"),
                    "latency_ms": percentiles([(f - t0) * 1000 for f in firsts])},
        "window_s": round(done - t0, 3),
        "fanout_s": round(fanout - t0, 3),
        "chat": {"before": window(coord, go_at + 1, t0), "during": window(coord, t0, done, overlap=True),
                 "fanout": window(coord, t0, fanout, overlap=True), "mail": window(coord, fanout, done),
                 "after": window(coord, done, until), "delivery": chat["delivery"],
                 "whole_run": chat["latency_ms"]["delivery"], "errors": chat["errors"],
                 "generator_busiest_pct": chat["generator"]["busiest_pct"],
                 "during_truncated": done > until},
        "cpu_pct": {name: p.cpu_pct("t0", "done") for name, p in probes.items()},
        "server_cpu_by_second": [(round(k + coord.t0 - t0), round(v)) for k, v in sorted(coord.server_by_second.items())
                                 if t0 - 3 <= k + coord.t0 <= done + 3],
        "sink_cpu_pct": round(100 * (sink1 - sink0) / (done - t0), 1) if done > t0 else None,
    }
    result["checks"] = checks(result, followers, online)
    result["targets"] = targets(result, a)
    return result


async def _sink_cpu(sink_url: str) -> float:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{sink_url}/stats", params={"since": str(time.time() + 3600)}) as resp:
            return (await resp.json())["cpu_s"]


def checks(r: dict, followers: int, online: int) -> list[dict]:
    f, m, n = r["final"], r["mail"], r["notices"]

    def check(name: str, ok: bool, value) -> dict:
        return {"name": name, "passed": bool(ok), "value": value}

    return [
        check("the start answered 200", r["start"]["status"] == 200, r["start"]["status"]),
        check(f"one {KIND} notification per follower", f["rows"] == f["users"] == followers and not f["other_kinds"],
              {k: f[k] for k in ("rows", "users", "other_kinds")}),
        check("every notification delivered (channels queued)", f["delivered"] == followers, f["delivered"]),
        check("one outbox row per follower, all sent", f["outbox"] == f["outbox_users"] == f["sent"] == followers,
              {k: f[k] for k in ("outbox", "outbox_users", "sent")}),
        check("one mail per follower at the sink, distinct Message-IDs",
              m["messages"] == m["recipients"] == m["distinct_message_ids"] == followers
              and m["max_per_recipient"] == 1, {k: m[k] for k in ("messages", "recipients", "distinct_message_ids",
                                                                  "max_per_recipient")}),
        check("every online follower got notification:new", n["received"] == online == n["connected"],
              {"received": n["received"], "online": online, "connected": n["connected"]}),
        check("the room's chat delivered (>= 99.9 %)", (r["chat"]["delivery"].get("delivered_ratio") or 0) >= 0.999,
              r["chat"]["delivery"].get("delivered_ratio")),
    ]


def targets(r: dict, a) -> list[dict]:
    e, m, n = r["enqueue"], r["mail"], r["notices"]["latency_ms"]
    enq = max(e["notifications_s"] or 1e9, e["outbox_s"] or 1e9)
    return [
        {"name": "all enqueued (s)", "limit": a.target_enqueue_s, "value": enq if enq < 1e9 else None,
         "passed": enq <= a.target_enqueue_s},
        {"name": "mails/s at the sink (first to last)", "limit": a.target_mail_per_s, "value": m["per_s"],
         "passed": (m["per_s"] or 0) >= a.target_mail_per_s},
        {"name": "every online notice (max ms)", "limit": a.target_notice_s * 1000, "value": n["max"],
         "passed": n["max"] is not None and n["max"] <= a.target_notice_s * 1000},
        {"name": "chat p99 during the fan-out vs before (ms)", "limit": r["chat"]["before"]["p99"],
         "value": r["chat"]["fanout"]["p99"], "passed": None},
    ]
