"""From the live room to a paid order: a viewer of the demo stream (python-socketio AsyncClient over a real
websocket) adds the spotlighted product with `cart:add`, checks out over REST with the sandbox provider,
follows the sandbox confirm page as a browser would (GET the page, POST its form), and receives
`order:update` with status paid; the seller's socket gets it too, and the room saw the stock fall."""
from __future__ import annotations

import re

from db import users as users_db
from live.appkeys import SERVICES
from live.auth.principal import SYSTEM
from tests.commerce.harness import ADDRESS, API, make_client
from tests.helpers import Viewer


async def test_viewer_buys_from_the_live_room(tmp_path, dsn, aiohttp_client):
    client = await make_client(tmp_path, dsn, aiohttp_client, seed_demo="true")
    services = client.app[SERVICES]
    base = str(client.make_url("/")).rstrip("/")
    async with services.db.tx(SYSTEM) as conn:
        buyer = await users_db.find_or_create_by_name(conn, "live-buyer", "customer")
        seller = await users_db.find_or_create_by_name(conn, "demo-seller", "seller")
    viewer = await Viewer(base, services.token_for(buyer)).connect()
    seller_socket = await Viewer(base, services.token_for(seller)).connect()
    watcher = await Viewer(base).connect()
    try:
        joined = await viewer.call("join", {"stream_id": "demo"})
        assert (await seller_socket.call("join", {"stream_id": "demo"}))["ok"]
        assert (await watcher.call("join", {"stream_id": "demo"}))["ok"]
        variant = joined["spotlight"]["variants"][0]
        before = variant["available"]
        ack = await viewer.call("cart:add", {"variant_id": variant["id"], "qty": 2, "idempotency_key": "live-1"})
        assert ack["ok"] and ack["cart"]["items"][0]["quantity"] == 2
        assert ack["cart"]["items"][0]["livestream_id"] == joined["stream"]["id"]
        stock = await watcher.wait_for("stock:update", lambda d: d["variant_id"] == variant["id"])
        assert stock["available"] == before - 2

        headers = {"Authorization": f"Bearer {services.token_for(buyer)}", "Idempotency-Key": "live-checkout"}
        resp = await client.post(f"{API}/checkout", json={"address": ADDRESS}, headers=headers)
        assert resp.status == 201, await resp.text()
        out = await resp.json()
        [order] = out["orders"]
        assert order["livestream_id"] == joined["stream"]["id"] and order["status"] == "pending_payment"
        assert out["payment"]["provider"] == "sandbox"  # the default with no provider keys
        created = await viewer.wait_for("order:update", lambda d: d["order"]["id"] == order["id"])
        assert created["order"]["status"] == "pending_payment"

        # the confirm page, as a browser: GET it, then submit its form with the Pay button
        page_url = out["payment"]["authorization_url"].split("://", 1)[1].split("/", 1)[1]
        page = await client.get("/" + page_url)
        html = await page.text()
        assert page.status == 200 and order["number"] in html
        action = re.search(r'<form method="post" action="([^"]+)"', html).group(1)
        paid_page = await client.post(action, data={"outcome": "succeeded"})
        assert paid_page.status == 200 and "Payment succeeded" in await paid_page.text()

        for sock in (viewer, seller_socket):
            update = await sock.wait_for("order:update", lambda d: d["order"]["status"] == "paid")
            assert update["order"]["id"] == order["id"] and update["order"]["number"] == order["number"]
        resp = await client.get(f"{API}/me/orders/{order['id']}", headers=headers)
        detail = await resp.json()
        assert detail["status"] == "paid" and detail["payment"]["status"] == "succeeded"
        assert [h["to"] for h in detail["history"]] == ["pending_payment", "paid"]
        assert "order:update" not in watcher.events  # only the buyer's and the seller's sockets
    finally:
        for sock in (viewer, seller_socket, watcher):
            await sock.close()
