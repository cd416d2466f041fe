"""Tracking webhooks are answered once stored, and applied by their `shipping.apply_tracking` job (real HTTP, real
PostgreSQL, the app's own job worker): with the workers stopped the answer is 200 and nothing moves until the jobs
run; an event stored while its shipment's apply job is running (held on the order's lock) gets its own job and is
applied, never lost to a dedupe; a payload that is not a shipment id is held dead at once."""
from __future__ import annotations

import pytest

from live.auth.principal import SYSTEM
from live.jobs import Permanent
from tests.helpers import until
from tests.shipping.labels_harness import order_status, tracked
from tests.shipping.test_tracking import labeled, stored, timeline

JOB = "shipping.apply_tracking"


async def post(shop, event) -> dict:
    """A signed sandbox-carrier webhook, not waiting for its job."""
    from live.commerce.shipping.carriers import sandbox_for

    sandbox = sandbox_for(shop.services.settings)
    body = sandbox.event_body(event)
    resp = await shop.client.post("/webhooks/sandbox-carrier", data=body, headers=sandbox.sign(body))
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def jobs(shop) -> list[tuple[str, dict]]:
    async with shop.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT status::text, convert_from(payload, 'utf8') FROM pgqueuer "
                                "WHERE entrypoint = $1 ORDER BY id", JOB)
    return [(r[0], r[1]) for r in rows]


async def test_the_answer_comes_before_the_apply(shop):
    _, _, order_id, row = await labeled(shop)
    events = timeline(shop, row)
    await shop.services.jobs.stop()
    answer = await post(shop, events[1])  # transit: the first scan
    assert answer == {"received": True, "events": 1, "stored": 1, "duplicates": 0, "unknown": 0}
    assert (await post(shop, events[1]))["duplicates"] == 1  # a duplicate enqueues nothing more
    assert await order_status(shop, order_id) == "label_created"  # stored, not applied yet
    assert [(e[0], e[2]) for e in await stored(shop, row["tracking_number"])] == [("transit", False)]
    queued = await jobs(shop)
    assert len(queued) == 1 and queued[0][0] == "queued" and row["sid"] in queued[0][1]
    await shop.services.jobs.drain()
    assert await order_status(shop, order_id) == "shipped"
    assert [(e[0], e[2]) for e in await stored(shop, row["tracking_number"])] == [("transit", True)]
    assert await jobs(shop) == []


async def test_an_event_stored_while_the_apply_job_runs_is_applied(shop):
    _, _, order_id, row = await labeled(shop)
    events = timeline(shop, row)
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("SELECT 1 FROM orders WHERE id = $1::uuid FOR UPDATE", order_id)  # the job waits on it
        await post(shop, events[1])

        async def picked() -> bool:
            return [s for s, _ in await jobs(shop)] == ["picked"]
        await until(picked, what="the first apply job running")
        answer = await post(shop, events[3])  # out_for_delivery, stored while that job runs
        assert answer["stored"] == 1
        assert len(await jobs(shop)) == 2  # its own job: no dedupe key could skip it
    await tracked(shop)
    assert await order_status(shop, order_id) == "out_for_delivery"
    assert [(e[0], e[2]) for e in await stored(shop, row["tracking_number"])] == [
        ("transit", True), ("out_for_delivery", True)]


async def test_a_payload_without_a_shipment_id_is_permanent(shop):
    for payload in ({}, {"shipment_id": "not-a-uuid"}, {"shipment_id": None}):
        with pytest.raises(Permanent):
            await shop.services.commerce.shipping.tracking.apply_job(payload)
    # an unknown shipment id: nothing to do, no error (its shipment may have been deleted)
    await shop.services.commerce.shipping.tracking.apply_job({"shipment_id": "00000000-0000-0000-0000-000000000000"})


async def test_a_number_spelled_otherwise_is_found_by_our_metadata(shop):
    _, _, order_id, row = await labeled(shop)
    event = timeline(shop, row)[1]
    spelled = row["tracking_number"].lower()  # the carrier spells it otherwise
    fields = {f: getattr(event, f) for f in event.__dataclass_fields__}
    answer = await post(shop, type(event)(**{**fields, "tracking_number": spelled,
                                             "metadata": f"shipment:{row['sid']}"}))
    assert (answer["stored"], answer["unknown"]) == (1, 0)
    await tracked(shop)
    assert await order_status(shop, order_id) == "shipped"
    assert [(e[0], e[2], e[3]) for e in await stored(shop, spelled)] == [("transit", True, row["sid"])]
    # our metadata with a number that is not the shipment's: stored with no shipment, moves nothing
    other = type(event)(**{**fields, "tracking_number": "SBX0000000000000002", "status": "delivered",
                           "metadata": f"shipment:{row['sid']}"})
    assert (await post(shop, other))["unknown"] == 1
    await tracked(shop)
    assert await order_status(shop, order_id) == "shipped"
    assert [(e[0], e[3]) for e in await stored(shop, "SBX0000000000000002")] == [("delivered", None)]
