"""Shipping is fulfillment's one home (live/commerce/shipping/__init__.py): the process's one carrier (Shippo here,
the fake Shippo over real HTTP) under quotes, seller settings, labels, returns and the address book; every shipping
job kind registered (returns.push included); and the carrier's HTTP session closed when the app stops
(Commerce.stop -> Shipping.close)."""
from __future__ import annotations

from tests.commerce.harness import Shop, make_client
from tests.shipping.fake_shippo import API_KEY, FakeShippo
from tests.shipping.test_rates import TO, add, quote, shipping_seller

KINDS = {"shipping.buy_label", "shipping.void_label", "shipping.register_tracking", "sandbox_carrier.advance",
         "returns.push"}


async def test_one_carrier_every_job_kind_and_closed_at_stop(tmp_path, dsn, aiohttp_client):
    fake = await FakeShippo(API_KEY).start()
    try:
        shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, shippo_api_key=API_KEY,
                                      shippo_api_base=fake.url))
        commerce = shop.services.commerce
        shipping = commerce.shipping
        carrier = shipping.carrier
        assert carrier.name == "shippo"
        assert all(c is carrier for c in (shipping.quotes.carrier, shipping.seller_settings.carrier,
                                          shipping.labels.carrier, commerce.addresses.carrier))
        assert shipping.returns.labels is shipping.labels and commerce.orders.shipping is shipping
        assert KINDS <= set(shop.services.jobs.kinds())

        seller, seller_id = await shipping_seller(shop)  # the ship-from checked by Shippo
        vid = (await shop.product(seller, price=1000, stock=3))["variants"][0]["id"]
        buyer = await shop.user()
        await add(shop, buyer, vid)
        [quoted] = (await quote(shop, buyer, TO))["sellers"]
        assert quoted["seller_id"] == seller_id and quoted["rates"]  # rates from the fake Shippo
        assert carrier._session is not None and not carrier._session.closed
        session = carrier._session
        await shop.client.close()  # the app stops: Commerce.stop closes the carrier through Shipping.close
        assert carrier._session is None and session.closed
    finally:
        await fake.close()
