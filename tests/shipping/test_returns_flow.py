"""Returns end to end with the sandbox carrier and the fake Stripe: a paid order's label bought by the job and
tracked to `delivered` by the sandbox carrier's signed webhooks (its timeline, at 0.05 s a step), a return asked
for, approved (a return label bought by the job, from the buyer's address to the seller's ship-from), tracked back
to the seller (`on_shipment`), received with a partial refund and a partial restock: the provider's refund call
happens once with that amount, its webhook settles it, the units go back to stock with `return` events in the
ledger, the rooms' stock and both parties' sockets hear of it; then what is left of the order may be returned,
and no more."""
from __future__ import annotations

import asyncio

import pytest

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop
from tests.helpers import until
from tests.payments.refunding import payment_row
from tests.shipping.labels_harness import stripe_shop
from tests.shipping.test_returns import ask, bought, line, status_of, stripe_says


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake_stripe) -> Shop:
    return await stripe_shop(tmp_path, dsn, aiohttp_client, fake_stripe, sandbox_carrier_pace_seconds=0.05)


SHIP_FROM = {"name": "Shop Dock", "line1": "2 Broad St", "city": "Lagos", "postal_code": "100001", "country": "NG"}


async def order_of(shop, order_id: str) -> dict:
    async with shop.services.db.tx(SYSTEM) as conn:
        return dict(await conn.fetchrow("SELECT status FROM orders WHERE id = $1::uuid", order_id))


async def return_status(shop, return_id: str) -> str:
    async with shop.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT status FROM returns WHERE id = $1::uuid", return_id)


async def ledger_returns(shop, vid: str) -> list[int]:
    async with shop.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT quantity FROM inventory_events WHERE variant_id = $1::uuid AND kind = 'return'"
                                " ORDER BY id", vid)
    return [r[0] for r in rows]


async def shipped_by_carrier(shop, fake):
    """A seller who ships with labels bought on payment; an order of 2 x 1000 + 1 x 2500 with a 500 discount-free
    total, paid and delivered by the sandbox carrier."""
    seller = await shop.seller()
    await shop.call("PUT", "/seller/shipping", seller, json={"ship_from": SHIP_FROM, "auto_purchase_label": True,
                                                             "return_window_days": 30})
    seller, buyer, order, vids = await bought(shop, fake, seller=seller)
    await until(lambda: _is(shop, order["id"], "delivered"), 20, what="the order delivered by the sandbox carrier")
    return seller, buyer, await shop.call("GET", f"/me/orders/{order['id']}", buyer), vids


async def _is(shop, order_id: str, status: str) -> bool:
    return (await order_of(shop, order_id))["status"] == status


