"""Carrier tracking through `POST /webhooks/sandbox-carrier` (real HTTP, real PostgreSQL): events stored once,
applied in status-date order whatever the arrival order and however often they come (the same final state), the
order moved after the shipment and pushed to the buyer's socket with the shipment and its latest event, forged and
unreadable webhooks refused with nothing stored, unknown tracking numbers stored and answered 200, and concurrent
duplicates stored once."""
from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

from live.auth.principal import SYSTEM
from live.commerce.shipping.carriers import Label, sandbox_for
from live.commerce.shipping.carriers.base import TrackingEvent
from tests.shipping.labels_harness import order_history, order_status, paid_order, tracked, wait_shipment

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


async def labeled(shop):
    """(buyer, seller, order id, shipment row) of a paid order with a sandbox label."""
    buyer, seller, order_id = await paid_order(shop)
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    return buyer, seller, order_id, await wait_shipment(shop, order_id, "label_created")


def timeline(shop, row) -> list[TrackingEvent]:
    label = Label(provider_ref=row["provider_ref"], carrier="sandbox", tracking_number=row["tracking_number"],
                  label_url=None, tracking_url=None)
    return sandbox_for(shop.services.settings).timeline(label, START, 600)


async def send(shop, event: TrackingEvent, *, headers: dict | None = None) -> tuple[int, dict]:
    sandbox = sandbox_for(shop.services.settings)
    body = sandbox.event_body(event)
    resp = await shop.client.post("/webhooks/sandbox-carrier", data=body, headers=headers or sandbox.sign(body))
    answer = resp.status, await resp.json()
    await tracked(shop)  # answered before applied: its apply job has run once none is left
    return answer


async def stored(shop, tracking_number: str) -> list[tuple]:
    async with shop.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT status, status_date, applied, shipment_id::text FROM shipping_events "
                                "WHERE tracking_number = $1 ORDER BY status_date, id", tracking_number)
    return [tuple(r) for r in rows]


async def test_shuffled_and_duplicated_events_end_delivered(shop):
    rng = random.Random(13)
    for _ in range(2):  # two parcels, two arrival orders
        buyer, _, order_id, row = await labeled(shop)
        events = timeline(shop, row)
        arrivals = events + rng.sample(events, 3)
        rng.shuffle(arrivals)
        answers = [await send(shop, e) for e in arrivals]
        assert all(status == 200 for status, _ in answers)
        assert sum(body["stored"] for _, body in answers) == 5
        assert await order_status(shop, order_id) == "delivered"
        ship = await wait_shipment(shop, order_id, "delivered")
        assert ship["delivered_at"] == events[-1].status_date and ship["shipped_at"] == events[1].status_date
        assert ship["last_event"]["status"] == "delivered"
        events_now = await stored(shop, row["tracking_number"])
        assert [e[0] for e in events_now] == ["pre_transit", "transit", "transit", "out_for_delivery", "delivered"]
        assert all(e[2] and e[3] == row["sid"] for e in events_now)
        history = await order_history(shop, order_id)
        assert history[:3] == ["pending_payment", "paid", "label_created"] and history[-1] == "delivered"
        assert len(history) == len(set(history))  # never back and forth
        detail = await shop.call("GET", f"/me/orders/{order_id}", buyer)
        [ship_out] = detail["shipments"]
        assert [e["status"] for e in ship_out["events"]] == [e.status for e in events]
        assert ship_out["status"] == "delivered" and detail["status"] == "delivered"


async def test_in_order_each_step_moves_the_order_and_is_pushed(shop):
    buyer, seller, order_id, row = await labeled(shop)
    sock = await shop.viewer(buyer)
    try:
        expect = ["label_created", "shipped", "in_transit", "out_for_delivery", "delivered"]
        for event, status in zip(timeline(shop, row), expect):
            assert (await send(shop, event))[0] == 200
            assert await order_status(shop, order_id) == status
            if status != "label_created":
                got = await sock.wait_for("order:update", lambda d, s=status: d["order"]["status"] == s)
                assert got["shipment"]["tracking_number"] == row["tracking_number"]
                assert got["tracking"]["status"] == event.status
                assert got["tracking"]["message"] == event.message
        assert await order_history(shop, order_id) == ["pending_payment", "paid", "label_created", "shipped",
                                                      "in_transit", "out_for_delivery", "delivered"]
        seller_view = await shop.call("GET", f"/seller/orders/{order_id}", seller)
        assert [h["to"] for h in seller_view["shipments"][0]["history"]] == [
            "pending", "purchasing", "label_created", "pre_transit", "in_transit", "out_for_delivery", "delivered"]
    finally:
        await sock.close()


