"""The tracking storm (loadtests/fulfillment.py): every shipment's four carrier events (pre_transit, transit,
out_for_delivery, delivered, an hour apart in status date), a share of them sent twice, all shuffled, POSTed to a
running server's carrier webhook at a bounded concurrency; then the answers, their latency and the final rows.

Two routes: `shippo` (`POST /webhooks/shippo?token=...`, Shippo's `track_updated` body with tracking_status and
an empty tracking_history: one event per request; out_for_delivery is TRANSIT with that substatus) and `sandbox`
(`POST /webhooks/sandbox-carrier`, the sandbox carrier's body, signed with its key just before sending, as its
signature is valid for 5 minutes)."""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import aiohttp
import asyncpg
import orjson

from live.commerce.shipping.carriers import SandboxCarrier
from live.commerce.shipping.carriers.base import TrackingEvent
from loadtests.stats import Hist

STEPS = ("pre_transit", "transit", "out_for_delivery", "delivered")
SHIPPO_STATUS = {"pre_transit": ("PRE_TRANSIT", None), "transit": ("TRANSIT", None),
                 "out_for_delivery": ("TRANSIT", "out_for_delivery"), "delivered": ("DELIVERED", None)}
STEP_GAP = timedelta(hours=1)  # between two events of a parcel (status dates)
REQUEST_TIMEOUT_SECONDS = 30.0


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def shippo_body(number: str, step: str, when: datetime, metadata: str) -> bytes:
    status, sub = SHIPPO_STATUS[step]
    return orjson.dumps({"event": "track_updated", "test": True, "data": {
        "carrier": "usps", "tracking_number": number, "metadata": metadata, "eta": None,
        "tracking_status": {"status": status, "status_details": f"benchmark {step}", "status_date": _iso(when),
                            "substatus": {"code": sub, "text": sub, "action_required": False} if sub else None,
                            "location": {"city": "Memphis", "state": "TN", "zip": "38118", "country": "US"}},
        "tracking_history": []}})


def sandbox_body(number: str, step: str, when: datetime, metadata: str) -> bytes:
    return SandboxCarrier.event_body(TrackingEvent(
        provider="sandbox", carrier="sandbox", tracking_number=number, status=step, substatus=None, status_date=when,
        message=f"benchmark {step}", location="Memphis, TN, US", metadata=metadata))


def plan(shipments: list[tuple[str, str]], route: str, duplicates: float, seed: int) -> tuple[list[bytes], int]:
    """The shuffled bodies for [(shipment id, tracking number)] and how many are distinct events: four per
    shipment, plus `duplicates` (a share of the total, e.g. 0.2) of them again."""
    make = shippo_body if route == "shippo" else sandbox_body
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)
    unique = [make(number, step, start + i * STEP_GAP, f"shipment:{sid}")
              for sid, number in shipments for i, step in enumerate(STEPS)]
    rnd = random.Random(seed)
    extra = min(len(unique), round(len(unique) * duplicates / (1 - duplicates))) if duplicates < 1 else len(unique)
    bodies = unique + rnd.sample(unique, extra)
    rnd.shuffle(bodies)
    return bodies, len(unique)


async def send(url: str, bodies: list[bytes], concurrency: int, signer: SandboxCarrier | None) -> dict:
    """POST every body, `concurrency` at a time (closed loop); latency from the request to its whole answer."""
    hist, codes, errors = Hist(), Counter(), Counter()
    stored = unknown = 0
    todo = iter(bodies)

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal stored, unknown
        for body in todo:
            headers = signer.sign(body) if signer else {"Content-Type": "application/json"}
            t = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    answer = await resp.read()
                    hist.add((time.perf_counter() - t) * 1000)
                    codes[resp.status] += 1
                    if resp.status == 200:
                        out = orjson.loads(answer)
                        stored += out["stored"]
                        unknown += out["unknown"]
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                errors[type(exc).__name__] += 1

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    began, cpu = time.monotonic(), time.process_time()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as s:
        await asyncio.gather(*(client(s) for _ in range(concurrency)))
    wall = time.monotonic() - began
    cpu = time.process_time() - cpu  # the generator's own CPU: near 100 % of a core, the latencies would be its own
    return {"sent": len(bodies), "answers": {str(k): v for k, v in sorted(codes.items())}, "errors": dict(errors),
            "stored": stored, "unknown": unknown, "wall_s": round(wall, 2),
            "per_s": round(len(bodies) / wall, 1) if wall else None, "latency_ms": hist.summary(),
            "generator_cpu_pct": round(100 * cpu / wall, 1) if wall else None}


