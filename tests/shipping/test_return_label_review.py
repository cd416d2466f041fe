"""Review fixes of the return label: the order's buyer prints it (a stranger gets 404), and a return the seller
receives while its label is still unscanned (`approved`) has that label voided at the carrier; a scanned one is
kept. The sandbox carrier at a slow pace (nothing scans the label during the test), the fake Stripe."""
from __future__ import annotations

import pytest

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop
from tests.helpers import until
from tests.shipping.labels_harness import SHIP_FROM, shipment_history, shipment_row, stripe_shop
from tests.shipping.test_returns import ask, line, sold


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake_stripe) -> Shop:
    return await stripe_shop(tmp_path, dsn, aiohttp_client, fake_stripe, sandbox_carrier_pace_seconds=3600)


async def approved(shop, fake_stripe):
    """(seller, buyer, order id, return id, return label shipment id) of a return approved with a bought label."""
    seller, buyer, order, vids = await sold(shop, fake_stripe)
    await shop.call("PUT", "/seller/shipping", seller, json={"ship_from": SHIP_FROM})
    ret = await ask(shop, buyer, order["id"], [(line(order, vids[0]), 1)])
    await shop.call("POST", f"/seller/returns/{ret['id']}/approve", seller, json={})
    label = await wait_shipment_kind(shop, order["id"])
    return seller, buyer, order["id"], ret["id"], label["sid"]


async def wait_shipment_kind(shop, order_id: str) -> dict:
    async def bought() -> bool:
        row = await shipment_row(shop, order_id, kind="return")
        return row is not None and row["status"] == "label_created"
    await until(bought, 10, what="the return label bought")
    return await shipment_row(shop, order_id, kind="return")


async def pdf(shop, actor, sid: str):
    resp = await shop.client.get(f"/api/v1/shipments/{sid}/label.pdf", headers=actor.headers)
    return resp.status, await resp.read()


async def test_the_buyer_prints_the_return_label(shop, fake_stripe):
    seller, buyer, order_id, return_id, sid = await approved(shop, fake_stripe)
    status, body = await pdf(shop, buyer, sid)
    assert status == 200 and body.startswith(b"%PDF")
    status, body = await pdf(shop, seller, sid)
    assert status == 200 and body.startswith(b"%PDF")
    assert (await pdf(shop, await shop.user(), sid))[0] == 404


async def test_a_return_received_without_a_scan_voids_its_label(shop, fake_stripe):
    seller, buyer, order_id, return_id, sid = await approved(shop, fake_stripe)
    # the parcel came back some other way: the label nobody scanned is voided
    out = await shop.call("POST", f"/seller/returns/{return_id}/receive", seller, json={"refund_minor": 0})
    assert out["status"] == "received"
    row = await wait_voided(shop, order_id)
    assert row["voided_at"] is not None
    assert (await shipment_history(shop, sid))[-2:] == [("label_created", "voiding", "seller"),
                                                         ("voiding", "voided", "carrier")]
    assert (await pdf(shop, seller, sid))[0] == 409


async def wait_voided(shop, order_id: str) -> dict:
    async def voided() -> bool:
        return (await shipment_row(shop, order_id, kind="return"))["status"] == "voided"
    await until(voided, 10, what="the return label voided")
    return await shipment_row(shop, order_id, kind="return")


async def test_a_scanned_return_label_is_kept_on_receipt(shop, fake_stripe):
    seller, _, order_id, return_id, sid = await approved(shop, fake_stripe)
    async with shop.services.db.tx(SYSTEM) as conn:  # the carrier scanned it on its way back
        await conn.execute("UPDATE shipments SET status = 'in_transit' WHERE id = $1::uuid", sid)
        await conn.execute("UPDATE returns SET status = 'in_transit' WHERE id = $1::uuid", return_id)
    await shop.call("POST", f"/seller/returns/{return_id}/receive", seller, json={"refund_minor": 0})
    row = await shipment_row(shop, order_id, kind="return")
    assert row["status"] == "in_transit" and row["voided_at"] is None
