"""Catalog: categories, sellers' CRUD on their own products only, public search with filters and cursor
pages, stock adjustments with the ledger, wishlists. Real PostgreSQL, real HTTP."""
from __future__ import annotations

import uuid


async def test_seller_creates_product_with_variants_and_ledger(shop):
    seller = await shop.seller()
    p = await shop.product(seller, title="Red Scarf", description="Soft wool", variants=[
        {"sku": "SCARF-R-S", "color": "red", "size": "S", "price_minor": 2500, "currency": "USD", "stock": 4},
        {"sku": "SCARF-R-L", "color": "red", "size": "L", "price_minor": 2700, "currency": "USD"}])
    assert p["title"] == "Red Scarf" and p["status"] == "active" and p["seller"]["name"] == seller.name
    by_sku = {v["sku"]: v for v in p["variants"]}
    assert by_sku["SCARF-R-S"]["available"] == 4 and by_sku["SCARF-R-S"]["stock"] == {
        "on_hand": 4, "reserved": 0, "sold": 0}
    assert by_sku["SCARF-R-L"]["available"] == 0
    await shop.assert_ledger(by_sku["SCARF-R-S"]["id"])
    ledger = await shop.call("GET", f"/variants/{by_sku['SCARF-R-S']['id']}/inventory", seller)
    assert [(e["kind"], e["quantity"], e["actor_id"]) for e in ledger["items"]] == [("adjustment", 4, seller.id)]
    # the public view has availability but not the seller's counters
    public = await shop.call("GET", f"/products/{p['id']}")
    assert "stock" not in public["variants"][0] and public["variants"][0]["available"] in (0, 4)


async def test_seller_changes_only_own_products(shop):
    alice, bob, buyer = await shop.seller(), await shop.seller(), await shop.user()
    p = await shop.product(alice, title="Alice lamp")
    draft = await shop.product(alice, title="Alice draft", status="draft")
    vid = p["variants"][0]["id"]
    # another seller: visible active product -> 403, invisible draft -> 404; nothing changes
    assert (await shop.call("PATCH", f"/products/{p['id']}", bob, json={"title": "mine"}, expect=403))
    await shop.call("PATCH", f"/products/{draft['id']}", bob, json={"title": "mine"}, expect=404)
    await shop.call("PATCH", f"/variants/{vid}", bob, json={"price_minor": 1}, expect=403)
    await shop.call("POST", f"/variants/{vid}/stock", bob, json={"delta": 100, "reason": "steal"}, expect=403)
    await shop.call("POST", f"/products/{p['id']}/variants", bob,
                    json={"sku": "BOB-1", "price_minor": 1, "currency": "USD"}, expect=403)
    await shop.call("DELETE", f"/products/{p['id']}", bob, expect=403)
    await shop.call("GET", f"/variants/{vid}/inventory", bob, expect=403)
    # customers cannot sell at all
    await shop.call("POST", "/products", buyer, json={"title": "x"}, expect=403)
    await shop.call("PATCH", f"/products/{p['id']}", buyer, json={"title": "x"}, expect=403)
    assert (await shop.call("GET", f"/products/{p['id']}"))["title"] == "Alice lamp"
    assert (await shop.counters(vid))["on_hand"] == 10
    # the owner can
    changed = await shop.call("PATCH", f"/products/{p['id']}", alice, json={"title": "Brass lamp"})
    assert changed["title"] == "Brass lamp"
    changed = await shop.call("PATCH", f"/variants/{vid}", alice, json={"price_minor": 4200, "color": "brass"})
    assert changed["variants"][0]["price_minor"] == 4200 and changed["variants"][0]["color"] == "brass"
    added = await shop.call("POST", f"/products/{p['id']}/variants", alice,
                            json={"sku": f"LAMP-{uuid.uuid4().hex[:6]}", "price_minor": 5000, "currency": "USD",
                                  "stock": 2}, expect=201)
    assert len(added["variants"]) == 2
    # archiving hides it from the public and keeps it for the owner
    assert (await shop.call("DELETE", f"/products/{p['id']}", alice))["status"] == "archived"
    await shop.call("GET", f"/products/{p['id']}", expect=404)
    assert (await shop.call("GET", f"/products/{p['id']}", alice))["status"] == "archived"
    mine = await shop.call("GET", "/me/products", alice)
    assert {x["title"] for x in mine["items"]} == {"Brass lamp", "Alice draft"}
    assert (await shop.call("GET", "/me/products?status=draft", alice))["items"][0]["id"] == draft["id"]
    assert (await shop.call("GET", "/me/products", bob))["items"] == []