async def test_return_label_tracking_partial_refund_and_restock(shop, fake_stripe):
    seller, buyer, order, (a, b) = await shipped_by_carrier(shop, fake_stripe)
    oid = order["id"]
    paid = order["payment"]["amount_minor"]
    assert order["total_minor"] == paid and order["shipping_minor"] > 0  # the sandbox rate was charged
    buyer_sock = await shop.viewer(buyer)
    try:
        ret = await ask(shop, buyer, oid, [(line(order, a), 2), (line(order, b), 1)], reason="not_as_described")
        rid = ret["id"]

        approved = await shop.call("POST", f"/seller/returns/{rid}/approve", seller, json={"note": "send it back"})
        assert approved["status"] == "approved" and approved["label"]["shipment_id"]
        async with shop.services.db.tx(SYSTEM) as conn:
            label = dict(await conn.fetchrow("SELECT kind, from_address, to_address, parcel FROM shipments "
                                             "WHERE id = $1::uuid", approved["label"]["shipment_id"]))
        assert label["kind"] == "return"
        assert label["from_address"]["line1"] == order["shipping_address"]["line1"]
        assert label["to_address"]["line1"] == SHIP_FROM["line1"]
        assert label["parcel"]["weight_g"] == 3 * 500  # three units at the seller's default weight

        # the return label is bought by its job, then the sandbox carrier's timeline brings it back: delivered
        await until(lambda: _returned(shop, rid), 20, what="the return delivered back at the seller")
        got = await shop.call("GET", f"/seller/returns/{rid}", seller)
        assert got["label"]["tracking_number"].startswith("SBX")
        assert [h["to"] for h in got["history"]] == ["requested", "approved", "in_transit", "delivered"]
        assert {h["actor_kind"] for h in got["history"][2:]} == {"carrier"}
        assert (await order_of(shop, oid))["status"] == "delivered"  # a return label never moves the order
        for who, path in ((buyer, "/me/returns"), (seller, "/seller/returns?status=delivered")):  # as they may see
            [listed] = (await shop.call("GET", path, who))["items"]
            assert (listed["id"], listed["label"]["tracking_number"]) == (rid, got["label"]["tracking_number"])
        await buyer_sock.wait_for("order:update", lambda d: (d.get("return") or {}).get("status") == "delivered")

        # received: 1500 back of the 4500 the lines cost (no shipping), one unit of `a` back on the shelf
        before = await shop.counters(a)
        product_a = next(i["product_id"] for i in order["items"] if i["variant_id"] == a)
        stream = await shop.live_stream(seller, product_ids=[product_a])
        host, watcher = await shop.viewer(seller), await shop.viewer()
        assert (await host.call("join", {"stream_id": stream["id"]}))["ok"]
        assert (await host.call("product:highlight", {"product_id": product_a}))["ok"]
        assert (await watcher.call("join", {"stream_id": stream["id"]}))["ok"]
        out = await shop.call("POST", f"/seller/returns/{rid}/receive", seller, json={
            "refund_minor": 1500, "restock": [{"order_item_id": line(order, a), "quantity": 1}], "note": "one worn"})
        assert (out["status"], out["refund_minor"], out["refund"]["amount_minor"]) == ("refunded", 1500, 1500)
        assert {i["variant_id"]: i["restocked"] for i in out["items"]} == {a: 1, b: 0}
        await until(lambda: fake_stripe.refund_requests(), what="the refund.send job's call")  # a job makes it
        [sent] = fake_stripe.refund_requests()
        assert sent["params"]["amount"] == "1500"
        assert await shop.counters(a) == {**before, "on_hand": before["on_hand"] + 1}
        assert await ledger_returns(shop, a) == [1] and await ledger_returns(shop, b) == []
        await shop.assert_ledger(a)
        available = before["on_hand"] + 1 - before["reserved"] - before["sold"]
        await watcher.wait_for("stock:update", lambda d: d["variant_id"] == a and d["available"] == available)
        await watcher.close()
        await host.close()

        # a retried receipt owes nothing more and calls the provider no more
        await shop.call("POST", f"/seller/returns/{rid}/receive", seller, json={"refund_minor": 1500}, expect=409)
        assert len(fake_stripe.refund_requests()) == 1

        # Stripe's webhook settles it; the order stays delivered, its payment partly refunded
        [re_id] = fake_stripe.refunds
        await stripe_says(shop, fake_stripe.refund_event(re_id))
        refund_id = out["refund"]["id"]
        await until(lambda: status_of(shop, "payment_refunds", refund_id, "succeeded"), 10, what="the refund settled")
        got = await shop.call("GET", f"/me/returns/{rid}", buyer)
        assert got["refund"]["status"] == "succeeded"
        pay = await payment_row(shop, order["payment"]["id"])
        assert (pay["status"], pay["refund_due_minor"]) == ("succeeded", 0)
        detail = await shop.call("GET", f"/me/orders/{oid}", buyer)
        assert detail["status"] == "delivered" and detail["refund"] is None
        assert detail["payment"]["refunded_minor"] == 1500
        pushed = await buyer_sock.wait_for("order:update", lambda d: ((d.get("return") or {}).get("refund") or {})
                                           .get("status") == "requested")
        assert pushed["return"]["status"] == "refunded"

        # every unit of the order is taken back now: nothing more to return
        more = await ask(shop, buyer, oid, [(line(order, a), 1)], expect=409)
        assert more["error"]["details"]["reason"] == "already_returned"
        assert more["error"]["details"]["items"] == [{"order_item_id": line(order, a), "returnable": 0}]
    finally:
        await buyer_sock.close()


