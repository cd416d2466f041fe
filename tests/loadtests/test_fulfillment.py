"""The fulfillment benchmarks at a small scale (`python -m loadtests fulfillment` in a subprocess, on a fresh test
database): two real `live worker` processes buy the labels from the fake Shippo process, one killed with -9 on the
way; then a webhook storm on both carrier routes against `live serve`. The correctness parts are asserted, from the
report and again from the database; timings never are (the p99 threshold is set out of reach)."""
from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

import asyncpg
import orjson

from loadtests.tracking_storm import STEPS, plan

ROOT = Path(__file__).resolve().parents[2]


def test_the_storm_plan_is_every_event_once_plus_the_duplicate_share_shuffled():
    shipments = [(f"00000000-0000-0000-0000-{i:012d}", f"9400{i:018d}") for i in range(50)]
    for route in ("shippo", "sandbox"):
        bodies, unique = plan(shipments, route, 0.2, seed=3)
        assert unique == 200 and len(bodies) == 250  # 20 % of the webhooks repeat one
        counts = Counter(bodies)
        assert len(counts) == 200 and max(counts.values()) == 2 and sum(c == 2 for c in counts.values()) == 50
        seen: set[bytes] = set()
        repeats = [i for i, b in enumerate(bodies) if b in seen or seen.add(b)]
        assert len(repeats) == 50 and min(repeats) < 200  # shuffled: repeats are not all at the end
    shippo = [orjson.loads(b)["data"]["tracking_status"] for b in plan(shipments[:1], "shippo", 0.0, 1)[0]]
    assert sorted((s["status"], (s["substatus"] or {}).get("code", "")) for s in shippo) == [
        ("DELIVERED", ""), ("PRE_TRANSIT", ""), ("TRANSIT", ""), ("TRANSIT", "out_for_delivery")]
    sandbox = [orjson.loads(b) for b in plan(shipments[:1], "sandbox", 0.0, 1)[0]]
    assert sorted(e["status_date"] for e in sandbox) == [e["status_date"] for e in sorted(
        sandbox, key=lambda e: STEPS.index(e["status"]))]  # the status dates follow the steps


async def test_labels_drain_with_a_kill_and_tracking_storms_end_correct(dsn, tmp_path):
    out = tmp_path / "ff"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests", "fulfillment", "--database-url", dsn, "--out", str(out),
        "--orders", "24", "--storm-shipments", "12", "--heartbeat", "1", "--jobs-concurrency", "2",
        "--concurrency", "4", "--target-p99-ms", "1000000", "--server-cpus", "", "--generator-cpus", "",
        cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, stdout.decode()[-3000:] + stderr.decode()[-3000:]
    report = json.loads((out / "fulfillment.json").read_text())
    assert report["passed"] and "PASSED" in (out / "fulfillment.txt").read_text()

    drain = report["labels_drain"]
    assert all(c["passed"] for c in drain["checks"]), drain["checks"]
    assert drain["killed"] is not None and drain["killed"]["after_labels"] >= 8  # a third of 24
    assert drain["labelled"] == 24 and not drain["timed_out"] and drain["worker_b_exit"] is None
    assert drain["provider"] == {"transactions": 24, "errors": 0}
    assert drain["shipments_final"] == {"label_created": 24} and drain["jobs_left"] == {}

    storms = {s["route"]: s for s in report["tracking_storm"]}
    assert set(storms) == {"shippo", "sandbox"}
    for s in storms.values():
        assert all(c["passed"] for c in s["checks"]), s["checks"]
        assert s["sent"] == 60 and s["distinct_events"] == 48 and s["answers"] == {"200": 60}
        assert s["stored"] == 48 and s["final"]["shipments"] == {"delivered": 12}

    conn = await asyncpg.connect(dsn)  # the database, read by the test itself
    try:
        ships = Counter((r["provider"], r["status"]) for r in await conn.fetch(
            "SELECT provider, status FROM shipments WHERE kind = 'outbound'"))
        orders = Counter(r["status"] for r in await conn.fetch("SELECT status FROM orders"))
        events = await conn.fetchval("SELECT count(*) FROM shipping_events")
        dupes = await conn.fetchval("SELECT count(*) FROM (SELECT 1 FROM shipping_events GROUP BY tracking_number, "
                                    "status, status_date HAVING count(*) > 1) d")
        refs = await conn.fetchval("SELECT count(DISTINCT provider_ref) FROM shipments WHERE provider = 'shippo'")
    finally:
        await conn.close()
    # the drain's 24 (12 of them through the storm) and the sandbox route's own 12
    assert ships == {("shippo", "delivered"): 12, ("shippo", "label_created"): 12, ("sandbox", "delivered"): 12}
    assert orders == {"delivered": 24, "label_created": 12}
    assert events == 2 * 48 and dupes == 0 and refs == 24
