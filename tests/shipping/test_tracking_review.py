"""Tracking corner cases found in review: a scan stored but not yet applied blocks a void; a parcel the seller
marked delivered by hand stays delivered when a late carrier scan arrives; scans reported before our label's
purchase was recorded count once it is; one event dated out of range no longer sinks the delivery's others."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from live.auth.principal import SYSTEM
from live.commerce.shipping.carriers.base import TrackingEvent
from live.commerce.shipping.carriers.sandbox import tracking_number_for
from tests.shipping.fake_shippo import send_track_webhook, status_entry, track_body
from tests.shipping.labels_harness import (
    SHIPPO_TOKEN as TOKEN,
)
from tests.shipping.labels_harness import (
    order_status,
    paid_order,
    shipment_row,
    shippo_shop,
    tracked,
    wait_shipment,
)
from tests.shipping.test_tracking import labeled, send, timeline

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def scan(number: str, status: str, when: datetime) -> TrackingEvent:
    return TrackingEvent(provider="sandbox", carrier="sandbox", tracking_number=number, status=status,
                         substatus=None, status_date=when, message=None, location=None, metadata=None)


async def test_a_scan_waiting_for_its_apply_job_blocks_the_void(shop):
    _, seller, order_id, row = await labeled(shop)
    await shop.services.jobs.stop()  # the scan is stored and answered, its apply job waits
    sandbox_scan = timeline(shop, row)[1]
    sandbox = shop.services.commerce.shipping.sandbox_run.sandbox
    body = sandbox.event_body(sandbox_scan)
    resp = await shop.client.post("/webhooks/sandbox-carrier", data=body, headers=sandbox.sign(body))
    assert resp.status == 200 and (await resp.json())["stored"] == 1
    assert (await shipment_row(shop, order_id))["status"] == "label_created"  # not applied yet
    body = await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=409)
    assert "scanned" in body["error"]["message"]
    await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "canceled"}, expect=409)
    await shop.services.jobs.drain()
    assert await order_status(shop, order_id) == "shipped"


async def test_a_late_scan_never_moves_a_parcel_delivered_by_hand_back(shop):
    _, seller, order_id = await paid_order(shop)
    number = "1Z999AA10123456784"
    await shop.call("POST", f"/seller/orders/{order_id}/tracking", seller,
                    json={"carrier": "ups", "tracking_number": number}, expect=201)
    await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "delivered"})
    delivered = await shipment_row(shop, order_id)
    status, out = await send(shop, scan(number, "transit", NOW - timedelta(days=1)))
    assert status == 200 and out["stored"] == 1
    row = await shipment_row(shop, order_id)
    assert (row["status"], row["delivered_at"]) == ("delivered", delivered["delivered_at"])
    assert await order_status(shop, order_id) == "delivered"


async def test_scans_before_the_label_was_recorded_count_once_it_is(shop):
    _, seller, order_id = await paid_order(shop)
    await shop.services.jobs.stop()  # the label job has not run: the carrier reports the parcel first
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    sid = (await shipment_row(shop, order_id))["sid"]
    number = tracking_number_for(sid)
    status, out = await send(shop, scan(number, "transit", NOW))
    assert status == 200 and out["unknown"] == 1
    await shop.services.commerce.shipping.labels.buy_job({"shipment_id": sid})
    await shop.services.jobs.drain()
    row = await wait_shipment(shop, order_id, "in_transit")
    assert row["tracking_number"] == number
    assert await order_status(shop, order_id) == "shipped"


async def test_one_shippo_entry_out_of_range_is_dropped_and_the_others_count(tmp_path, dsn, aiohttp_client, fake):
    shop = await shippo_shop(tmp_path, dsn, aiohttp_client, fake)
    _, seller, order_id = await paid_order(shop)
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    number = (await wait_shipment(shop, order_id, "label_created"))["tracking_number"]
    history = [status_entry("TRANSIT", status_date=NOW - timedelta(hours=1)),
               status_entry("DELIVERED", status_date="1990-01-01T00:00:00Z")]
    body = track_body(number, "TRANSIT", status_date=NOW - timedelta(hours=1), history=history)
    status, answer = await send_track_webhook(str(shop.client.make_url("/webhooks/shippo")), body, token=TOKEN)
    assert status == 200, answer
    await tracked(shop)
    assert await order_status(shop, order_id) == "shipped"
    async with shop.services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT count(*) FROM shipping_events WHERE tracking_number = $1 "
                                   "AND status_date < '2000-01-01'", number) == 0


async def test_deliveries_arriving_together_are_stored_together_and_each_answered_for_itself(shop):
    """Group commit: 40 concurrent deliveries (20 events, each sent twice) share transactions; each answer counts
    its own event, every event is stored once, and all are applied."""
    rows = [(await labeled(shop))[3] for _ in range(5)]
    events = [e for row in rows for e in timeline(shop, row)[:4]]
    tracking = shop.services.commerce.shipping.tracking
    answers = await asyncio.gather(*[tracking.store([e]) for e in events + events])
    assert all(a["events"] == 1 and a["stored"] + a["duplicates"] == 1 for a in answers)
    assert sum(a["stored"] for a in answers) == 20 and sum(a["duplicates"] for a in answers) == 20
    await tracked(shop)
    for row in rows:
        assert (await shipment_row(shop, row["order_id"]))["status"] == "out_for_delivery"
