"""Labels with the sandbox carrier, over real HTTP and PostgreSQL with the in-process job worker: a seller buys a
label (202, pending -> purchasing -> label_created by the job, the order label_created, pushed), the label PDF
(seller only), a second purchase refused, auto-purchase on payment, voids before and after the first scan,
canceling an order with a label, and manual tracking (validation per field, shipped, delivered by hand)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from live.auth.principal import SYSTEM
from live.commerce.shipping.carriers import sandbox_for
from live.commerce.shipping.carriers.base import TrackingEvent
from tests.shipping.labels_harness import (
    order_history,
    order_status,
    paid_order,
    shipment_history,
    shipment_row,
    tracked,
    wait_order,
    wait_shipment,
)


async def test_seller_buys_a_sandbox_label_and_prints_it(shop):
    buyer, seller, order_id = await paid_order(shop)
    stranger = await shop.seller()
    sock = await shop.viewer(buyer)
    try:
        await shop.call("POST", f"/seller/orders/{order_id}/label", buyer, json={}, expect=403)
        await shop.call("POST", f"/seller/orders/{order_id}/label", stranger, json={}, expect=404)
        out = await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
        assert out["status"] == "pending" and out["kind"] == "outbound" and out["tracking_number"] is None
        again = await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=409)
        assert again["error"]["code"] == "label_exists"

        row = await wait_shipment(shop, order_id, "label_created")
        assert row["tracking_number"].startswith("SBX") and len(row["tracking_number"]) == 19
        assert row["provider"] == "sandbox" and row["provider_ref"] and row["purchased_at"] is not None
        assert row["service"] == "ground" and row["rate_minor"] > 0 and row["eta"] is not None
        assert await order_status(shop, order_id) == "label_created"
        assert await shipment_history(shop, out["id"]) == [
            (None, "pending", "seller"), ("pending", "purchasing", "system"), ("purchasing", "label_created", "system")]
        assert (await order_history(shop, order_id))[-2:] == ["paid", "label_created"]

        got = await sock.wait_for("order:update", lambda d: d["order"]["status"] == "label_created")
        assert got["shipment"]["tracking_number"] == row["tracking_number"]
        assert got["order"]["shipment"]["status"] == "label_created" and got["tracking"] is None

        resp = await shop.client.get(f"/api/v1/shipments/{out['id']}/label.pdf", headers=seller.headers)
        assert resp.status == 200 and resp.content_type == "application/pdf"
        pdf = await resp.read()
        number = (await shop.call("GET", f"/me/orders/{order_id}", buyer))["number"]
        assert pdf.startswith(b"%PDF") and f"(Order {number}) Tj".encode() in pdf  # the order number is printed
        resp = await shop.client.get(f"/api/v1/shipments/{out['id']}/label.pdf", headers=buyer.headers)
        assert resp.status == 403
        resp = await shop.client.get(f"/api/v1/shipments/{out['id']}/label.pdf", headers=stranger.headers)
        assert resp.status == 404

        detail = await shop.call("GET", f"/me/orders/{order_id}", buyer)
        [ship] = detail["shipments"]
        assert ship["tracking_number"] == row["tracking_number"] and ship["label"] is True
        assert [h["to"] for h in ship["history"]] == ["pending", "purchasing", "label_created"]
        one = await shop.call("GET", f"/shipments/{out['id']}", buyer)
        assert (one["id"], one["order_id"], one["status"]) == (out["id"], order_id, "label_created")
        await shop.call("GET", f"/shipments/{out['id']}", stranger, expect=404)
        await shop.call("GET", "/shipments/not-a-uuid", buyer, expect=404)
        listing = await shop.call("GET", "/seller/orders", seller)
        assert listing["items"][0]["shipment"]["status"] == "label_created"
    finally:
        await sock.close()


async def test_no_label_before_payment_or_without_a_ship_from(shop):
    from tests.shipping.labels_harness import checked_out

    buyer, seller, out = await checked_out(shop)
    order_id = out["orders"][0]["id"]
    body = await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=409)
    assert body["error"]["code"] == "conflict"  # pending_payment
    body = await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={"service": "BAD!"},
                           expect=422)
    assert body["error"]["details"][0]["field"] == "service"
    await shop.call("POST", "/seller/orders/00000000-0000-0000-0000-000000000000/label", seller, json={},
                    expect=404)
    assert await shipment_row(shop, order_id) is None


async def test_auto_purchase_on_payment_and_another_service(shop):
    _, _, order_id = await paid_order(shop, auto=True)
    row = await wait_shipment(shop, order_id, "label_created")
    assert (await shipment_history(shop, row["sid"]))[0] == (None, "pending", "system")
    assert await order_status(shop, order_id) == "label_created"

    _, seller, other = await paid_order(shop)
    await shop.call("POST", f"/seller/orders/{other}/label", seller, json={"service": "express"}, expect=202)
    row = await wait_shipment(shop, other, "label_created")
    assert row["service"] == "express" and row["rate"]["service"] == "express"


async def test_a_label_from_a_quoted_rate_id(shop):
    _, seller, order_id = await paid_order(shop)
    async with shop.services.db.tx(SYSTEM) as conn:
        chosen = await conn.fetchval("SELECT shipping_rate FROM orders WHERE id = $1::uuid", order_id)
    path = f"/seller/orders/{order_id}/label"
    await shop.call("POST", path, seller, json={"rate_id": "00000000-0000-4000-8000-000000000000"}, expect=404)
    await shop.call("POST", path, seller, json={"rate_id": chosen["rate_id"]}, expect=202)
    row = await wait_shipment(shop, order_id, "label_created")
    assert row["rate"]["provider_rate_id"] == chosen["provider_rate_id"]
    assert row["rate_minor"] == chosen["carrier_amount_minor"]


async def scan(shop, tracking_number: str, status: str = "transit", minutes: int = 1) -> dict:
    """A signed sandbox-carrier webhook for this parcel, through the real route."""
    sandbox = sandbox_for(shop.services.settings)
    event = TrackingEvent(provider="sandbox", carrier="sandbox", tracking_number=tracking_number, status=status,
                          substatus=None, status_date=datetime.now(timezone.utc) - timedelta(minutes=60 - minutes),
                          message=f"{status} scan", location="Austin, TX, US", metadata=None)
    body = sandbox.event_body(event)
    resp = await shop.client.post("/webhooks/sandbox-carrier", data=body, headers=sandbox.sign(body))
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    await tracked(shop)  # answered before applied: wait for its apply job
    return answer


async def test_void_before_the_first_scan_and_not_after(shop):
    _, seller, order_id = await paid_order(shop)
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    await wait_shipment(shop, order_id, "label_created")
    out = await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=202)
    assert out["status"] == "voiding"
    row = await wait_shipment(shop, order_id, "voided")
    assert row["voided_at"] is not None
    await wait_order(shop, order_id, "paid")
    assert (await order_history(shop, order_id))[-2:] == ["label_created", "paid"]
    body = await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=409)
    assert body["error"]["code"] == "conflict"

    # a new label after the void; once scanned it cannot be voided
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    row = await wait_shipment(shop, order_id, "label_created")
    assert (await scan(shop, row["tracking_number"]))["stored"] == 1
    assert await order_status(shop, order_id) == "shipped"
    body = await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=409)
    assert "in_transit" in body["error"]["message"]
    body = await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "canceled"},
                           expect=409)
    assert (await shipment_row(shop, order_id))["status"] == "in_transit"


async def test_canceling_an_order_voids_its_label_and_refunds(shop):
    _, seller, order_id = await paid_order(shop)
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    await wait_shipment(shop, order_id, "label_created")
    out = await shop.call("POST", f"/seller/orders/{order_id}/status", seller,
                          json={"status": "canceled", "reason": "out of stock after all"})
    assert out["status"] == "canceled"
    row = await wait_shipment(shop, order_id, "voided")
    assert [h[1] for h in await shipment_history(shop, row["sid"])][-2:] == ["voiding", "voided"]
    assert await order_status(shop, order_id) == "canceled"  # not back to paid


async def test_cancel_before_the_job_ran_voids_at_once(shop):
    buyer, seller, order_id = await paid_order(shop)
    await shop.services.jobs.stop()  # nothing runs the label job
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    await shop.call("POST", f"/me/orders/{order_id}/cancel", buyer, json={})
    row = await shipment_row(shop, order_id)
    assert row["status"] == "voided"
    await shop.services.commerce.shipping.labels.buy_job({"shipment_id": row["sid"]})  # the job, late
    row = await shipment_row(shop, order_id)
    assert row["status"] == "voided" and row["tracking_number"] is None


async def test_manual_tracking_is_validated_per_field(shop):
    buyer, seller, order_id = await paid_order(shop)
    path = f"/seller/orders/{order_id}/tracking"
    body = await shop.call("POST", path, seller, json={"carrier": "pigeon", "tracking_number": "12345"}, expect=422)
    assert [d["field"] for d in body["error"]["details"]] == ["carrier"]
    body = await shop.call("POST", path, seller, json={"carrier": "ups", "tracking_number": "1Z12"}, expect=422)
    assert [d["field"] for d in body["error"]["details"]] == ["tracking_number"]
    body = await shop.call("POST", path, seller, json={"carrier": "ups", "tracking_number": "9400123456789"},
                           expect=422)
    assert body["error"]["details"] == [{"field": "tracking_number", "message": "is not a ups tracking number"}]
    await shop.call("POST", path, buyer, json={"carrier": "ups", "tracking_number": "1Z999AA10123456784"},
                    expect=403)
    # shipped now takes a tracking number
    await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "shipped"}, expect=422)

    out = await shop.call("POST", path, seller, json={"carrier": "ups", "tracking_number": "1z 999aa1 0123456784"},
                          expect=201)
    assert out["status"] == "shipped"
    [ship] = out["shipments"]
    assert (ship["provider"], ship["status"], ship["tracking_number"]) == ("manual", "in_transit",
                                                                          "1Z999AA10123456784")
    assert ship["tracking_url"].endswith("1Z999AA10123456784") and ship["label"] is False
    body = await shop.call("POST", path, seller, json={"carrier": "ups", "tracking_number": "1Z999AA10123456784"},
                           expect=409)
    resp = await shop.client.get(f"/api/v1/shipments/{ship['id']}/label.pdf", headers=seller.headers)
    assert resp.status == 409
    await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=409)
    moved = await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "delivered"})
    assert moved["status"] == "delivered" and moved["shipments"][0]["status"] == "delivered"


async def test_delivered_by_hand_only_for_manual_tracking(shop):
    _, seller, order_id = await paid_order(shop)
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    row = await wait_shipment(shop, order_id, "label_created")
    await scan(shop, row["tracking_number"])
    body = await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "delivered"},
                           expect=409)
    assert "carrier" in body["error"]["message"]
    assert await order_status(shop, order_id) == "shipped"
