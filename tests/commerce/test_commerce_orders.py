"""Orders after checkout: apply_payment_event (valid, duplicate, out of order, wrong amount or currency,
unknown, paid after cancel, refunds), the unpaid-order sweep, buyer and seller cancellation, the seller moving
orders along and filtering them, order:update pushes to buyer and seller sockets, and stream analytics."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import orjson

from db import streams as streams_db
from live.auth.principal import SYSTEM
from live.commerce.payments.base import PaymentEvent
from tests.helpers import until


def event(out: dict, kind: str, *, amount: int | None = None, currency: str | None = None, key: str | None = None,
          ref: str | None = "same", payment_id: str | None = None) -> PaymentEvent:
    pay = out["payment"]
    return PaymentEvent(provider=pay["provider"], event_key=key or uuid.uuid4().hex, event_type=f"test.{kind}",
                        kind=kind, provider_ref=pay["provider_ref"] if ref == "same" else ref,
                        amount_minor=pay["amount_minor"] if amount is None else amount,
                        currency=currency or pay["currency"], payment_id=payment_id)


async def bought(shop, *, sellers: int = 1, stock: int = 5, qty: int = 2, price: int = 1000, coupon: str | None = None,
                 buyer=None):
    """Sellers with one product each, a buyer who checks out qty of each with the sandbox."""
    buyer = buyer or await shop.user()
    made = []
    for _ in range(sellers):
        seller = await shop.seller()
        vid = (await shop.product(seller, stock=stock, price=price))["variants"][0]["id"]
        await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": qty})
        made.append((seller, vid))
    extra = {"coupon_code": coupon} if coupon else {}
    out = await shop.checkout(buyer, provider="sandbox", **extra)
    return buyer, made, out


async def status_becomes(shop, order_id: str, status: str) -> None:
    """Wait for the order's status (a payment webhook is applied by its job, after the answer)."""
    async def reached() -> bool:
        return await order_status(shop, order_id) == status
    await until(reached, what=f"order {status}")


async def order_status(shop, order_id: str) -> str:
    async with shop.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT status FROM orders WHERE id = $1::uuid", order_id)


async def refunds_settled(shop, payment_id: str) -> None:
    async def done() -> bool:
        return (await payment_row(shop, payment_id))["refund_due_minor"] == 0
    await until(done, what="the refunds settled")


async def payment_row(shop, payment_id: str) -> dict:
    async with shop.services.db.tx(SYSTEM) as conn:
        return dict(await conn.fetchrow("SELECT status, issue, issue_details, refund_due_minor FROM payments "
                                        "WHERE id = $1::uuid", payment_id))


async def test_payment_events_are_idempotent_and_monotonic(shop):
    apply = shop.services.commerce.apply_payment_event
    buyer, [(seller, vid)], out = await bought(shop)
    order_id = out["orders"][0]["id"]
    # wrong amount or currency: recorded and flagged, not paid
    assert await apply(event(out, "succeeded", amount=1)) == "amount_mismatch"
    assert await apply(event(out, "succeeded", currency="NGN")) == "amount_mismatch"
    pay = await payment_row(shop, out["payment"]["id"])
    assert pay["status"] == "requires_action" and pay["issue"] == "amount_mismatch"
    assert pay["issue_details"]["received"] == {"amount_minor": 2000, "currency": "NGN"}
    assert await order_status(shop, order_id) == "pending_payment"
    # a payment we do not know
    assert await apply(event(out, "succeeded", ref="sbx_unknown")) == "unknown_payment"
    assert await apply(event(out, "succeeded", ref=None, payment_id="not-a-uuid")) == "unknown_payment"
    # valid (found by our payment id when the reference is not stored yet)
    assert await apply(event(out, "succeeded", ref="sbx_not_stored_yet", payment_id=out["payment"]["id"])) == "applied"
    assert await order_status(shop, order_id) == "paid"
    assert (await payment_row(shop, out["payment"]["id"]))["status"] == "succeeded"
    # the same event again, and a failure arriving after the success: nothing moves
    assert await apply(event(out, "succeeded", key="evt-1")) == "ignored"
    assert await apply(event(out, "failed")) == "ignored"
    assert await apply(event(out, "canceled")) == "ignored"
    assert await apply(event(out, "ignored")) == "ignored"
    detail = await shop.call("GET", f"/me/orders/{order_id}", buyer)
    assert [(h["from"], h["to"], h["actor_kind"]) for h in detail["history"]] == [
        (None, "pending_payment", "user"), ("pending_payment", "paid", "webhook")]
    assert detail["payment"]["status"] == "succeeded"
    assert await shop.counters(vid) == {"on_hand": 5, "reserved": 0, "sold": 2}
    # a full refund of an order not yet shipped: refunded, units back
    assert await apply(event(out, "refunded")) == "applied"
    assert await order_status(shop, order_id) == "refunded"
    assert await shop.counters(vid) == {"on_hand": 5, "reserved": 0, "sold": 0}
    assert await apply(event(out, "refunded")) == "ignored"
    assert await apply(event(out, "succeeded")) == "ignored"
    assert await order_status(shop, order_id) == "refunded"
    await shop.assert_ledger(vid)


