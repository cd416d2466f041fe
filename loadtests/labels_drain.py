"""The labels drain (loadtests/fulfillment.py): N paid orders with a queued label job each, two `live worker`
processes buying the labels from the fake Shippo, the first killed with -9 once --kill-at of them exist; then what
the provider holds (its transactions, read back through its own API, GET /transactions/) and what the database
holds. The drain's clock starts when the workers are started (so it includes their start-up) and stops when the
last shipment is `label_created`; the run goes on until no `shipping.buy_label` job is left (`queue_empty_s`): the
killed worker's jobs whose label it had stored before dying but whose end pgqueuer had not yet written stay
`picked` until their heartbeat is stale, and the other worker runs them again (a no-op: the label exists)."""
from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from typing import TYPE_CHECKING

import aiohttp
import asyncpg

from loadtests import fulfillment_seed as seeding

if TYPE_CHECKING:
    from loadtests.fulfillment import Run

POLL_SECONDS = 0.2  # the database is asked this often how many labels exist
MAX_PAGES = 2000  # of the provider's transaction list (100 a page)

_DONE = "SELECT count(*) FROM shipments WHERE id = ANY($1::uuid[]) AND status = 'label_created'"
_JOBS_LEFT = "SELECT count(*) FROM pgqueuer WHERE entrypoint = 'shipping.buy_label'"
_PURCHASING = "SELECT count(*) FROM shipments WHERE id = ANY($1::uuid[]) AND status = 'purchasing'"


