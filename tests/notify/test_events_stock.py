"""seller.stock_low: told by the database in the statement that lowers a variant's available stock (a seller's
adjustment, a buyer's cart reservation), once per crossing from above STOCK_LOW_THRESHOLD to at most it; never for
a change that stays low or goes up; never with the threshold at 0."""
from __future__ import annotations

from tests.commerce.harness import Shop, make_client
from tests.notify.notes import all_delivered, notes


async def adjust(shop, seller, vid: str, delta: int) -> None:
    await shop.call("POST", f"/variants/{vid}/stock", seller, json={"delta": delta, "reason": "count"})


async def test_low_stock_is_told_once_per_crossing_whatever_lowers_it(shop):
    seller = await shop.seller()
    product = await shop.product(seller, title="Lamp", stock=8,
                                 variants=[{"sku": "LAMP-RED", "price_minor": 900, "currency": "USD", "stock": 8,
                                            "color": "red"}])
    vid = product["variants"][0]["id"]
    await adjust(shop, seller, vid, -2)  # 6: still above
    assert await notes(shop.services, seller.id) == []
    await adjust(shop, seller, vid, -1)  # 5: crossed
    await adjust(shop, seller, vid, -1)  # 4: still low, no second notice
    await all_delivered(shop.services)
    [low] = await notes(shop.services, seller.id)
    assert low["kind"] == "seller.stock_low"
    assert low["data"] == {"product_id": product["id"], "variant_id": vid, "title": "Lamp (red)", "sku": "LAMP-RED",
                           "available": 5, "threshold": 5}
    page = await shop.call("GET", "/me/notifications", seller)
    assert (page["items"][0]["title"], page["items"][0]["url"]) == ("Lamp (red): 5 left", f"/studio/products/"
                                                                                          f"{product['id']}")
    # back up, then a buyer's cart takes it down again: a second crossing, a second notice
    await adjust(shop, seller, vid, +6)  # 10
    buyer, other = await shop.user(), await shop.user()
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 3})  # 7
    assert len(await notes(shop.services, seller.id)) == 1
    await shop.call("POST", "/me/cart/items", other, json={"variant_id": vid, "qty": 3})  # 4
    await all_delivered(shop.services)
    got = await notes(shop.services, seller.id)
    assert [n["kind"] for n in got] == ["seller.stock_low"] * 2 and got[1]["data"]["available"] == 4
    assert await notes(shop.services, buyer.id) == []


async def test_a_threshold_of_zero_tells_nothing(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, stock_low_threshold="0"))
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=8))["variants"][0]["id"]
    await adjust(shop, seller, vid, -7)
    await adjust(shop, seller, vid, -1)
    assert await notes(shop.services, seller.id) == []
