"""Never two labels, also when the rate went stale between a purchase whose answer was lost and the retry: the retry
looks for the transaction under the rate it was bought from before it quotes a fresh one."""
from __future__ import annotations

import pytest

from live.auth.principal import SYSTEM
from live.commerce.shipping.carriers.base import CarrierError
from tests.commerce.harness import Shop
from tests.shipping.labels_harness import order_status, paid_order, shipment_row, shippo_shop


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake) -> Shop:
    return await shippo_shop(tmp_path, dsn, aiohttp_client, fake)


async def test_a_retry_after_a_lost_answer_finds_the_label_even_when_its_rate_expired(shop, fake):
    _, seller, order_id = await paid_order(shop)
    await shop.services.jobs.stop()  # the test runs the label job itself, twice
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    sid = (await shipment_row(shop, order_id))["sid"]
    labels = shop.services.commerce.shipping.labels
    fake.lose_next_purchase(1)  # Shippo sells the label, the answer never arrives
    with pytest.raises(CarrierError):
        await labels.buy_job({"shipment_id": sid})
    assert len(fake.labels(metadata=f"shipment:{sid}")) == 1
    # the retry comes after the rate's expiry (a backoff of minutes): Shippo no longer sells it
    async with shop.services.db.tx(SYSTEM) as conn:
        rate = await conn.fetchval(
            """UPDATE shipments SET rate = rate || '{"expires_at": "2020-01-01T00:00:00+00:00"}'::jsonb
               WHERE id = $1::uuid RETURNING rate""", sid)
    fake.expired.add(rate["provider_rate_id"])
    await labels.buy_job({"shipment_id": sid})
    [tx] = fake.labels(metadata=f"shipment:{sid}")  # still the one label
    row = await shipment_row(shop, order_id)
    assert row["status"] == "label_created" and row["provider_ref"] == tx["object_id"]
    assert await order_status(shop, order_id) == "label_created"
