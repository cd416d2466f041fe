"""A full refund at the payment provider while the label is being bought (the purchase at the fake Shippo is in
flight, the shipment `purchasing`): the shipment goes `voiding` in the refund's transaction, the purchase that was
already under way completes, and the label is then voided (refunded at Shippo) instead of being kept."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from tests.commerce.harness import Shop
from tests.helpers import until
from tests.shipping.fake_shippo import API_KEY, FakeShippo
from tests.shipping.labels_harness import paid_order, shipment_row, shippo_shop, wait_order, wait_shipment
from tests.shipping.test_refund_voids import refunded_in_dashboard


class HoldingShippo(FakeShippo):
    """Stores each purchase, then holds its answer until `release` is set."""

    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__(api_key)
        self.release = asyncio.Event()
        self.buying = 0

    async def _buy(self, request: web.Request) -> web.Response:
        answer = await super()._buy(request)
        self.buying += 1
        await self.release.wait()
        return answer


@pytest.fixture
async def fake():
    server = await HoldingShippo(API_KEY).start()
    yield server
    server.release.set()
    await server.close()


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake) -> Shop:
    return await shippo_shop(tmp_path, dsn, aiohttp_client, fake)


async def test_a_full_refund_during_the_purchase_voids_the_label_it_buys(shop, fake):
    _, _, order_id = await paid_order(shop, auto=True)
    await until(lambda: fake.buying == 1, what="the purchase in flight")
    assert (await shipment_row(shop, order_id))["status"] == "purchasing"

    await refunded_in_dashboard(shop, order_id)
    await wait_order(shop, order_id, "refunded")
    assert (await wait_shipment(shop, order_id, "voiding"))["tracking_number"] is None

    fake.release.set()
    voided = await wait_shipment(shop, order_id, "voided", timeout=15)
    [label] = fake.labels(metadata=f"shipment:{voided['sid']}")
    assert voided["tracking_number"] == label["tracking_number"]
    assert label["object_id"] in {r["transaction"] for r in fake.refunds.values()}  # refunded at Shippo