async def test_failure_cancels_and_returns_stock_and_coupon_then_late_success_is_flagged(shop):
    apply = shop.services.commerce.apply_payment_event
    seller = await shop.seller()
    await shop.call("POST", "/coupons", seller, json={"code": "ONCE", "kind": "percent", "value": 10,
                                                      "usage_limit": 1}, expect=201)
    buyer = await shop.user()
    vid = (await shop.product(seller, stock=3, price=1000))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 3})
    out = await shop.checkout(buyer, provider="sandbox", coupon_code="ONCE")
    order_id = out["orders"][0]["id"]
    assert out["payment"]["amount_minor"] == 2700
    assert await apply(event(out, "failed")) == "applied"
    assert await order_status(shop, order_id) == "canceled"
    assert await shop.counters(vid) == {"on_hand": 3, "reserved": 0, "sold": 0}
    assert (await shop.call("GET", "/me/coupons", seller))["items"][0]["used_count"] == 0
    assert await apply(event(out, "failed")) == "ignored"
    # the money arrives anyway (out of order): recorded and flagged, the order stays canceled, and it is refunded
    # by itself (sent in the background once the event is applied; the sandbox's refund webhook closes it)
    assert await apply(event(out, "succeeded")) == "paid_after_cancel"
    assert await order_status(shop, order_id) == "canceled"
    await refunds_settled(shop, out["payment"]["id"])  # the refund.send job, then the sandbox's webhook job
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["issue"], pay["refund_due_minor"]) == ("refunded", None, 0)
    assert pay["issue_details"]["orders"] == [order_id]
    detail = await shop.call("GET", f"/me/orders/{order_id}", buyer)
    assert detail["status"] == "canceled" and detail["refund"]["status"] == "succeeded"
    assert detail["refund"]["amount_minor"] == 2700
    # the same refund made by hand in the provider's dashboard as well changes nothing more
    assert await apply(event(out, "refunded")) == "ignored"
    assert await order_status(shop, order_id) == "canceled"
    await shop.assert_ledger(vid)


async def test_unpaid_orders_are_canceled_after_the_timeout(shop):
    buyer, [(seller, vid)], out = await bought(shop, stock=4, qty=3)
    other_buyer, [(_, other_vid)], fresh = await bought(shop)
    watcher_buyer = await shop.viewer(buyer)
    watcher_seller = await shop.viewer(seller)
    try:
        assert await shop.services.commerce.order_payments.cancel_unpaid() == 0  # nothing is old yet
        async with shop.services.db.tx(SYSTEM) as conn:
            await conn.execute("UPDATE orders SET created_at = now() - interval '31 minutes' WHERE id = $1::uuid",
                               out["orders"][0]["id"])
        assert await shop.services.commerce.order_payments.cancel_unpaid() == 1
        assert await order_status(shop, out["orders"][0]["id"]) == "canceled"
        assert await order_status(shop, fresh["orders"][0]["id"]) == "pending_payment"
        assert await shop.counters(vid) == {"on_hand": 4, "reserved": 0, "sold": 0}
        assert (await payment_row(shop, out["payment"]["id"]))["status"] == "canceled"
        for sock in (watcher_buyer, watcher_seller):
            pushed = await sock.wait_for("order:update", lambda d: d["order"]["status"] == "canceled")
            assert pushed["order"]["id"] == out["orders"][0]["id"]
        history = (await shop.call("GET", f"/me/orders/{out['orders'][0]['id']}", buyer))["history"]
        assert history[-1]["actor_kind"] == "system" and history[-1]["reason"] == "payment not completed in time"
        # the buyer pays on the sandbox page after all: the confirm page refuses a closed payment
        status, body, _ = await shop.call("GET", "/me/cart", buyer, expect=None)
        assert status == 200
        ref = out["payment"]["provider_ref"]
        resp = await shop.client.post(f"/pay/sandbox/{ref}", json={"outcome": "succeeded"})
        assert resp.status == 409
        await shop.assert_ledger(vid)
        await shop.assert_ledger(other_vid)
    finally:
        await watcher_buyer.close()
        await watcher_seller.close()