async def test_bad_input_is_refused_clearly(shop):
    seller = await shop.seller()
    p = await shop.product(seller, variants=[{"sku": "DUP-1", "price_minor": 100, "currency": "USD"}])
    body = await shop.call("POST", "/products", seller, json={
        "title": "Twin", "variants": [{"sku": "DUP-1", "price_minor": 100, "currency": "USD"}]}, expect=409)
    assert body["error"]["code"] == "conflict" and "sku" in body["error"]["message"]
    assert (await shop.call("GET", "/me/products", seller))["items"][0]["id"] == p["id"]  # nothing half-made
    for bad in ({"title": ""}, {"title": "x", "status": "sold"}, {"title": "x", "image_urls": ["ftp://x"]},
                {"title": "x", "variants": [{"sku": "A", "price_minor": -1, "currency": "USD"}]},
                {"title": "x", "variants": [{"sku": "A", "price_minor": 1, "currency": "usd"}]},
                {"title": "x", "variants": [{"sku": "A", "price_minor": 1, "currency": "USD"},
                                            {"sku": "A", "price_minor": 2, "currency": "USD"}]},
                {"title": "x", "unknown": 1}):
        err = await shop.call("POST", "/products", seller, json=bad, expect=422)
        assert err["error"]["code"] == "validation_failed" and err["error"]["details"]
    await shop.call("GET", "/products/not-a-uuid", expect=404)
    await shop.call("GET", f"/products/{uuid.uuid4()}", expect=404)
    await shop.call("POST", "/products", seller, json={"title": "x", "category_id": str(uuid.uuid4())}, expect=404)


async def test_stock_adjustments_reason_idempotency_and_floor(shop):
    seller, buyer = await shop.seller(), await shop.user()
    p = await shop.product(seller, variants=[{"sku": "ADJ-1", "price_minor": 1000, "currency": "USD", "stock": 5,
                                              "max_per_buyer": 10}])
    vid = p["variants"][0]["id"]
    r = await shop.call("POST", f"/variants/{vid}/stock", seller,
                        json={"delta": 3, "reason": "restock from supplier", "idempotency_key": "po-17"})
    assert r["available"] == 8 and r["duplicate"] is False
    again = await shop.call("POST", f"/variants/{vid}/stock", seller,
                            json={"delta": 3, "reason": "restock from supplier", "idempotency_key": "po-17"})
    assert again["duplicate"] is True and again["available"] == 8
    # 6 units in a buyer's cart: on hand may not drop below them
    await shop.call("POST", "/me/cart/items", buyer, json={"variant_id": vid, "qty": 6})
    err = await shop.call("POST", f"/variants/{vid}/stock", seller, json={"delta": -3, "reason": "damaged"},
                          expect=409)
    assert err["error"]["code"] == "conflict"
    ok = await shop.call("POST", f"/variants/{vid}/stock", seller, json={"delta": -2, "reason": "damaged"})
    assert ok["stock"] == {"on_hand": 6, "reserved": 6, "sold": 0} and ok["available"] == 0
    await shop.call("POST", f"/variants/{vid}/stock", seller, json={"delta": 0, "reason": "nothing"}, expect=422)
    await shop.call("POST", f"/variants/{vid}/stock", seller, json={"delta": 1}, expect=422)  # reason required
    ledger = await shop.call("GET", f"/variants/{vid}/inventory", seller)
    assert [(e["kind"], e["quantity"], e["reason"]) for e in reversed(ledger["items"])] == [
        ("adjustment", 5, "initial stock"), ("adjustment", 3, "restock from supplier"),
        ("reservation", 6, "cart"), ("adjustment", -2, "damaged")]
    assert ledger["totals"] == {"on_hand": 6, "reserved": 6, "sold": 0}
    await shop.assert_ledger(vid)


async def test_categories_tree_admin_only(shop):
    admin, seller = await shop.user(role="admin"), await shop.seller()
    root = await shop.call("POST", "/categories", admin, json={"name": "Fashion", "slug": "fashion"}, expect=201)
    child = await shop.call("POST", "/categories", admin,
                            json={"name": "Shoes", "slug": "shoes", "parent_id": root["id"]}, expect=201)
    await shop.call("POST", "/categories", seller, json={"name": "X", "slug": "x"}, expect=403)
    assert (await shop.call("POST", "/categories", admin, json={"name": "F", "slug": "fashion"},
                            expect=409))["error"]["code"] == "conflict"
    await shop.call("POST", "/categories", admin, json={"name": "F", "slug": "f2", "parent_id": str(uuid.uuid4())},
                    expect=404)
    tree = (await shop.call("GET", "/categories"))["items"]
    fashion = next(c for c in tree if c["slug"] == "fashion")
    assert [c["id"] for c in fashion["children"]] == [child["id"]]


