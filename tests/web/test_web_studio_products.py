"""The studio's products (/studio/products) at a phone's 360 px, in a real Chromium: the demo seller's products
with their stock; five units added to a variant (the ledger and the page agree); a new product refused on its SKU
with the API's error on that field, then added on sale and listed; a product archived."""
from __future__ import annotations

from tests.web.helpers import watch_errors
from tests.web.test_web_studio import no_sideways_scroll, signed_in_page


async def test_products_stock_and_a_new_product(live, browser):
    base = live.base
    seller_id, token = await live.user("demo-seller", "seller")
    page = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(page, "status of 422")  # the refused SKU, shown on its field
    await page.goto(f"{base}studio/products")
    products = (await live.api("GET", "/me/products?limit=100", token))[1]["items"]
    first = products[0]
    variant = first["variants"][0]
    item = page.locator(f"li[data-variant='{variant['id']}']")
    await item.get_by_text(f"{variant['stock']['on_hand']} on hand").wait_for()
    await no_sideways_scroll(page)

    await item.get_by_label(f"Add or remove units of {variant['sku']}").fill("5")
    await item.get_by_role("button", name="Update stock").click()
    await item.get_by_text(f"{variant['stock']['on_hand'] + 5} on hand").wait_for()
    after = (await live.api("GET", "/me/products?limit=100", token))[1]["items"]
    v = next(x for p in after for x in p["variants"] if x["id"] == variant["id"])
    assert v["stock"]["on_hand"] == variant["stock"]["on_hand"] + 5

    form = page.locator("#new-product")
    await form.get_by_label("Title").fill("Silk Scarf")
    await form.get_by_label("SKU").fill("bad sku!")
    await form.get_by_label("Price").fill("24.50")
    await form.get_by_label("Units in stock").fill("7")
    await form.get_by_role("button", name="Add the product").click()
    sku = form.get_by_label("SKU")
    await sku.and_(page.locator("[aria-invalid=true]")).wait_for()
    assert await page.locator("#np-sku-error").inner_text()
    await sku.fill("SCARF-SILK-1")
    await form.get_by_role("button", name="Add the product").click()
    await form.get_by_role("status").get_by_text("Silk Scarf is added.").wait_for()
    scarf = page.locator("#product-list > li", has_text="Silk Scarf")
    await scarf.get_by_text("7 available").wait_for()
    await scarf.get_by_text("On sale").wait_for()
    created = next(p for p in (await live.api("GET", "/me/products?limit=100", token))[1]["items"]
                   if p["title"] == "Silk Scarf")
    assert created["status"] == "active" and created["variants"][0]["price_minor"] == 2450

    await scarf.get_by_role("button", name="Archive Silk Scarf").click()
    await scarf.get_by_text("Archived").wait_for()
    await no_sideways_scroll(page)
    assert errors == [], errors
