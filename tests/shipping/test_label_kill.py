"""Never two labels for one shipment, with a real crash: a `live worker` process runs the label job, the fake
Shippo stores the transaction and holds its answer, and the worker is killed with -9 after that provider call and
before our commit. The shipment is left `purchasing` (committed before the call) with no label; a second worker
picks the job again once its heartbeat is stale, finds the transaction by our shipment id (find_label) and stores
it: the fake Shippo counts exactly one transaction for that shipment."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from tests.commerce.harness import Shop, make_client
from tests.helpers import SECRET, until
from tests.shipping.fake_shippo import API_KEY, FakeShippo
from tests.shipping.labels_harness import order_status, paid_order, shipment_row, wait_shipment

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "shippo-webhook-token-0123456789"


class HoldingShippo(FakeShippo):
    """Stores each purchase, then holds its answer while `hold` is set (the buyer's process dies meanwhile)."""

    hold = True

    async def _buy(self, request: web.Request) -> web.Response:
        answer = await super()._buy(request)
        while self.hold:
            await asyncio.sleep(0.05)
        return answer


@pytest.fixture
async def fake():
    server = await HoldingShippo(API_KEY).start()
    yield server
    server.hold = False
    await server.close()


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake) -> Shop:
    # this server only serves: the label job runs in the `live worker` processes below
    return Shop(await make_client(tmp_path, dsn, aiohttp_client, shippo_api_key=API_KEY, shippo_api_base=fake.url,
                                  shippo_webhook_token=TOKEN, jobs_in_process="false"))


def worker(dsn: str, fake_url: str, data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": dsn, "JWT_SECRET": SECRET, "LIVE_ENV": "test", "SEED_DEMO": "false",
           "LOG_LEVEL": "warning", "LIVE_DATA_DIR": str(data_dir), "SHIPPO_API_KEY": API_KEY,
           "SHIPPO_API_BASE": fake_url, "SHIPPO_WEBHOOK_TOKEN": TOKEN, "JOBS_HEARTBEAT_SECONDS": "1"}
    return subprocess.Popen([sys.executable, "-m", "live", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_a_label_job_killed_after_the_provider_call_buys_no_second_label(shop, fake, dsn, tmp_path):
    _, seller, order_id = await paid_order(shop)
    await shop.call("POST", f"/seller/orders/{order_id}/label", seller, json={}, expect=202)
    first = worker(dsn, fake.url, tmp_path / "w1")
    try:
        await until(lambda: len(fake.labels()) == 1, 30, what="the transaction at the provider")
        row = await shipment_row(shop, order_id)
        assert row["status"] == "purchasing" and row["tracking_number"] is None
        first.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(first.wait, 10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    fake.hold = False
    row = await shipment_row(shop, order_id)
    assert row["status"] == "purchasing" and row["tracking_number"] is None  # our commit never happened

    second = worker(dsn, fake.url, tmp_path / "w2")
    try:
        row = await wait_shipment(shop, order_id, "label_created", timeout=30)
    finally:
        second.terminate()
        await asyncio.to_thread(second.wait, 30)
    assert fake.labels_per_metadata() == {f"shipment:{row['sid']}": 1}
    [tx] = fake.labels()
    assert (row["provider_ref"], row["tracking_number"]) == (tx["object_id"], tx["tracking_number"])
    assert sum(1 for r in fake.requests if r["method"] == "POST" and r["path"] == "/transactions/") == 1
    assert await order_status(shop, order_id) == "label_created"