async def test_timeout_sweep_asks_the_provider_first(shop):
    buyer, [(seller, vid)], out = await bought(shop)
    # the buyer paid on the sandbox page: the webhook is in, so the sweep has nothing to cancel
    resp = await shop.client.post(f"/pay/sandbox/{out['payment']['provider_ref']}", json={"outcome": "succeeded"})
    assert resp.status == 200
    await status_becomes(shop, out["orders"][0]["id"], "paid")  # once the webhook's job ran
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE orders SET created_at = now() - interval '1 day'")
    assert await shop.services.commerce.order_payments.cancel_unpaid() == 0
    assert await order_status(shop, out["orders"][0]["id"]) == "paid"
    # a payment the provider reports paid although our orders never moved (its webhook got lost on our side):
    # the sweep's verify call finds it and pays the orders instead of canceling them
    buyer2, [(_, vid2)], out2 = await bought(shop)
    body = shop.services.payments.get("sandbox").event_body(out2["payment"]["provider_ref"], "succeeded",
                                                            out2["payment"]["amount_minor"], "USD")
    payload = orjson.loads(body)
    async with shop.services.db.tx(SYSTEM) as conn:  # what the sandbox's verify reads: its last event
        await conn.execute("""INSERT INTO webhook_events (provider, event_key, event_type, payload, processed_at)
                              VALUES ('sandbox', $1, $2, $3, now())""", payload["id"], payload["type"], payload)
        await conn.execute("UPDATE orders SET created_at = now() - interval '1 day'")
    assert await shop.services.commerce.order_payments.cancel_unpaid() == 0
    assert await order_status(shop, out2["orders"][0]["id"]) == "paid"
    await shop.assert_ledger(vid2)


async def test_buyer_cancels(shop):
    apply = shop.services.commerce.apply_payment_event
    # unpaid, two sellers, one payment: the whole checkout goes, coupon use given back
    admin = await shop.user(role="admin")
    await shop.call("POST", "/coupons", admin, json={"code": "PLAT", "kind": "percent", "value": 10,
                                                     "usage_limit": 1, "platform": True}, expect=201)
    buyer, made, out = await bought(shop, sellers=2, coupon="PLAT")
    first, second = out["orders"]
    canceled = await shop.call("POST", f"/me/orders/{first['id']}/cancel", buyer, json={"reason": "changed my mind"})
    assert canceled["status"] == "canceled" and canceled["history"][-1]["reason"] == "changed my mind"
    assert await order_status(shop, second["id"]) == "canceled"
    assert (await payment_row(shop, out["payment"]["id"]))["status"] == "canceled"
    for _, vid in made:
        assert await shop.counters(vid) == {"on_hand": 5, "reserved": 0, "sold": 0}
    assert (await shop.call("GET", "/me/coupons?platform=true", admin))["items"][0]["used_count"] == 0
    await shop.call("POST", f"/me/orders/{first['id']}/cancel", buyer, json={}, expect=409)
    await shop.call("POST", f"/me/orders/{first['id']}/cancel", await shop.user(), json={}, expect=404)
    # paid, not yet being prepared: canceled, units back, refunded (by its job; the sandbox refunds at once)
    buyer, [(seller, vid)], out = await bought(shop)
    assert await apply(event(out, "succeeded")) == "applied"
    canceled = await shop.call("POST", f"/me/orders/{out['orders'][0]['id']}/cancel", buyer, json={})
    assert canceled["status"] == "canceled" and canceled["refund"]["status"] == "requested"
    assert await shop.counters(vid) == {"on_hand": 5, "reserved": 0, "sold": 0}
    await refunds_settled(shop, out["payment"]["id"])  # its refund.send job, then the sandbox's webhook job
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["issue"], pay["refund_due_minor"]) == ("refunded", None, 0)
    # being prepared: only the seller may cancel now
    buyer, [(seller, vid)], out = await bought(shop)
    await apply(event(out, "succeeded"))
    await shop.call("POST", f"/seller/orders/{out['orders'][0]['id']}/status", seller, json={"status": "processing"})
    body = await shop.call("POST", f"/me/orders/{out['orders'][0]['id']}/cancel", buyer, json={}, expect=409)
    assert "seller" in body["error"]["message"]