async def test_a_late_older_event_moves_nothing_back(shop):
    _, _, order_id, row = await labeled(shop)
    events = timeline(shop, row)
    await send(shop, events[3])  # out for delivery first
    assert await order_status(shop, order_id) == "out_for_delivery"
    status, body = await send(shop, events[0])  # pre_transit, older: part of the history, moves nothing back
    assert status == 200 and body["stored"] == 1
    assert await order_status(shop, order_id) == "out_for_delivery"
    late = TrackingEvent(**{**_fields(events[0]), "status_date": events[3].status_date + timedelta(minutes=1)})
    assert (await send(shop, late))[1]["stored"] == 1  # a lower rank dated after: stored, never applied
    assert await order_status(shop, order_id) == "out_for_delivery"
    assert [(e[0], e[2]) for e in await stored(shop, row["tracking_number"])] == [
        ("pre_transit", True), ("out_for_delivery", True), ("pre_transit", False)]
    # a failed attempt, then a newer attempt, then delivered
    fail = TrackingEvent(**{**_fields(events[3]), "status": "failure", "status_date": events[3].status_date
                            + timedelta(hours=1), "message": "Nobody home"})
    await send(shop, fail)
    assert await order_status(shop, order_id) == "delivery_failed"
    again = TrackingEvent(**{**_fields(events[3]), "status_date": events[3].status_date + timedelta(days=1)})
    await send(shop, again)
    assert await order_status(shop, order_id) == "out_for_delivery"
    await send(shop, TrackingEvent(**{**_fields(events[4]), "status_date": again.status_date + timedelta(hours=2)}))
    assert await order_status(shop, order_id) == "delivered"


def _fields(e: TrackingEvent) -> dict:
    return {f: getattr(e, f) for f in TrackingEvent.__dataclass_fields__}


async def test_concurrent_duplicates_are_stored_once(shop):
    _, _, order_id, row = await labeled(shop)
    events = timeline(shop, row)
    answers = await asyncio.gather(*(send(shop, e) for e in events * 4))
    assert all(status == 200 for status, _ in answers)
    assert sum(body["stored"] for _, body in answers) == 5
    assert len(await stored(shop, row["tracking_number"])) == 5
    assert await order_status(shop, order_id) == "delivered"


async def test_forged_unreadable_and_unknown(shop):
    _, _, order_id, row = await labeled(shop)
    event = timeline(shop, row)[1]
    sandbox = sandbox_for(shop.services.settings)
    body = sandbox.event_body(event)
    other = sandbox_for(type(shop.services.settings)(**{**shop.services.settings.model_dump(),
                                                          "sandbox_carrier_secret": "another-secret-0123456789"}))
    for headers in ({}, {"X-Sandbox-Carrier-Signature": "t=1,v1=00"}, other.sign(body),
                    sandbox.sign(body, timestamp=int(datetime.now().timestamp()) - 3600)):
        resp = await shop.client.post("/webhooks/sandbox-carrier", data=body, headers=headers)
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_signature"
    garbage = b'{"tracking_number": 5}'
    resp = await shop.client.post("/webhooks/sandbox-carrier", data=garbage, headers=sandbox.sign(garbage))
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_payload"
    assert await stored(shop, row["tracking_number"]) == []
    assert await order_status(shop, order_id) == "label_created"

    unknown = TrackingEvent(**{**_fields(event), "tracking_number": "SBX0000000000000001"})
    status, out = await send(shop, unknown)
    assert status == 200 and out == {"received": True, "events": 1, "stored": 1, "duplicates": 0, "unknown": 1}
    assert [(e[0], e[2], e[3]) for e in await stored(shop, "SBX0000000000000001")] == [("transit", False, None)]
    status, out = await send(shop, unknown)
    assert status == 200 and (out["stored"], out["duplicates"], out["unknown"]) == (0, 1, 1)
    # no Shippo key: no Shippo webhooks
    resp = await shop.client.post("/webhooks/shippo?token=whatever", data=b"{}")
    assert resp.status == 404


async def test_odd_but_signed_content_is_kept_or_refused_never_a_500(shop):
    _, _, order_id, row = await labeled(shop)
    event = timeline(shop, row)[1]
    nul = TrackingEvent(**{**_fields(event), "message": "left\x00at the door", "location": "A\x00B"})
    status, out = await send(shop, nul)
    assert status == 200 and out["stored"] == 1
    assert await order_status(shop, order_id) == "shipped"
    ancient = TrackingEvent(**{**_fields(event), "status": "delivered",
                               "status_date": datetime(1990, 1, 1, tzinfo=timezone.utc)})
    status, out = await send(shop, ancient)
    assert status == 400 and out["error"]["code"] == "invalid_payload"
    assert [e[0] for e in await stored(shop, row["tracking_number"])] == ["transit"]
