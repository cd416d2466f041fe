"""Returns, the rules (docs/shipping.md, "Returns"): real orders through REST checkout, paid through the fake
Stripe's real flow, delivered by the seller's own moves (shipped by hand), then returns asked for over REST: the
window (none, closed, an undelivered order), lines and quantities checked per field, one open return per order,
another buyer's or seller's return out of reach, a refusal, a buyer's cancellation, pushes, history and audit rows,
and the bounded listings. The label, tracking, refund and restock flow is in test_returns_flow.py."""
from __future__ import annotations

import pytest

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop
from tests.helpers import until
from tests.payments.fakes.stripe_api import FakeStripe, sign
from tests.payments.refunding import WHSEC
from tests.shipping.labels_harness import stripe_shop


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client, fake_stripe) -> Shop:
    return await stripe_shop(tmp_path, dsn, aiohttp_client, fake_stripe, sandbox_carrier_pace_seconds=0.05)


PAID = ("paid", "label_created", "shipped", "in_transit", "out_for_delivery", "delivered")  # paid, maybe moved on


async def bought(shop: Shop, fake: FakeStripe, lines=((1000, 2), (2500, 1)), *, seller=None, buyer=None,
                 **checkout):
    """A seller's products (one per (price, qty)), bought by a buyer with Stripe and paid: (seller, buyer, order,
    the variants' ids)."""
    seller = seller or await shop.seller()
    buyer = buyer or await shop.user()
    vids = []
    for price, qty in lines:
        vid = (await shop.product(seller, stock=5, price=price))["variants"][0]["id"]
        await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": qty})
        vids.append(vid)
    out = await shop.checkout(buyer, provider="stripe", email="buyer@example.com", **checkout)
    [order] = out["orders"]
    await stripe_says(shop, fake.event("payment_intent.succeeded", fake.succeed(out["payment"]["provider_ref"])))
    await until(lambda: status_of(shop, "orders", order["id"], *PAID), 10, what="the order paid")
    return seller, buyer, order, vids


async def stripe_says(shop: Shop, body: bytes) -> None:
    """A signed Stripe webhook, taken (applied now or by its job)."""
    resp = await shop.client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(body, WHSEC)})
    assert resp.status == 200, await resp.text()


async def status_of(shop: Shop, table: str, row_id: str, *wanted: str) -> bool:
    async with shop.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval(f"SELECT status FROM {table} WHERE id = $1::uuid", row_id) in wanted


async def delivered_by_hand(shop: Shop, seller, order_id: str) -> dict:
    await shop.call("POST", f"/seller/orders/{order_id}/tracking", seller,
                    json={"carrier": "other", "tracking_number": f"HAND-{order_id[:8]}"}, expect=201)
    return await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "delivered"})


async def sold(shop: Shop, fake: FakeStripe, **kw):
    """bought() and delivered: (seller, buyer, the order with its items, variant ids)."""
    seller, buyer, order, vids = await bought(shop, fake, **kw)
    order = await delivered_by_hand(shop, seller, order["id"])
    assert order["status"] == "delivered"
    return seller, buyer, order, vids


def line(order: dict, vid: str) -> str:
    return next(i["id"] for i in order["items"] if i["variant_id"] == vid)


async def ask(shop: Shop, buyer, order_id: str, items, *, reason="damaged", expect=201, **body):
    return await shop.call("POST", f"/me/orders/{order_id}/returns", buyer, expect=expect,
                           json={"reason": reason, "items": [{"order_item_id": i, "quantity": q} for i, q in items],
                                 **body})


async def audit_actions(shop: Shop, return_id: str) -> list[str]:
    async with shop.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT action FROM audit_log WHERE entity = 'return' AND entity_id = $1 ORDER BY id",
                                return_id)
    return [r[0] for r in rows]


