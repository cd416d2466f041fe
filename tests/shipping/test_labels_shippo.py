"""Labels and tracking with Shippo (the fake Shippo server over real HTTP): a label bought once with our shipment
id in its metadata and served as a redirect, a provider refusal (purchase_failed with the reason, the order stays
paid), a stale rate re-quoted for the same service, a void refunded at Shippo and one Shippo refuses, manual
tracking registered for webhooks, and Shippo's tracking webhooks (token checked) moving the order."""
from __future__ import annotations

import pytest

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop
from tests.helpers import until
from tests.shipping.fake_shippo import send_track_webhook, track_body
from tests.shipping.labels_harness import (
    SHIPPO_TOKEN as TOKEN,
)
from tests.shipping.labels_harness import (
    order_status,
    paid_order,
    shipment_history,
    shippo_shop,
    tracked,
    wait_order,
    wait_shipment,
)


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake) -> Shop:
    return await shippo_shop(tmp_path, dsn, aiohttp_client, fake)


async def bought(shop, fake, order_id: str, seller) -> dict:
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    return await wait_shipment(shop, order_id, "label_created")


async def test_a_shippo_label_is_bought_once_and_redirects(shop, fake):
    _, seller, order_id = await paid_order(shop)
    row = await bought(shop, fake, order_id, seller)
    assert fake.labels_per_metadata() == {f"shipment:{row['sid']}": 1}
    [tx] = fake.labels()
    assert (row["provider"], row["provider_ref"], row["tracking_number"]) == ("shippo", tx["object_id"],
                                                                              tx["tracking_number"])
    assert row["label_url"] == tx["label_url"] and row["tracking_url"].endswith(tx["tracking_number"])
    assert await order_status(shop, order_id) == "label_created"
    resp = await shop.client.get(f"/api/v1/shipments/{row['sid']}/label.pdf", headers=seller.headers,
                                 allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == tx["label_url"]
    # the job again (a retry after a crash): finds it, buys nothing
    await shop.services.commerce.shipping.labels.buy_job({"shipment_id": row["sid"]})
    assert len(fake.labels()) == 1


async def test_a_refusal_fails_the_purchase_and_the_order_stays_paid(shop, fake):
    _, seller, order_id = await paid_order(shop)
    fake.refuse = True
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    row = await wait_shipment(shop, order_id, "purchase_failed")
    assert "not deliverable" in row["last_error"]
    assert await order_status(shop, order_id) == "paid"
    assert fake.labels() == []
    detail = await shop.call("GET", f"/seller/orders/{order_id}", seller)
    assert detail["shipments"][0]["status"] == "purchase_failed"
    assert "not deliverable" in detail["shipments"][0]["last_error"]
    # a failed purchase makes room for a new one
    fake.refuse = False
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    await wait_shipment(shop, order_id, "label_created")
    assert len(fake.labels()) == 1


async def test_a_stale_rate_is_requoted_for_the_same_service(shop, fake):
    _, seller, order_id = await paid_order(shop)
    chosen = (await shop.call("GET", f"/seller/orders/{order_id}", seller))
    async with shop.services.db.tx(SYSTEM) as conn:
        rate = await conn.fetchval("SELECT shipping_rate FROM orders WHERE id = $1::uuid", order_id)
    assert chosen["status"] == "paid" and rate["provider"] == "shippo"
    fake.expired.add(rate["provider_rate_id"])
    row = await bought(shop, fake, order_id, seller)
    assert row["rate"]["service"] == rate["service"]
    assert row["rate"]["provider_rate_id"] != rate["provider_rate_id"]
    [tx] = fake.labels()
    assert tx["rate"] == row["rate"]["provider_rate_id"] and tx["metadata"] == f"shipment:{row['sid']}"


async def test_void_refunds_at_shippo_and_a_refused_void_keeps_the_label(shop, fake):
    _, seller, order_id = await paid_order(shop)
    row = await bought(shop, fake, order_id, seller)
    await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=202)
    await wait_shipment(shop, order_id, "voided")
    await wait_order(shop, order_id, "paid")
    assert [r["transaction"] for r in fake.refunds.values()] == [row["provider_ref"]]

    row = await bought(shop, fake, order_id, seller)
    fake.scanned.add(row["provider_ref"])  # Shippo saw a scan we have not heard of yet: it refuses the refund
    await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=202)

    async def back() -> bool:
        hist = await shipment_history(shop, row["sid"])
        return hist[-1][:2] == ("voiding", "label_created")
    await until(back, what="void refused")
    row = await wait_shipment(shop, order_id, "label_created")
    assert "refused" in row["last_error"]
    assert await order_status(shop, order_id) == "label_created"


async def test_shippo_webhooks_move_the_order_and_the_token_is_checked(shop, fake):
    buyer, seller, order_id = await paid_order(shop)
    row = await bought(shop, fake, order_id, seller)
    url = str(shop.client.make_url("/webhooks/shippo"))
    body = track_body(row["tracking_number"], "TRANSIT", metadata=f"shipment:{row['sid']}")
    for token in (None, "wrong-token-0123456789"):
        status, _ = await send_track_webhook(url, body, token=token)
        await tracked(shop)
        assert status == 401
    assert await order_status(shop, order_id) == "label_created"
    status, answer = await send_track_webhook(url, body, token=TOKEN)
    await tracked(shop)
    assert status == 200, answer
    assert await order_status(shop, order_id) == "shipped"
    status, _ = await send_track_webhook(url, track_body(row["tracking_number"], "DELIVERED"), token=TOKEN)
    await tracked(shop)
    assert status == 200 and await order_status(shop, order_id) == "delivered"
    status, answer = await send_track_webhook(url, body, token=TOKEN)  # Shippo sends it again: nothing moves back
    await tracked(shop)
    assert status == 200 and await order_status(shop, order_id) == "delivered"


async def test_manual_tracking_is_registered_with_shippo_and_tracked(shop, fake):
    _, seller, order_id = await paid_order(shop)
    number = "9400111899223197428490"
    out = await shop.call("POST", f"/seller/orders/{order_id}/tracking", seller,
                          json={"carrier": "usps", "tracking_number": number}, expect=201)
    sid = out["shipments"][0]["id"]
    await until(lambda: any(t.get("tracking_number") == number for t in fake.tracks), what="track registered")
    assert [t["metadata"] for t in fake.tracks] == [f"shipment:{sid}"]
    url = str(shop.client.make_url("/webhooks/shippo"))
    status, _ = await send_track_webhook(url, track_body(number, "TRANSIT", metadata=f"shipment:{sid}"), token=TOKEN)
    await tracked(shop)
    assert status == 200 and await order_status(shop, order_id) == "in_transit"  # shipped by hand, then a scan
    status, _ = await send_track_webhook(url, track_body(number, "DELIVERED"), token=TOKEN)
    await tracked(shop)
    assert status == 200 and await order_status(shop, order_id) == "delivered"
