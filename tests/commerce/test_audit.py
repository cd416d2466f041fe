"""The audit log of commerce changes: every seller and admin change to products, variants (prices), stock,
coupons, categories, order status and refunds writes a row in the change's own transaction (who, what,
before -> after, the request id), and admins list and filter it over REST (GET /api/v1/admin/audit).
Real PostgreSQL, real HTTP."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from live.auth.principal import SYSTEM
from live.commerce.payments.base import PaymentEvent


async def audit(shop, admin, query: str = "") -> list[dict]:
    return (await shop.call("GET", f"/admin/audit?{query}", admin))["items"]


async def test_catalog_changes_are_audited_with_before_after_and_request_id(shop):
    seller, admin = await shop.seller(), await shop.user(role="admin")
    rid = f"req-{uuid.uuid4().hex[:12]}"
    p = await shop.call("POST", "/products", seller, headers={"X-Request-ID": rid}, expect=201, json={
        "title": "Lamp", "status": "active",
        "variants": [{"sku": f"L-{uuid.uuid4().hex[:8]}", "price_minor": 900, "currency": "USD", "stock": 4}]})
    vid = p["variants"][0]["id"]
    await shop.call("PATCH", f"/products/{p['id']}", seller, json={"title": "Desk lamp", "description": None})
    await shop.call("PATCH", f"/variants/{vid}", seller, json={"price_minor": 1200, "max_per_buyer": 3})
    await shop.call("POST", f"/variants/{vid}/stock", seller,
                    json={"delta": 6, "reason": "restock", "idempotency_key": "r1"})
    await shop.call("POST", f"/variants/{vid}/stock", seller,
                    json={"delta": 6, "reason": "restock", "idempotency_key": "r1"})
    await shop.call("DELETE", f"/products/{p['id']}", seller)
    refused = await shop.call("PATCH", f"/variants/{vid}", seller, json={"price_minor": -1}, expect=422)
    assert refused["error"]["code"] == "validation_failed"

    rows = await audit(shop, admin, f"actor={seller.id}")
    assert [r["action"] for r in rows] == ["product.archive", "stock.adjust", "variant.update", "product.update",
                                           "product.create"]  # newest first; the replayed adjustment wrote nothing
    assert all(r["actor_id"] == seller.id and r["actor_name"] == seller.name for r in rows)
    archive, stock, price, title, create = rows
    assert create["entity"] == "product" and create["entity_id"] == p["id"] and create["request_id"] == rid
    assert create["data"]["after"]["title"] == "Lamp" and create["data"]["after"]["variants"][0]["price_minor"] == 900
    assert title["data"] == {"before": {"title": "Lamp"}, "after": {"title": "Desk lamp"}}  # only what changed
    assert price["entity"] == "variant" and price["entity_id"] == vid
    assert price["data"]["before"] == {"price_minor": 900, "max_per_buyer": None}
    assert price["data"]["after"] == {"price_minor": 1200, "max_per_buyer": 3}
    assert stock["data"]["before"] == {"on_hand": 4} and stock["data"]["after"] == {"on_hand": 10}
    assert stock["data"]["delta"] == 6 and stock["data"]["reason"] == "restock"
    assert archive["data"] == {"before": {"status": "active"}, "after": {"status": "archived"}}
    # filters: entity and id, exact action, action prefix, time range
    assert [r["action"] for r in await audit(shop, admin, f"entity=variant&entity_id={vid}")] == [
        "stock.adjust", "variant.update"]
    assert [r["id"] for r in await audit(shop, admin, "action=variant.update&actor=" + seller.id)] == [price["id"]]
    assert {r["action"] for r in await audit(shop, admin, f"action=product.&actor={seller.id}")} == {
        "product.archive", "product.update", "product.create"}
    later = (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat()
    assert await audit(shop, admin, f"actor={seller.id}&from={later.replace('+', '%2B')}") == []
    assert len(await audit(shop, admin, f"actor={seller.id}&to={later.replace('+', '%2B')}")) == 5


async def test_coupons_categories_and_cursor_pages(shop):
    seller, admin = await shop.seller(), await shop.user(role="admin")
    c = await shop.call("POST", "/coupons", seller, json={"code": "TEN", "kind": "percent", "value": 10},
                        expect=201)
    await shop.call("PATCH", f"/coupons/{c['id']}", seller, json={"active": False, "usage_limit": 50})
    cat = await shop.call("POST", "/categories", admin, json={"name": "Lamps", "slug": f"lamps-{uuid.uuid4().hex[:6]}"},
                          expect=201)
    rows = await audit(shop, admin, f"entity=coupon&entity_id={c['id']}")
    assert [r["action"] for r in rows] == ["coupon.update", "coupon.create"]
    assert rows[0]["data"] == {"before": {"active": True, "usage_limit": None},
                               "after": {"active": False, "usage_limit": 50}}
    assert rows[1]["data"]["after"]["code"] == "TEN" and rows[1]["actor_id"] == seller.id
    [made] = await audit(shop, admin, f"entity=category&entity_id={cat['id']}")
    assert made["action"] == "category.create" and made["actor_id"] == admin.id
    # cursor pages: every row once, in order
    seen, cursor = [], None
    while True:
        page = await shop.call("GET", "/admin/audit?limit=1" + (f"&cursor={cursor}" if cursor else ""), admin)
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 3


async def test_order_status_and_refunds_are_audited(shop):
    seller, buyer, admin = await shop.seller(), await shop.user(), await shop.user(role="admin")
    vid = (await shop.product(seller, stock=5, price=700))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 2})
    out = await shop.checkout(buyer, provider="sandbox")
    order_id, pay = out["orders"][0]["id"], out["payment"]
    await shop.services.commerce.apply_payment_event(PaymentEvent(
        provider="sandbox", event_key=uuid.uuid4().hex, event_type="test.succeeded", kind="succeeded",
        provider_ref=pay["provider_ref"], amount_minor=pay["amount_minor"], currency=pay["currency"]))
    await shop.call("POST", f"/seller/orders/{order_id}/status", seller, json={"status": "processing"})
    await shop.call("POST", f"/seller/orders/{order_id}/status", admin,
                    json={"status": "canceled", "reason": "damaged in the warehouse"})
    rows = await audit(shop, admin, f"entity=order&entity_id={order_id}")
    assert [(r["actor_id"], r["data"]["before"], r["data"]["after"], r["data"]["by"]) for r in rows] == [
        (admin.id, {"status": "processing"}, {"status": "canceled"}, "admin"),
        (seller.id, {"status": "paid"}, {"status": "processing"}, "seller")]
    assert rows[0]["data"]["reason"] == "damaged in the warehouse"
    [refund] = await audit(shop, admin, "entity=refund&action=refund.request&actor=" + admin.id)
    assert refund["data"]["order_id"] == order_id and refund["data"]["after"]["amount_minor"] == 1400
    async with shop.services.db.tx(SYSTEM) as conn:
        refund_id = await conn.fetchval("SELECT id::text FROM payment_refunds WHERE order_id = $1::uuid", order_id)
    assert refund["entity_id"] == refund_id


async def test_only_admins_read_the_log_and_bad_filters_are_refused(shop):
    seller, admin = await shop.seller(), await shop.user(role="admin")
    await shop.call("GET", "/admin/audit", expect=401)
    await shop.call("GET", "/admin/audit", seller, expect=403)
    for bad in ("actor=nope", "action=DROP%20TABLE", "entity=a.b", "limit=0", "limit=201", "from=yesterday",
                "entity_id=" + "x" * 201, "from=0001-01-01T00:00:00%2B14:00", "to=9999-12-31T23:59:59-14:00"):
        body = await shop.call("GET", f"/admin/audit?{bad}", admin, expect=400)
        assert body["error"]["code"] == "invalid", bad
    assert (await shop.call("GET", "/admin/audit?from=2026-01-01T00:00:00&to=2026-01-02", admin))["items"] == []
    for forged in ("abc", "WyJ4Il0", "WzEsMl0"):
        body = await shop.call("GET", f"/admin/audit?cursor={forged}", admin, expect=400)
        assert body["error"]["code"] == "invalid"