async def test_seller_moves_orders_along(shop):
    apply = shop.services.commerce.apply_payment_event
    buyer, [(seller, vid)], out = await bought(shop)
    order_id = out["orders"][0]["id"]
    intruder = await shop.seller()
    buyer_socket, seller_socket = await shop.viewer(buyer), await shop.viewer(seller)
    try:
        path = f"/seller/orders/{order_id}/status"
        body = await shop.call("POST", path, seller, json={"status": "processing"}, expect=409)  # not paid yet
        assert body["error"]["code"] == "conflict"
        assert await apply(event(out, "succeeded")) == "applied"
        for sock in (buyer_socket, seller_socket):
            got = await sock.wait_for("order:update", lambda d: d["order"]["status"] == "paid")
            assert got["order"]["id"] == order_id and got["order"]["number"] == out["orders"][0]["number"]
            assert got["order"]["items"][0]["quantity"] == 2
        await shop.call("POST", path, intruder, json={"status": "processing"}, expect=404)
        await shop.call("POST", path, buyer, json={"status": "processing"}, expect=403)
        await shop.call("POST", path, seller, json={"status": "delivered"}, expect=409)
        await shop.call("POST", path, seller, json={"status": "paid"}, expect=422)
        await shop.call("POST", path, seller, json={"status": "shipped"}, expect=422)  # needs a tracking number
        for to in ("processing", "shipped", "delivered"):
            if to == "shipped":  # shipped by the seller: carrier and tracking number (docs/shipping.md)
                moved = await shop.call("POST", f"/seller/orders/{order_id}/tracking", seller,
                                        json={"carrier": "ups", "tracking_number": "1Z999AA10123456784"}, expect=201)
            else:
                moved = await shop.call("POST", path, seller, json={"status": to, "reason": f"now {to}"})
            assert moved["status"] == to
            got = await buyer_socket.wait_for("order:update", lambda d, to=to: d["order"]["status"] == to)
            assert got["order"]["id"] == order_id
        await shop.call("POST", path, seller, json={"status": "canceled"}, expect=409)  # delivered: too late
        detail = await shop.call("GET", f"/me/orders/{order_id}", buyer)
        assert [h["to"] for h in detail["history"]] == ["pending_payment", "paid", "processing", "shipped", "delivered"]
        assert [h["actor_id"] for h in detail["history"][2:]] == [seller.id] * 3
        # a shipped order's refund does not put units back on the shelf
        assert await apply(event(out, "refunded")) == "applied"
        assert await order_status(shop, order_id) == "refunded"
        assert await shop.counters(vid) == {"on_hand": 5, "reserved": 0, "sold": 2}
    finally:
        await buyer_socket.close()
        await seller_socket.close()