async def numbers(dsn: str, shipment_ids: list[str]) -> list[tuple[str, str]]:
    """[(shipment id, tracking number)] of labelled shipments, in the given order."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id::text, tracking_number FROM shipments WHERE id = ANY($1::uuid[])",
                                shipment_ids)
    finally:
        await conn.close()
    found = {r["id"]: r["tracking_number"] for r in rows}
    return [(sid, found[sid]) for sid in shipment_ids if found.get(sid)]


async def provider_labels(base: str, key: str) -> list[dict]:
    """Every transaction the (fake) Shippo holds, through its list API."""
    out: list[dict] = []
    headers = {"Authorization": f"ShippoToken {key}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for page in range(1, MAX_PAGES + 1):
            async with session.get(f"{base}/transactions/", params={"results": "100", "page": str(page)}) as resp:
                resp.raise_for_status()
                body = await resp.json()
            out.extend(body["results"])
            if not body.get("next"):
                break
    return out


async def _watch(run: Run, sids: list[str], conn: asyncpg.Connection) -> dict:
    """Start the workers, kill the first at the mark, wait for every label (or the timeout)."""
    a, n = run.args, len(sids)
    kill_at = math.ceil(n * a.kill_at) if a.kill_at > 0 else None
    began = time.monotonic()
    first, second = run.worker("worker-a"), run.worker("worker-b")
    w: dict = {"killed": None, "timeline": []}
    first_label = last_progress = labelled_at = queue_empty_at = None
    done = last = 0
    while True:
        done = await conn.fetchval(_DONE, sids)
        now = time.monotonic()
        if done and first_label is None:
            first_label = now
        if done != last:
            last_progress, last = now, done
        if not w["timeline"] or now - began >= w["timeline"][-1][0] + 1:
            w["timeline"].append((round(now - began, 1), done))
        if kill_at is not None and w["killed"] is None and done >= kill_at:
            first.kill()  # SIGKILL: no goodbye, its picked jobs stay picked until their heartbeat is stale
            first.wait()
            w["killed"] = {"after_labels": done, "at_s": round(now - began, 2),
                           "purchasing_then": await conn.fetchval(_PURCHASING, sids)}
        if done >= n and labelled_at is None:
            labelled_at = last_progress
        if labelled_at is not None and not await conn.fetchval(_JOBS_LEFT):
            queue_empty_at = now
            break
        if now - began > a.drain_timeout or second.poll() is not None:
            break
        await asyncio.sleep(POLL_SECONDS)
    end = labelled_at or last_progress or time.monotonic()
    w.update(labelled=done, timed_out=queue_empty_at is None, worker_b_exit=second.poll(),
             drain_s=round(end - began, 2),
             queue_empty_s=round(queue_empty_at - began, 2) if queue_empty_at else None,
             from_first_label_s=round(end - first_label, 2) if first_label else None,
             labels_per_s=round(done / (end - began), 1) if end > began else None)
    if w["killed"]:
        w["killed"]["recovered_s"] = round(end - began - w["killed"]["at_s"], 2)
    await asyncio.to_thread(run.stop, second)
    return w


async def _state(conn: asyncpg.Connection, sids: list[str]) -> dict:
    ships = await conn.fetch("SELECT status, count(*) AS n FROM shipments WHERE id = ANY($1::uuid[]) GROUP BY status",
                             sids)
    orders = await conn.fetch(
        """SELECT status, count(*) AS n FROM orders WHERE id IN (
               SELECT order_id FROM shipments WHERE id = ANY($1::uuid[])) GROUP BY status""", sids)
    refs = await conn.fetch("SELECT id::text, provider_ref FROM shipments WHERE id = ANY($1::uuid[])", sids)
    jobs = await conn.fetch("SELECT status, count(*) AS n FROM pgqueuer WHERE entrypoint = 'shipping.buy_label' "
                            "GROUP BY status")
    log = await conn.fetch("SELECT status::text, count(*) AS n FROM pgqueuer_log "
                           "WHERE entrypoint = 'shipping.buy_label' GROUP BY status")
    return {"shipments": {r["status"]: r["n"] for r in ships}, "orders": {r["status"]: r["n"] for r in orders},
            "provider_ref": {r["id"]: r["provider_ref"] for r in refs},
            "jobs_left": {r["status"]: r["n"] for r in jobs}, "job_log": {r["status"]: r["n"] for r in log}}


def checks(sids: list[str], txs: list[dict], state: dict) -> list[dict]:
    n = len(sids)
    bought = [t for t in txs if t["status"] != "ERROR"]
    per = Counter(t["metadata"] for t in bought)
    wanted = {f"shipment:{sid}" for sid in sids}
    twice = sum(1 for c in per.values() if c > 1)
    missing = len(wanted - set(per))
    ours = {t["metadata"]: t["object_id"] for t in bought}
    mismatched = sum(1 for sid, ref in state["provider_ref"].items() if ours.get(f"shipment:{sid}") != ref)

    def check(name: str, ok: bool, value) -> dict:
        return {"name": name, "passed": bool(ok), "value": value}

    return [
        check(f"exactly {n} labels at the provider", len(bought) == n, len(bought)),
        check("none twice (per shipment metadata)", twice == 0, twice),
        check("none missing", missing == 0, missing),
        check("no label for anything else", set(per) <= wanted, len(set(per) - wanted)),
        check("each shipment stores its provider transaction", mismatched == 0, mismatched),
        check("every shipment label_created", state["shipments"] == {"label_created": n}, state["shipments"]),
        check("every order label_created", state["orders"] == {"label_created": n}, state["orders"]),
        check("no label job left (queued, running or dead)", not state["jobs_left"], state["jobs_left"]),
    ]


async def run(run: Run, n: int) -> dict:
    seeded = await seeding.seed(run.settings(shippo=True), run.dsn, n, "drain")
    sids = seeded.shipments
    conn = await asyncpg.connect(run.dsn)
    try:
        watched = await _watch(run, sids, conn)
        state = await _state(conn, sids)
    finally:
        await conn.close()
    txs = await provider_labels(run.shippo_base, run.key)
    result = {"orders": n, "workers": 2, "heartbeat_s": run.args.heartbeat,
              "jobs_concurrency": run.args.jobs_concurrency,
              "seed_s": {k: round(v, 2) for k, v in seeded.seconds.items()}, **watched,
              "provider": {"transactions": len(txs), "errors": sum(1 for t in txs if t["status"] == "ERROR")},
              "shipments_final": state["shipments"], "orders_final": state["orders"],
              "jobs_left": state["jobs_left"], "job_log": state["job_log"], "checks": checks(sids, txs, state)}
    result["shipments"] = await numbers(run.dsn, sids)
    return result
