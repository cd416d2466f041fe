"""Review fixes of the label side, with the fake Shippo over real HTTP: a void after the label job died (a Shippo outage
longer than its retries) queues a buy job that only looks the label up, so the shipment ends `voided` (the label
found is refunded at Shippo) instead of `voiding` forever; one lookup per purchase, and none quoted again when the
purchase was canceled; a manual tracking number another order's live parcel has is refused."""
from __future__ import annotations

import pytest

from live.auth.principal import SYSTEM
from live.commerce.shipping.carriers.base import CarrierError
from tests.commerce.harness import Shop
from tests.shipping.labels_harness import order_status, paid_order, shipment_history, shipment_row, shippo_shop


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake) -> Shop:
    return await shippo_shop(tmp_path, dsn, aiohttp_client, fake)


def calls(fake, since: int, method: str, path: str) -> int:
    return sum(1 for r in fake.requests[since:] if r["method"] == method and r["path"] == path)


async def purchasing(shop, fake, *, bought: bool):
    """(seller, order id, shipment id) of a label whose job ran once and failed, then died: Shippo sold the label
    and the answer was lost (bought), or Shippo was down (not bought)."""
    _, seller, order_id = await paid_order(shop)
    await shop.services.jobs.stop()  # the test runs the jobs itself
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    sid = (await shipment_row(shop, order_id))["sid"]
    if bought:
        fake.lose_next_purchase(1)
    else:
        fake.fail_next(1)
    with pytest.raises(CarrierError):
        await shop.services.commerce.shipping.labels.buy_job({"shipment_id": sid})
    assert (await shipment_row(shop, order_id))["status"] == "purchasing"
    assert len(fake.labels(metadata=f"shipment:{sid}")) == (1 if bought else 0)
    async with shop.services.db.tx(SYSTEM) as conn:  # its last retry failed: the job is dead
        dead = await conn.execute("UPDATE pgqueuer SET status = 'failed' WHERE dedupe_key = $1", f"label:{sid}")
    assert dead == "UPDATE 1"
    return seller, order_id, sid


async def queued_buy_jobs(shop, sid: str) -> int:
    async with shop.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE dedupe_key = $1 AND status = 'queued'",
                                   f"label:{sid}")


async def test_a_void_after_the_label_job_died_finds_the_label_and_voids_it(shop, fake):
    seller, order_id, sid = await purchasing(shop, fake, bought=True)
    out = await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=202)
    assert out["status"] == "voiding"
    assert await queued_buy_jobs(shop, sid) == 1  # the buy job again, to look the label up
    await shop.services.jobs.drain()  # finds the label (buys none), stores it, its void job refunds it
    [tx] = fake.labels(metadata=f"shipment:{sid}")
    row = await shipment_row(shop, order_id)
    assert row["status"] == "voided" and row["provider_ref"] == tx["object_id"]
    assert [r["transaction"] for r in fake.refunds.values()] == [tx["object_id"]]
    assert await order_status(shop, order_id) == "paid"
    assert (await shipment_history(shop, sid))[-2:] == [("purchasing", "voiding", "seller"),
                                                         ("voiding", "voided", "carrier")]


async def test_a_void_after_the_label_job_died_with_nothing_bought_ends_voided(shop, fake):
    seller, order_id, sid = await purchasing(shop, fake, bought=False)
    await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=202)
    # asked again while voiding: 202, the same one queued job (by its key)
    again = await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=202)
    assert again["status"] == "voiding" and await queued_buy_jobs(shop, sid) == 1
    since = len(fake.requests)
    await shop.services.jobs.drain()
    assert (await shipment_row(shop, order_id))["status"] == "voided"
    assert fake.labels() == [] and fake.refunds == {}
    # canceled: it looked under the stored rate only, and neither quoted nor bought
    assert calls(fake, since, "GET", "/transactions/") == 1
    assert calls(fake, since, "POST", "/shipments/") == 0 and calls(fake, since, "POST", "/transactions/") == 0
    # a new label may be bought now
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)


async def test_a_canceled_purchase_whose_rate_expired_is_not_quoted_again(shop, fake):
    seller, order_id, sid = await purchasing(shop, fake, bought=False)
    async with shop.services.db.tx(SYSTEM) as conn:  # the backoff outlived the rate
        rate = await conn.fetchval(
            """UPDATE shipments SET rate = rate || '{"expires_at": "2020-01-01T00:00:00+00:00"}'::jsonb
               WHERE id = $1::uuid RETURNING rate""", sid)
    fake.expired.add(rate["provider_rate_id"])
    await shop.call("POST", f"/seller/orders/{order_id}/label/void", seller, expect=202)
    since = len(fake.requests)
    await shop.services.commerce.shipping.labels.buy_job({"shipment_id": sid})
    assert (await shipment_row(shop, order_id))["status"] == "voided"
    assert calls(fake, since, "GET", "/transactions/") == 1 and calls(fake, since, "POST", "/shipments/") == 0


async def test_a_purchase_looks_the_label_up_once(shop, fake):
    _, seller, order_id = await paid_order(shop)
    await shop.services.jobs.stop()
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    sid = (await shipment_row(shop, order_id))["sid"]
    since = len(fake.requests)
    await shop.services.commerce.shipping.labels.buy_job({"shipment_id": sid})
    assert (await shipment_row(shop, order_id))["status"] == "label_created"
    # the order's chosen rate is fresh: one lookup under it, one purchase, no quote
    assert calls(fake, since, "GET", "/transactions/") == 1 and calls(fake, since, "POST", "/transactions/") == 1
    assert calls(fake, since, "POST", "/shipments/") == 0


async def test_a_manual_tracking_number_of_another_orders_parcel_is_refused(shop, fake):
    _, seller, order_id = await paid_order(shop)
    _, other_seller, other_order = await paid_order(shop)
    number = {"carrier": "ups", "tracking_number": "1Z999AA10123456784"}
    await shop.call("POST", f"/seller/orders/{order_id}/tracking", seller, json=number, expect=201)
    status, body, _ = await shop.call("POST", f"/seller/orders/{other_order}/tracking", other_seller,
                                      json={**number, "tracking_number": "1z999aa1 0123456784"}, expect=None)
    assert status == 409 and body["error"]["code"] == "conflict", body
    assert "1Z999AA10123456784" in body["error"]["message"] and "another order" in body["error"]["message"]
    assert await shipment_row(shop, other_order) is None and await order_status(shop, other_order) == "paid"
    # the number of a voided parcel is free again
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE shipments SET status = 'voided' WHERE order_id = $1::uuid", order_id)
    await shop.call("POST", f"/seller/orders/{other_order}/tracking", other_seller, json=number, expect=201)
    assert await order_status(shop, other_order) == "shipped"