async def test_search_filters_and_cursor_pages(shop):
    admin = await shop.user(role="admin")
    fashion = await shop.call("POST", "/categories", admin, json={"name": "Fashion", "slug": "fashion"}, expect=201)
    shoes = await shop.call("POST", "/categories", admin,
                            json={"name": "Shoes", "slug": "shoes", "parent_id": fashion["id"]}, expect=201)
    kitchen = await shop.call("POST", "/categories", admin, json={"name": "Kitchen", "slug": "kitchen"}, expect=201)
    alice, bob = await shop.seller(), await shop.seller()
    made = []
    for i in range(7):
        made.append(await shop.product(alice, title=f"Trail sneaker {i}", description="running shoe",
                                       price=1000 + 100 * i, category_id=shoes["id"]))
    made.append(await shop.product(bob, title="Leather boot", description="a shoe for winter", price=9000,
                                   category_id=fashion["id"]))
    made.append(await shop.product(bob, title="Copper kettle", description="boils water", price=3000,
                                   category_id=kitchen["id"]))
    made.append(await shop.product(bob, title="Naira kettle", price=500000, currency="NGN", category_id=kitchen["id"]))
    await shop.product(alice, title="Secret sneaker draft", status="draft", category_id=shoes["id"])

    async def all_pages(query: str, limit: int = 3) -> list[str]:
        seen, cursor = [], None
        for _ in range(20):
            page = await shop.call("GET", f"/products?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else ""))
            assert len(page["items"]) <= limit
            seen += [p["title"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen
        raise AssertionError("pagination does not end")

    newest = await all_pages("")
    assert newest == [p["title"] for p in reversed(made)]  # every active product once, newest first, no draft
    sneakers = await all_pages("&q=sneaker")
    assert sorted(sneakers) == sorted(f"Trail sneaker {i}" for i in range(7))
    assert set(await all_pages("&q=shoe", limit=2)) == {f"Trail sneaker {i}" for i in range(7)} | {"Leather boot"}
    assert await all_pages("&q=shoe&sort=price_asc", limit=2) == [f"Trail sneaker {i}" for i in range(7)] + [
        "Leather boot"]
    assert await all_pages("&sort=price_desc&currency=USD", limit=4) == (
        ["Leather boot", "Copper kettle"] + [f"Trail sneaker {i}" for i in reversed(range(7))])
    # category filter includes subcategories
    assert set(await all_pages(f"&category_id={fashion['id']}")) == set(sneakers) | {"Leather boot"}
    assert set(await all_pages(f"&category_id={kitchen['id']}&currency=NGN")) == {"Naira kettle"}
    assert set(await all_pages(f"&seller_id={made[-1]['seller']['id']}")) == {
        "Leather boot", "Copper kettle", "Naira kettle"}
    assert set(await all_pages("&min_price=1200&max_price=1400&currency=USD")) == {
        "Trail sneaker 2", "Trail sneaker 3", "Trail sneaker 4"}
    assert await all_pages("&q=nothingmatchesthis") == []
    # bad input
    for q in ("sort=relevance", "min_price=5&max_price=1", "cursor=garbage", "limit=0", "sort=cheapest",
              "category_id=nope"):
        status, body, _ = await shop.call("GET", f"/products?{q}", expect=None)
        assert status in (400, 422) and body["error"]["code"] in ("invalid", "validation_failed"), q
    page = await shop.call("GET", "/products?limit=1&sort=newest")
    status, body, _ = await shop.call("GET", f"/products?limit=1&sort=price_asc&cursor={page['next_cursor']}",
                                      expect=None)
    assert status == 400 and "sort" in body["error"]["message"]


async def test_wishlist(shop):
    seller, buyer, other = await shop.seller(), await shop.user(), await shop.user()
    p1 = await shop.product(seller, title="Wish one")
    p2 = await shop.product(seller, title="Wish two")
    draft = await shop.product(seller, title="Not yet", status="draft")
    await shop.call("PUT", f"/me/wishlist/{p1['id']}", buyer, expect=204)
    await shop.call("PUT", f"/me/wishlist/{p2['id']}", buyer, expect=204)
    await shop.call("PUT", f"/me/wishlist/{p2['id']}", buyer, expect=204)  # twice: still once
    await shop.call("PUT", f"/me/wishlist/{draft['id']}", buyer, expect=404)
    items = (await shop.call("GET", "/me/wishlist", buyer))["items"]
    assert [i["title"] for i in items] == ["Wish two", "Wish one"]
    assert (await shop.call("GET", "/me/wishlist", other))["items"] == []
    await shop.call("DELETE", f"/me/wishlist/{p1['id']}", buyer, expect=204)
    await shop.call("DELETE", f"/me/wishlist/{p1['id']}", buyer, expect=404)
    assert [i["title"] for i in (await shop.call("GET", "/me/wishlist", buyer))["items"]] == ["Wish two"]
    await shop.call("GET", "/me/wishlist", expect=401)


async def test_an_admin_creating_a_product_for_an_unknown_seller_gets_404(shop):
    admin = await shop.user(role="admin")
    body = await shop.call("POST", "/products", admin, json={"title": "x", "seller_id": str(uuid.uuid4())},
                           expect=404)
    assert body["error"]["code"] == "not_found" and "seller" in body["error"]["message"]
    assert (await shop.call("GET", "/products"))["items"] == []
