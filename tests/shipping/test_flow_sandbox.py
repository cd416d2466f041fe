"""The whole flow with no account anywhere: a buyer in a live room adds the seller's product with `cart:add`
(socket), gets the cart's shipping rates and checks out with the express one, pays on the sandbox confirm page,
the seller's auto-purchase buys a sandbox label (job), and the sandbox carrier's timeline (pace 0.1 s, jobs that
sign and deliver its webhooks in process) takes the parcel to `delivered`; the buyer's socket sees each step as
`order:update` with the shipment and its latest tracking event, and the label PDF opens."""
from __future__ import annotations

from db import users as users_db
from live.auth.principal import SYSTEM
from tests.commerce.harness import Actor, Shop, make_client
from tests.shipping.labels_harness import US_BUYER, order_history, order_status, seller_ships


async def test_from_cart_add_in_a_room_to_delivered(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, sandbox_carrier_pace_seconds="0.1"))
    seller = await shop.seller()
    await seller_ships(shop, seller, auto=True)
    product = await shop.product(seller, stock=3, price=2500)
    vid = product["variants"][0]["id"]
    stream = await shop.live_stream(seller, product_ids=[product["id"]])
    buyer = await shop.user()
    viewer = await shop.viewer(buyer)
    try:
        assert (await viewer.call("join", {"stream_id": stream["id"]}))["ok"]
        ack = await viewer.call("cart:add", {"variant_id": vid, "qty": 1, "stream_id": stream["id"]})
        assert ack["ok"] and ack["cart"]["items"][0]["quantity"] == 1

        rates = await shop.call("POST", "/cart/shipping-rates", buyer, json={"address": US_BUYER})
        [offer] = rates["sellers"]
        express = next(r for r in offer["rates"] if r["service"] == "express")
        out = await shop.checkout(buyer, provider="sandbox", address=US_BUYER,
                                  shipping={offer["seller_id"]: express["id"]})
        [order] = out["orders"]
        assert order["shipping_minor"] == express["amount_minor"] > 0
        assert out["payment"]["amount_minor"] == order["total_minor"] == 2500 + express["amount_minor"]

        page = "/" + out["payment"]["authorization_url"].split("://", 1)[1].split("/", 1)[1]
        resp = await shop.client.post(page, json={"outcome": "succeeded"})
        assert resp.status == 200, await resp.text()

        seen = []
        for status in ("paid", "label_created", "delivered"):
            update = await viewer.wait_for("order:update", lambda d, s=status: d["order"]["status"] == s, 30)
            seen.append(update)
        assert seen[1]["shipment"]["status"] == "label_created" and seen[1]["shipment"]["service"] == "express"
        tracking_number = seen[1]["shipment"]["tracking_number"]
        assert tracking_number.startswith("SBX")
        assert seen[2]["tracking"]["status"] == "delivered"
        assert seen[2]["shipment"]["tracking_number"] == tracking_number
        statuses = [u["order"]["status"] for u in viewer.events["order:update"] if u["order"]["id"] == order["id"]]
        assert statuses[0] == "pending_payment" and statuses[-1] == "delivered"
        assert "shipped" in await order_history(shop, order["id"])

        detail = await shop.call("GET", f"/me/orders/{order['id']}", buyer)
        [ship] = detail["shipments"]
        assert [e["status"] for e in ship["events"]] == ["pre_transit", "transit", "transit", "out_for_delivery",
                                                          "delivered"]
        assert all(e["applied"] for e in ship["events"]) and ship["delivered_at"] is not None
        resp = await shop.client.get(f"/api/v1/shipments/{ship['id']}/label.pdf", headers=seller.headers)
        assert resp.status == 200 and (await resp.read()).startswith(b"%PDF")
        assert await order_status(shop, order["id"]) == "delivered"
    finally:
        await viewer.close()


async def test_the_seeded_demo_ships_as_make_run_does(tmp_path, dsn, aiohttp_client):
    """`make run`'s data: the demo seller (seeded ship-from, labels bought by hand) and the demo stream."""
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, seed_demo="true",
                                  sandbox_carrier_pace_seconds="0.1"))
    async with shop.services.db.tx(SYSTEM) as conn:
        seller_row = await users_db.find_or_create_by_name(conn, "demo-seller", "seller")
    seller = Actor(seller_row["id"], shop.services.token_for(seller_row), "demo-seller")
    buyer = await shop.user()
    viewer = await shop.viewer(buyer)
    try:
        joined = await viewer.call("join", {"stream_id": "demo"})
        variant = joined["spotlight"]["variants"][0]
        assert (await viewer.call("cart:add", {"variant_id": variant["id"], "qty": 1}))["ok"]
        out = await shop.checkout(buyer, provider="sandbox", address=US_BUYER)  # the cheapest rate by default
        [order] = out["orders"]
        page = "/" + out["payment"]["authorization_url"].split("://", 1)[1].split("/", 1)[1]
        assert (await shop.client.post(page, json={"outcome": "succeeded"})).status == 200
        await viewer.wait_for("order:update", lambda d: d["order"]["status"] == "paid", 30)
        ship = await shop.call("POST", f"/seller/orders/{order['id']}/label", seller, json={}, expect=202)
        await viewer.wait_for("order:update", lambda d: d["order"]["status"] == "label_created", 30)
        resp = await shop.client.get(f"/api/v1/shipments/{ship['id']}/label.pdf", headers=seller.headers)
        assert resp.status == 200 and (await resp.read()).startswith(b"%PDF")
        done = await viewer.wait_for("order:update", lambda d: d["order"]["status"] == "delivered", 30)
        assert done["tracking"]["status"] == "delivered"
    finally:
        await viewer.close()
