"""Return labels with Shippo (the fake Shippo server over real HTTP): Shippo refuses the return label, so the
approved return's label is `purchase_failed`; the seller approves it again and a new label is bought (one label at
Shippo, with the new shipment's id in its metadata); a return with a live label cannot be approved again."""
from __future__ import annotations

import pytest

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop
from tests.helpers import until
from tests.shipping.labels_harness import SHIP_FROM, US_BUYER, paid_order, shippo_shop
from tests.shipping.test_returns import ask, line


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake) -> Shop:
    return await shippo_shop(tmp_path, dsn, aiohttp_client, fake)


async def label_of(shop, return_id: str) -> dict | None:
    async with shop.services.db.tx(SYSTEM) as conn:
        row = await conn.fetchrow("SELECT s.id::text AS id, s.status, s.kind, s.from_address, s.to_address "
                                  "FROM returns r JOIN shipments s ON s.id = r.return_label_id WHERE r.id = $1::uuid",
                                  return_id)
    return dict(row) if row else None


async def test_a_refused_return_label_is_bought_again_on_a_second_approval(shop, fake):
    buyer, seller, order_id = await paid_order(shop)
    await shop.call("POST", f"/seller/orders/{order_id}/tracking", seller,
                    json={"carrier": "ups", "tracking_number": "1Z999AA10123456784"}, expect=201)
    order = await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "delivered"})
    [item] = order["items"]
    ret = await ask(shop, buyer, order_id, [(line(order, item["variant_id"]), 1)], reason="wrong_item")
    rid = ret["id"]

    fake.refuse = True
    await shop.call("POST", f"/seller/returns/{rid}/approve", seller, json={})

    async def label_is(status: str) -> bool:
        label = await label_of(shop, rid)
        return label is not None and label["status"] == status

    # a job: slow on a loaded machine
    await until(lambda: label_is("purchase_failed"), 30, what="the refused return label")
    failed = await label_of(shop, rid)
    assert failed["kind"] == "return" and fake.labels() == []
    assert (failed["from_address"]["line1"], failed["to_address"]["line1"]) == (US_BUYER["line1"], SHIP_FROM["line1"])
    got = await shop.call("GET", f"/me/returns/{rid}", buyer)
    assert (got["status"], got["label"]["status"]) == ("approved", "purchase_failed")

    fake.refuse = False
    again = await shop.call("POST", f"/seller/returns/{rid}/approve", seller, json={"note": "second try"})
    assert again["status"] == "approved" and again["label"]["shipment_id"] != failed["id"]
    assert [h["to"] for h in again["history"]] == ["requested", "approved"]  # no new status, a new label
    await until(lambda: label_is("label_created"), 30, what="the second return label")
    assert fake.labels_per_metadata() == {f"shipment:{again['label']['shipment_id']}": 1}
    async with shop.services.db.tx(SYSTEM) as conn:
        actions = [r[0] for r in await conn.fetch(
            "SELECT action FROM audit_log WHERE entity = 'return' AND entity_id = $1 ORDER BY id", rid)]
    assert actions == ["return.requested", "return.approved", "return.relabel"]

    # a live label: no third one
    await shop.call("POST", f"/seller/returns/{rid}/approve", seller, json={}, expect=409)
    assert len(fake.labels()) == 1