async def _returned(shop, return_id: str) -> bool:
    return await return_status(shop, return_id) == "delivered"


async def test_default_refund_is_capped_by_what_is_left_and_zero_is_received(shop, fake_stripe):
    seller, buyer, order, (a, b) = await shipped_by_carrier(shop, fake_stripe)
    oid = order["id"]
    admin = await shop.user(role="admin")
    first = await ask(shop, buyer, oid, [(line(order, b), 1)], reason="defective")
    await shop.call("POST", f"/seller/returns/{first['id']}/approve", admin, json={})
    # received before the tracking says so (the buyer dropped it at the shop), twice at once: one receipt, with the
    # default refund (the line's price), the other refused
    answers = await asyncio.gather(*[shop.call("POST", f"/seller/returns/{first['id']}/receive", who, json={},
                                               expect=None) for who in (admin, seller)])
    assert sorted(status for status, _, _ in answers) == [200, 409]
    out = next(body for status, body, _ in answers if status == 200)
    assert (out["status"], out["refund_minor"]) == ("refunded", 2500)
    assert out["history"][-1]["actor_kind"] in ("admin", "seller")
    await until(lambda: len(fake_stripe.refund_requests()) == 1, 5, what="the refund sent")
    # the label's tracking arriving late never moves a received return back; a label not scanned yet at the receipt
    # is voided instead (nobody will use it)
    await until(lambda: _label_done(shop, first["id"]), 20, what="the return label's timeline done or voided")
    assert await return_status(shop, first["id"]) == "refunded"

    # the second return: more than is left of the order is refused per field; 0 is a receipt without a refund
    second = await ask(shop, buyer, oid, [(line(order, a), 1)], reason="changed_mind")
    await shop.call("POST", f"/seller/returns/{second['id']}/approve", seller, json={})
    left = order["total_minor"] - 2500
    too_much = await shop.call("POST", f"/seller/returns/{second['id']}/receive", seller,
                               json={"refund_minor": left + 1}, expect=422)
    assert too_much["error"]["details"][0]["field"] == "refund_minor"
    bad = await shop.call("POST", f"/seller/returns/{second['id']}/receive", seller,
                          json={"restock": [{"order_item_id": line(order, b), "quantity": 1}]}, expect=422)
    assert bad["error"]["details"][0]["field"] == "restock.0.order_item_id"
    # the carrier's first scan of the return label is stored but its apply job has not run (a race seen under
    # load): the receipt still goes through and the label, on its way, is not voided
    async with shop.services.db.tx(SYSTEM) as conn:
        label = await conn.fetchrow("SELECT s.id::text, s.provider, s.carrier, s.tracking_number FROM returns r "
                                    "JOIN shipments s ON s.id = r.return_label_id WHERE r.id = $1::uuid", second["id"])
        await conn.execute("INSERT INTO shipping_events (shipment_id, provider, carrier, tracking_number, status, "
                           "status_date, details) VALUES ($1::uuid, $2, $3, $4, 'transit', now(), '{}')",
                           label["id"], label["provider"], label["carrier"], label["tracking_number"] or "pending")
    out = await shop.call("POST", f"/seller/returns/{second['id']}/receive", seller, json={"refund_minor": 0})
    assert (out["status"], out["refund_minor"], out["refund"]) == ("received", 0, None)
    async with shop.services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT status FROM shipments WHERE id = $1::uuid", label["id"]) not in (
            "voiding", "voided")
    assert len(fake_stripe.refund_requests()) == 1


async def _label_done(shop, return_id: str) -> bool:
    async with shop.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT s.status IN ('delivered', 'voided') FROM returns r JOIN shipments s "
                                   "ON s.id = r.return_label_id WHERE r.id = $1::uuid", return_id)