async def test_request_refuse_cancel_and_who_may_do_what(shop, fake_stripe):
    seller, buyer, order, (a, b) = await sold(shop, fake_stripe)
    oid = order["id"]
    stranger, other_seller, admin = await shop.user(), await shop.seller(), await shop.user(role="admin")
    buyer_sock, seller_sock = await shop.viewer(buyer), await shop.viewer(seller)
    try:
        # per-field 422s: a line of another order, a line twice, more than was bought; bounded lists and notes
        _, _, other, (c, _) = await bought(shop, fake_stripe, buyer=buyer)
        bad = await ask(shop, buyer, oid, [(line(other, c), 1), (line(order, a), 1), (line(order, a), 1),
                                           (line(order, b), 2)], expect=422)
        assert bad["error"]["code"] == "validation_failed"
        assert [d["field"] for d in bad["error"]["details"]] == ["items.0.order_item_id", "items.2.order_item_id",
                                                                 "items.3.quantity"]
        assert (await ask(shop, buyer, oid, [], expect=422))["error"]["code"] == "validation_failed"
        assert (await ask(shop, buyer, oid, [(line(order, a), 1)], reason="bored", expect=422))["error"]["details"]
        await ask(shop, buyer, oid, [(line(order, a), 1)], note="x" * 1001, expect=422)
        await ask(shop, buyer, oid, [(line(order, a), 0)], expect=422)
        # someone else's order does not exist for them; an order not delivered is not returnable
        await ask(shop, stranger, oid, [(line(order, a), 1)], expect=404)
        await ask(shop, admin, oid, [(line(order, a), 1)], expect=404)
        refused = await ask(shop, buyer, other["id"], [(line(other, c), 1)], expect=409)
        assert refused["error"]["code"] == "not_returnable"
        assert refused["error"]["details"]["reason"] == "not_delivered"

        ret = await ask(shop, buyer, oid, [(line(order, a), 2)], note="the box was crushed")
        assert (ret["status"], ret["reason"], ret["note"], ret["order_id"]) == (
            "requested", "damaged", "the box was crushed", oid)
        assert [(i["variant_id"], i["quantity"], i["restocked"]) for i in ret["items"]] == [(a, 2, 0)]
        assert ret["label"] is None and ret["refund"] is None
        assert [(h["from"], h["to"], h["actor_kind"]) for h in ret["history"]] == [(None, "requested", "user")]
        for sock in (buyer_sock, seller_sock):
            pushed = await sock.wait_for("order:update", lambda d: (d.get("return") or {}).get("id") == ret["id"])
            assert pushed["order"]["id"] == oid and pushed["return"]["status"] == "requested"

        # one open return per order
        again = await ask(shop, buyer, oid, [(line(order, b), 1)], expect=409)
        assert again["error"]["details"]["reason"] == "open_return"

        # the seller's side: not the buyer (403), not another seller (404), nor a stranger reading it
        rid = ret["id"]
        assert (await shop.call("POST", f"/seller/returns/{rid}/refuse", buyer, json={"reason": "no"},
                                expect=403))["error"]["code"] == "forbidden"
        await shop.call("POST", f"/seller/returns/{rid}/refuse", other_seller, json={"reason": "no"}, expect=404)
        await shop.call("POST", f"/seller/returns/{rid}/approve", other_seller, json={}, expect=404)
        await shop.call("GET", f"/seller/returns/{rid}", other_seller, expect=404)
        await shop.call("GET", f"/me/returns/{rid}", stranger, expect=404)
        await shop.call("GET", f"/me/returns/{rid}", seller, expect=404)  # /me is the buyer's own
        await shop.call("POST", f"/me/returns/{rid}/cancel", seller, json={}, expect=404)
        await shop.call("POST", f"/seller/returns/{rid}/refuse", seller, json={}, expect=422)  # a reason is required
        await shop.call("POST", f"/seller/returns/{rid}/receive", seller, json={}, expect=409)  # not approved

        out = await shop.call("POST", f"/seller/returns/{rid}/refuse", seller, json={"reason": "worn, not damaged"})
        assert (out["status"], out["decision_note"]) == ("refused", "worn, not damaged")
        assert out["decided_at"] is not None
        pushed = await buyer_sock.wait_for("order:update", lambda d: (d.get("return") or {}).get("status")
                                           == "refused")
        assert pushed["return"]["decision_note"] == "worn, not damaged"
        await shop.call("POST", f"/seller/returns/{rid}/approve", seller, json={}, expect=409)
        await shop.call("POST", f"/me/returns/{rid}/cancel", buyer, json={}, expect=409)

        # a refused return takes nothing back: the same units may be asked for again, and withdrawn
        second = await ask(shop, buyer, oid, [(line(order, a), 2), (line(order, b), 1)], reason="changed_mind")
        out = await shop.call("POST", f"/me/returns/{second['id']}/cancel", buyer, json={"reason": "kept them"})
        assert out["status"] == "canceled"
        assert [(h["to"], h["reason"]) for h in out["history"]] == [("requested", None), ("canceled", "kept them")]
        await shop.call("POST", f"/seller/returns/{second['id']}/approve", seller, json={}, expect=409)
        assert await audit_actions(shop, rid) == ["return.requested", "return.refused"]
        assert await audit_actions(shop, second["id"]) == ["return.requested", "return.canceled"]

        # the admin decides like the seller
        third = await ask(shop, buyer, oid, [(line(order, b), 1)])
        out = await shop.call("POST", f"/seller/returns/{third['id']}/refuse", admin, json={"reason": "policy"})
        assert (out["status"], out["history"][-1]["actor_kind"]) == ("refused", "admin")
    finally:
        await buyer_sock.close()
        await seller_sock.close()