async def applied(dsn: str, timeout: float) -> float | None:
    """Seconds from the last answer until no `shipping.apply_tracking` job is left (the server's job workers apply
    the stored events after answering); None when some are still left after `timeout` (the checks then fail)."""
    conn = await asyncpg.connect(dsn)
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < timeout:
            if not await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE entrypoint = 'shipping.apply_tracking'"):
                return round(time.perf_counter() - start, 2)
            await asyncio.sleep(0.05)
        return None
    finally:
        await conn.close()


async def final_state(dsn: str, shipment_ids: list[str]) -> dict:
    """What the database says after the storm about these shipments, their orders and their events."""
    conn = await asyncpg.connect(dsn)
    try:
        ships = await conn.fetch("SELECT status, count(*) AS n FROM shipments WHERE id = ANY($1::uuid[]) "
                                 "GROUP BY status", shipment_ids)
        orders = await conn.fetch(
            """SELECT o.status, count(*) AS n FROM orders o WHERE o.id IN (
                   SELECT order_id FROM shipments WHERE id = ANY($1::uuid[])) GROUP BY o.status""", shipment_ids)
        ev = await conn.fetchrow(
            """SELECT count(*) AS n, count(*) FILTER (WHERE applied) AS applied,
                      count(DISTINCT (tracking_number, status, status_date)) AS distinct_n
               FROM shipping_events WHERE shipment_id = ANY($1::uuid[])""", shipment_ids)
        history = await conn.fetchval(
            "SELECT count(*) FROM shipment_status_history WHERE shipment_id = ANY($1::uuid[]) "
            "AND actor_kind = 'carrier'", shipment_ids)
    finally:
        await conn.close()
    return {"shipments": {r["status"]: r["n"] for r in ships}, "orders": {r["status"]: r["n"] for r in orders},
            "event_rows": ev["n"], "event_rows_distinct": ev["distinct_n"], "events_applied": ev["applied"],
            "carrier_history_rows": history}


def checks(n: int, unique: int, sent: dict, state: dict) -> list[dict]:
    def check(name: str, ok: bool, value) -> dict:
        return {"name": name, "passed": bool(ok), "value": value}

    return [
        check("every answer 200", sent["answers"] == {"200": sent["sent"]} and not sent["errors"],
              {"answers": sent["answers"], "errors": sent["errors"]}),
        check("each distinct event stored once (answers)", sent["stored"] == unique and sent["unknown"] == 0,
              {"stored": sent["stored"], "distinct": unique, "unknown": sent["unknown"]}),
        check("event rows = distinct events", state["event_rows"] == state["event_rows_distinct"] == unique,
              state["event_rows"]),
        check("every event applied", state["events_applied"] == unique, state["events_applied"]),
        check("every shipment delivered", state["shipments"] == {"delivered": n}, state["shipments"]),
        check("every order delivered", state["orders"] == {"delivered": n}, state["orders"]),
    ]


async def run(url: str, dsn: str, shipments: list[tuple[str, str]], route: str, *, duplicates: float,
              concurrency: int, seed: int, signer: SandboxCarrier | None, target_p99_ms: float,
              drain_timeout: float = 600.0) -> dict:
    bodies, unique = plan(shipments, route, duplicates, seed)
    sent = await send(url, bodies, concurrency, signer)
    drain_s = await applied(dsn, drain_timeout)  # the answers come before the apply jobs: wait for them
    state = await final_state(dsn, [sid for sid, _ in shipments])
    p99 = sent["latency_ms"].get("p99")
    result = {"route": route, "url": url.split("?")[0], "shipments": len(shipments), "distinct_events": unique,
              "duplicates": len(bodies) - unique, "concurrency": concurrency, **sent,
              "apply_drain_s": drain_s, "final": state,
              "checks": checks(len(shipments), unique, sent, state),
              "thresholds": [{"name": "answer p99 ms", "limit": target_p99_ms, "value": p99,
                              "passed": p99 is not None and p99 <= target_p99_ms}]}
    return result
