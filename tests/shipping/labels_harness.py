"""Helpers of the label and tracking tests: a seller who ships (ship-from set through the REST API), a paid order
(checkout with the sandbox payment, its success event applied), and reading shipment and order rows."""
from __future__ import annotations

import uuid

from live.auth.principal import SYSTEM
from live.commerce.payments.base import PaymentEvent
from tests.commerce.harness import Shop, make_client
from tests.helpers import until
from tests.payments.refunding import WHSEC
from tests.shipping.fake_shippo import API_KEY

SHIPPO_TOKEN = "shippo-webhook-token-0123456789"


async def shippo_shop(tmp_path, dsn, aiohttp_client, fake, **settings) -> Shop:
    """The app with Shippo (the fake Shippo server `fake`) as its carrier."""
    return Shop(await make_client(tmp_path, dsn, aiohttp_client, shippo_api_key=API_KEY, shippo_api_base=fake.url,
                                  shippo_webhook_token=SHIPPO_TOKEN, **settings))


async def stripe_shop(tmp_path, dsn, aiohttp_client, fake_stripe, **settings) -> Shop:
    """The app with Stripe (the fake Stripe server) and the sandbox carrier."""
    return Shop(await make_client(tmp_path, dsn, aiohttp_client, stripe_secret_key=fake_stripe.api_key,
                                  stripe_webhook_secret=WHSEC, stripe_api_base=fake_stripe.url, **settings))


SHIP_FROM = {"name": "Ada's Shop", "line1": "1 Congress Ave", "city": "Austin", "state": "TX",
             "postal_code": "78701", "country": "US", "phone": "+15125550100"}
US_BUYER = {"name": "Bo Buyer", "line1": "5 Broadway", "city": "New York", "state": "NY", "postal_code": "10001",
            "country": "US"}


async def seller_ships(shop, seller, *, auto: bool = False) -> None:
    await shop.call("PUT", "/seller/shipping", seller, json={"ship_from": SHIP_FROM, "auto_purchase_label": auto})


async def checked_out(shop, *, seller=None, buyer=None, auto: bool = False, qty: int = 1, **checkout):
    """(buyer, seller, checkout response) of a one-product order from a seller who ships."""
    seller = seller or await shop.seller()
    await seller_ships(shop, seller, auto=auto)
    buyer = buyer or await shop.user()
    vid = (await shop.product(seller, stock=5, price=2500))["variants"][0]["id"]
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": qty})
    out = await shop.checkout(buyer, provider="sandbox", address=US_BUYER, **checkout)
    return buyer, seller, out


async def pay(shop, out: dict) -> str:
    pay = out["payment"]
    event = PaymentEvent(provider=pay["provider"], event_key=uuid.uuid4().hex, event_type="test.succeeded",
                         kind="succeeded", provider_ref=pay["provider_ref"], amount_minor=pay["amount_minor"],
                         currency=pay["currency"], payment_id=None)
    return await shop.services.commerce.apply_payment_event(event)


async def paid_order(shop, **kw):
    """(buyer, seller, order id) of a paid order whose seller ships."""
    buyer, seller, out = await checked_out(shop, **kw)
    assert await pay(shop, out) == "applied"
    return buyer, seller, out["orders"][0]["id"]


async def shipment_row(shop, order_id: str, kind: str = "outbound") -> dict | None:
    async with shop.services.db.tx(SYSTEM) as conn:
        row = await conn.fetchrow("SELECT *, id::text AS sid FROM shipments WHERE order_id = $1::uuid AND kind = $2 "
                                  "ORDER BY created_at DESC LIMIT 1", order_id, kind)
    return dict(row) if row else None


async def order_status(shop, order_id: str) -> str:
    async with shop.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT status FROM orders WHERE id = $1::uuid", order_id)


async def wait_shipment(shop, order_id: str, status: str, timeout: float = 10.0) -> dict:
    async def reached() -> bool:
        row = await shipment_row(shop, order_id)
        return row is not None and row["status"] == status
    await until(reached, timeout, what=f"shipment {status}")
    return await shipment_row(shop, order_id)


async def wait_order(shop, order_id: str, status: str, timeout: float = 10.0) -> None:
    async def reached() -> bool:
        return await order_status(shop, order_id) == status
    await until(reached, timeout, what=f"order {status}")


async def shipment_history(shop, shipment_id: str) -> list[tuple]:
    async with shop.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT from_status, to_status, actor_kind FROM shipment_status_history "
                                "WHERE shipment_id = $1::uuid ORDER BY id", shipment_id)
    return [tuple(r) for r in rows]


async def order_history(shop, order_id: str) -> list[str]:
    async with shop.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT to_status FROM order_status_history WHERE order_id = $1::uuid ORDER BY id",
                                order_id)
    return [r[0] for r in rows]


async def tracked(shop, timeout: float = 10.0) -> None:
    """Wait until every `shipping.apply_tracking` job is done (tracking webhooks are answered before they apply;
    the app's in-process worker runs the jobs)."""
    async def none_left() -> bool:
        async with shop.services.db.tx(SYSTEM) as conn:
            return await conn.fetchval(
                "SELECT count(*) FROM pgqueuer WHERE entrypoint = 'shipping.apply_tracking'") == 0
    await until(none_left, timeout=timeout, what="tracking applied")