async def test_seller_cancels_own_order_of_a_shared_checkout(shop):
    apply = shop.services.commerce.apply_payment_event
    buyer, [(alice, a_vid), (bob, b_vid)], out = await bought(shop, sellers=2)
    mine = next(o for o in out["orders"] if o["seller"]["name"] == alice.name)
    theirs = next(o for o in out["orders"] if o["seller"]["name"] == bob.name)
    await shop.call("POST", f"/seller/orders/{mine['id']}/status", alice, json={"status": "canceled"})
    assert await order_status(shop, theirs["id"]) == "pending_payment"
    assert (await payment_row(shop, out["payment"]["id"]))["status"] == "requires_action"
    assert await shop.counters(a_vid) == {"on_hand": 5, "reserved": 0, "sold": 0}
    # the buyer pays the full amount: Bob's order is paid, Alice's stays canceled and is refunded (in part)
    assert await apply(event(out, "succeeded")) == "paid_after_cancel"
    assert await order_status(shop, theirs["id"]) == "paid"
    await refunds_settled(shop, out["payment"]["id"])  # the refund.send job, then the sandbox's webhook job
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["issue"], pay["refund_due_minor"]) == ("succeeded", None, 0)
    assert (await shop.call("GET", f"/seller/orders/{mine['id']}", alice))["refund"]["status"] == "succeeded"
    # a paid order canceled by its seller before shipping: refunded too, which leaves nothing of the payment
    moved = await shop.call("POST", f"/seller/orders/{theirs['id']}/status", bob,
                            json={"status": "canceled", "reason": "lost"})
    assert moved["refund"]["amount_minor"] == theirs["total_minor"]
    await refunds_settled(shop, out["payment"]["id"])
    moved = await shop.call("GET", f"/seller/orders/{theirs['id']}", bob)
    assert moved["payment"]["refunded_minor"] == mine["total_minor"] + theirs["total_minor"]
    pay = await payment_row(shop, out["payment"]["id"])
    assert (pay["status"], pay["refund_due_minor"]) == ("refunded", 0)
    for vid in (a_vid, b_vid):
        await shop.assert_ledger(vid)