async def delivered_ago(conn, order_id: str, days: int) -> None:
    """Time passes: the order was delivered `days` ago (its parcel, and its history)."""
    await conn.execute("UPDATE shipments SET delivered_at = now() - make_interval(days => $2) "
                       "WHERE order_id = $1::uuid AND kind = 'outbound' AND delivered_at IS NOT NULL", order_id, days)
    await conn.execute("UPDATE order_status_history SET created_at = now() - make_interval(days => $2) "
                       "WHERE order_id = $1::uuid AND to_status = 'delivered'", order_id, days)


async def test_the_return_window(shop, fake_stripe):
    seller = await shop.seller()
    await shop.call("PUT", "/seller/shipping", seller, json={"return_window_days": 0})
    _, buyer, order, (a, _) = await sold(shop, fake_stripe, seller=seller)
    out = await ask(shop, buyer, order["id"], [(line(order, a), 1)], expect=409)
    assert (out["error"]["code"], out["error"]["details"]["reason"]) == ("not_returnable", "no_returns")

    await shop.call("PUT", "/seller/shipping", seller, json={"return_window_days": 14})
    async with shop.services.db.tx(SYSTEM) as conn:  # time passes: delivered 15 days ago
        await delivered_ago(conn, order["id"], 15)
    out = await ask(shop, buyer, order["id"], [(line(order, a), 1)], expect=409)
    assert out["error"]["details"]["reason"] == "window_closed" and out["error"]["details"]["closed_at"]

    async with shop.services.db.tx(SYSTEM) as conn:  # 13 days ago: still open
        await delivered_ago(conn, order["id"], 13)
    assert (await ask(shop, buyer, order["id"], [(line(order, a), 1)]))["status"] == "requested"


async def test_listings_are_bounded_pages(shop, fake_stripe):
    seller = await shop.seller()
    buyer = await shop.user()
    made = []
    for _ in range(3):
        _, _, order, (a,) = await sold(shop, fake_stripe, lines=((800, 1),), seller=seller, buyer=buyer)
        made.append((await ask(shop, buyer, order["id"], [(line(order, a), 1)]))["id"])
    await shop.call("POST", f"/seller/returns/{made[0]}/refuse", seller, json={"reason": "no"})

    seen, cursor = [], None
    while True:
        page = await shop.call("GET", "/me/returns?limit=2" + (f"&cursor={cursor}" if cursor else ""), buyer)
        assert len(page["items"]) <= 2
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == made[::-1]
    mine = await shop.call("GET", "/seller/returns?status=requested", seller)
    assert [r["id"] for r in mine["items"]] == made[:0:-1]
    assert (await shop.call("GET", "/seller/returns", await shop.seller()))["items"] == []
    assert (await shop.call("GET", "/me/returns", seller))["items"] == []
    await shop.call("GET", "/seller/returns", buyer, expect=403)
    await shop.call("GET", "/seller/returns?limit=101", seller, expect=400)
    await shop.call("GET", "/seller/returns?status=lost", seller, expect=400)
    await shop.call("GET", "/me/returns?cursor=forged", buyer, expect=400)
    await shop.call("GET", "/me/returns/not-a-uuid", buyer, expect=404)
