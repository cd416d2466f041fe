"""A full refund made at the provider (an admin refunds the whole payment in the dashboard) while the order's label is
bought voids the label, like a cancel does: the sandbox's signed refund webhook (`POST /webhooks/sandbox`, applied by
its job) -> order refunded and restocked, shipment voiding -> voided by the void job; an order already scanned
keeps its label and is still refunded."""
from __future__ import annotations

import time
import uuid

import orjson

from live.auth.principal import SYSTEM
from tests.helpers import until
from tests.shipping.labels_harness import (
    order_status,
    paid_order,
    shipment_history,
    wait_order,
    wait_shipment,
)


async def refunded_in_dashboard(shop, order_id: str) -> None:
    """The provider's notice of a refund of the whole payment that we did not ask for (no refund id of ours)."""
    async with shop.services.db.tx(SYSTEM) as conn:
        pay = await conn.fetchrow(
            """SELECT p.id::text AS id, p.provider_ref, p.amount_minor, p.currency FROM payments p
               JOIN payment_orders po ON po.payment_id = p.id WHERE po.order_id = $1::uuid""", order_id)
    sandbox = shop.services.commerce.order_payments.providers.get("sandbox")
    body = orjson.dumps({"id": "evt_dash_" + uuid.uuid4().hex[:12], "type": "refund.succeeded",
                         "created": int(time.time()),
                         "data": {"reference": pay["provider_ref"], "payment_id": pay["id"], "status": "succeeded",
                                  "refund_reference": "re_dash_" + uuid.uuid4().hex[:8],
                                  "amount_minor": pay["amount_minor"], "currency": pay["currency"]}})
    resp = await shop.client.post("/webhooks/sandbox", data=body, headers={
        "content-type": "application/json", "x-sandbox-signature": sandbox.sign(body)})
    assert resp.status == 200 and (await resp.json())["queued"] is True


async def test_a_full_refund_at_the_provider_voids_the_bought_label(shop):
    _, _, order_id = await paid_order(shop, auto=True)
    ship = await wait_shipment(shop, order_id, "label_created")
    assert await order_status(shop, order_id) == "label_created"

    await refunded_in_dashboard(shop, order_id)
    await wait_order(shop, order_id, "refunded")
    voided = await wait_shipment(shop, order_id, "voided")
    assert voided["sid"] == ship["sid"] and voided["voided_at"] is not None
    history = await shipment_history(shop, ship["sid"])
    assert history[-2][:3] == ("label_created", "voiding", "webhook") and history[-1][:2] == ("voiding", "voided")


async def test_a_full_refund_after_the_first_scan_keeps_the_label(shop):
    """In transit: nothing to void (the carrier has the parcel); the order is refunded all the same."""
    _, _, order_id = await paid_order(shop, auto=True)
    ship = await wait_shipment(shop, order_id, "label_created")
    async with shop.services.db.tx(SYSTEM) as conn:  # the first scan, as tracking would record it
        await conn.execute("UPDATE shipments SET status = 'in_transit' WHERE id = $1::uuid", ship["sid"])
        await conn.execute("UPDATE orders SET status = 'shipped' WHERE id = $1::uuid", order_id)

    await refunded_in_dashboard(shop, order_id)
    await wait_order(shop, order_id, "refunded")
    async with shop.services.db.tx(SYSTEM) as conn:
        async def processed() -> bool:
            return await conn.fetchval("SELECT count(*) FROM webhook_events WHERE result = 'applied' "
                                       "AND event_key LIKE 'evt_dash_%'") == 1
        await until(processed, what="the refund event applied")
        status = await conn.fetchval("SELECT status FROM shipments WHERE id = $1::uuid", ship["sid"])
    assert status == "in_transit"