async def test_seller_lists_and_filters_orders(shop):
    seller = await shop.seller()
    p = await shop.product(seller, stock=50, price=500)
    vid = p["variants"][0]["id"]
    stream = await shop.live_stream(seller, product_ids=[p["id"]])
    ids = []
    for i in range(5):
        buyer = await shop.user()
        await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 1,
                                                                "stream_id": stream["slug"] if i % 2 == 0 else None})
        out = await shop.checkout(buyer, provider="sandbox")
        ids.append(out["orders"][0]["id"])
        if i < 2:
            await shop.services.commerce.apply_payment_event(event(out, "succeeded"))
    other = await shop.seller()
    assert (await shop.call("GET", "/seller/orders", other))["items"] == []
    await shop.call("GET", "/seller/orders", await shop.user(), expect=403)

    async def pages(query: str) -> list[str]:
        seen, cursor = [], None
        while True:
            page = await shop.call("GET", f"/seller/orders?limit=2{query}" + (f"&cursor={cursor}" if cursor else ""),
                                   seller)
            seen += [o["id"] for o in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                return seen

    assert await pages("") == list(reversed(ids))
    assert set(await pages("&status=paid")) == set(ids[:2])
    assert set(await pages(f"&stream_id={stream['slug']}")) == {ids[0], ids[2], ids[4]}
    assert set(await pages(f"&stream_id={stream['id']}&status=paid")) == {ids[0]}
    now = datetime.now(timezone.utc)
    assert set(await pages(f"&from={(now - timedelta(hours=1)).isoformat().replace('+', '%2B')}")) == set(ids)
    assert await pages(f"&to={(now - timedelta(hours=1)).isoformat().replace('+', '%2B')}") == []
    await shop.call("GET", "/seller/orders?stream_id=nope", seller, expect=404)
    await shop.call("GET", "/seller/orders?status=lost", seller, expect=400)
    admin = await shop.user(role="admin")
    assert set(ids) <= {o["id"] for o in (await shop.call("GET", "/seller/orders?limit=100", admin))["items"]}


async def test_stream_analytics(shop):
    seller = await shop.seller()
    p = await shop.product(seller, stock=20, price=1500)
    vid = p["variants"][0]["id"]
    stream = await shop.live_stream(seller, product_ids=[p["id"]])
    buyers = [await shop.user() for _ in range(3)]
    socks = [await shop.viewer(b) for b in buyers]
    try:
        for s in socks:
            assert (await s.call("join", {"stream_id": stream["id"]}))["ok"]
        assert (await socks[0].call("chat:send", {"text": "love it"}))["ok"]
        assert (await socks[1].call("chat:send", {"text": "price?"}))["ok"]
        for kind in ("heart", "heart", "fire"):
            assert (await socks[2].call("reaction", {"kind": kind}))["ok"]
        for s in socks:
            assert (await s.call("cart:add", {"variant_id": vid, "qty": 2}))["ok"]
        await socks[0].call("cart:update", {"variant_id": vid, "qty": 3})
        paid = await shop.checkout(buyers[0], provider="sandbox")
        await shop.services.commerce.apply_payment_event(event(paid, "succeeded"))
        await shop.checkout(buyers[1], provider="sandbox")  # not paid
        # a purchase of the same product outside the stream is not the stream's
        outsider = await shop.user()
        await shop.call("POST", "/me/cart/items", outsider, json={"variant_id": vid})
        elsewhere = await shop.checkout(outsider, provider="sandbox")
        await shop.services.commerce.apply_payment_event(event(elsewhere, "succeeded"))

        async def reactions_counted() -> bool:  # reactions are counted in 250 ms ticks
            stats = await shop.call("GET", f"/livestreams/{stream['slug']}/analytics", seller)
            return stats["reactions_total"] == 3

        await until(reactions_counted, 5, step=0.1)
        stats = await shop.call("GET", f"/livestreams/{stream['slug']}/analytics", seller)
        assert stats["stream_id"] == stream["id"] and stats["peak_viewers"] >= 0
        assert stats["chat_messages"] == 2
        assert stats["reactions"]["heart"] == 2 and stats["reactions"]["fire"] == 1 and stats["reactions_total"] == 3
        assert (stats["add_to_carts"], stats["add_to_cart_buyers"], stats["units_added"]) == (4, 3, 7)
        assert (stats["orders"], stats["paid_orders"], stats["buyers"]) == (2, 1, 1)
        assert stats["revenue"] == [{"currency": "USD", "amount_minor": 4500, "units": 3}]
        assert stats["conversion"]["cart_conversion"] == round(1 / 3, 4)
        other = await shop.seller()
        await shop.call("GET", f"/livestreams/{stream['id']}/analytics", other, expect=403)
        await shop.call("GET", f"/livestreams/{stream['id']}/analytics", buyers[0], expect=403)
        await shop.call("GET", f"/livestreams/{stream['id']}/analytics", expect=401)
        await shop.call("GET", "/livestreams/no-such-stream/analytics", seller, expect=404)
        admin = await shop.user(role="admin")
        assert (await shop.call("GET", f"/livestreams/{stream['id']}/analytics", admin))["paid_orders"] == 1
    finally:
        for s in socks:
            await s.close()


async def test_reaction_totals_are_stored_and_outlive_the_worker(shop):
    seller = await shop.seller()
    stream = await shop.live_stream(seller)
    sock = await shop.viewer(await shop.user())
    rooms = shop.services.rooms
    try:
        assert (await sock.call("join", {"stream_id": stream["id"]}))["ok"]
        for kind in ("heart", "heart", "wow"):
            assert (await sock.call("reaction", {"kind": kind}))["ok"]
        await rooms.publish_reactions()  # the 250 ms tick, now
        await rooms.save_reactions()     # the 5 s store, now
        async with shop.services.db.tx(SYSTEM) as conn:
            stored = await conn.fetchval("SELECT reaction_totals FROM livestreams WHERE id = $1::uuid", stream["id"])
        assert stored["heart"] == 2 and stored["wow"] == 1
        # a store never lowers what is there (another worker may have stored more)
        async with shop.services.db.tx(SYSTEM) as conn:
            await streams_db.save_reaction_totals(conn, stream["id"], {"heart": 1, "wow": 5})
            stored = await conn.fetchval("SELECT reaction_totals FROM livestreams WHERE id = $1::uuid", stream["id"])
        assert stored["heart"] == 2 and stored["wow"] == 5
        # as after a restart: the room's state is read again and starts from the stored totals
        rooms.streams.forget(stream["id"])
        state = await rooms.streams.get(stream["id"])
        assert state.reaction_totals["heart"] == 2 and state.reaction_totals["wow"] == 5
        stats = await shop.call("GET", f"/livestreams/{stream['id']}/analytics", seller)
        assert stats["reactions"]["heart"] == 2 and stats["reactions"]["wow"] == 5
    finally:
        await sock.close()
