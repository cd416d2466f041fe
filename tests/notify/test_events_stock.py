"""seller.stock_low: told by the database in the statement that lowers a variant's available stock (a seller's
adjustment, a buyer's cart reservation), once per crossing from above STOCK_LOW_THRESHOLD to at most it; never for
a change that stays low or goes up; at most once per variant per hour (a cart churning around the threshold); never
with the threshold at 0."""
from __future__ import annotations

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop, make_client
from tests.helpers import owner_connection, until
from tests.notify.notes import all_delivered, notes


async def adjust(shop, seller, vid: str, delta: int) -> None:
    await shop.call("POST", f"/variants/{vid}/stock", seller, json={"delta": delta, "reason": "count"})


async def test_low_stock_is_told_once_per_crossing_and_hour_whatever_lowers_it(shop, dsn):
    seller = await shop.seller()
    product = await shop.product(seller, title="Lamp", stock=8,
                                 variants=[{"sku": "LAMP-RED", "price_minor": 900, "currency": "USD", "stock": 8,
                                            "color": "red"}])
    vid = product["variants"][0]["id"]
    start = await utc_hour(shop)
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
    # back up, then buyers' carts take it down again within the hour: a crossing again, but no second notice
    await adjust(shop, seller, vid, +6)  # 10
    buyer, other, third = await shop.user(), await shop.user(), await shop.user()
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 3})  # 7
    await shop.call("POST", "/me/cart/items", other, json={"variant_id": vid, "qty": 3})  # 4: crossed, same hour
    await all_delivered(shop.services)
    end = await utc_hour(shop)
    assert low["key"] in (f"seller.stock_low:{vid}:{start}", f"seller.stock_low:{vid}:{end}")
    if start == end:  # the UTC hour did not turn during the test (else the second crossing is a new hour's notice)
        assert len(await notes(shop.services, seller.id)) == 1
    # the first notice of an earlier hour: the next crossing is told
    async with owner_connection(dsn) as conn:
        async def no_job() -> bool:  # its notify.deliver job finished (it holds the dedupe key while picked)
            return await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE entrypoint = 'notify.deliver'") == 0
        await until(no_job, 15, what="the deliver job done")
        await conn.execute("UPDATE notifications SET key = $2 WHERE key = $1", low["key"],
                           f"seller.stock_low:{vid}:2000010100")
    await shop.call("DELETE", f"/me/cart/items/{vid}", other)  # 7: above again
    await shop.call("POST", "/me/cart/items", third, json={"variant_id": vid, "qty": 3})  # 4: crossed
    await all_delivered(shop.services)
    got = await notes(shop.services, seller.id)
    assert [n["kind"] for n in got] == ["seller.stock_low"] * 2 and got[-1]["data"]["available"] == 4
    assert got[-1]["key"].startswith(f"seller.stock_low:{vid}:") and got[-1]["key"] != got[0]["key"]
    assert await notes(shop.services, buyer.id) == []


async def utc_hour(shop) -> str:
    """The database's UTC hour as the stock_low trigger writes it in its key."""
    async with shop.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDDHH24')")

async def test_a_threshold_of_zero_tells_nothing(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, stock_low_threshold="0"))
    seller = await shop.seller()
    vid = (await shop.product(seller, stock=8))["variants"][0]["id"]
    await adjust(shop, seller, vid, -7)
    await adjust(shop, seller, vid, -1)
    assert await notes(shop.services, seller.id) == []
