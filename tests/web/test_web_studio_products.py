"""The studio's products (/studio/products) at a phone's 360 px, in a real Chromium: the demo seller's products
with their stock; five units added to a variant (the ledger and the page agree); a new product refused on its SKU
with the API's error on that field, then added on sale and listed; a product archived. Pictures uploaded (a wrong file
refused), reordered and removed, shown on the watch page's spotlight; a variant edited and one added, each after a
per-field error; the accessibility scan."""
from __future__ import annotations

import asyncio
import io

from PIL import Image

from tests.helpers import until
from tests.web.a11y import assert_accessible
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
    await form.get_by_label("Price").fill("a lot")  # not a price: said on its field before any request
    await form.get_by_role("button", name="Add the product").click()
    price = form.get_by_label("Price")
    await price.and_(page.locator("[aria-invalid=true]:focus")).wait_for()
    assert await page.locator("#np-price-error").inner_text() == "Enter the price, e.g. 19.99."
    await form.get_by_label("Price").fill("24.50")
    await form.get_by_label("Units in stock").fill("7")
    await form.get_by_role("button", name="Add the product").click()
    sku = form.get_by_label("SKU")
    await sku.and_(page.locator("[aria-invalid=true]:focus")).wait_for()
    assert await page.locator("#np-sku-error").inner_text()
    assert await price.get_attribute("aria-invalid") is None and not await page.locator("#np-price-error").inner_text()
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


def jpeg(colour: str = "crimson") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG")
    return out.getvalue()


async def loaded(img) -> None:
    await img.scroll_into_view_if_needed()  # the studio's pictures load lazily
    await until(lambda: img.evaluate("i => i.complete && i.naturalWidth > 0"), 10, what="a picture loaded")


async def test_pictures_and_variants(live, browser):
    """A seller uploads a JPEG to the spotlighted sneaker after a text file called photo.jpg is refused with the API's
    reason, makes it the first picture (a guest's watch page shows it on the spotlight card); while a second upload
    runs the box's buttons wait, and the demo's own picture removed meanwhile (another tab) stays removed when it
    lands; removes it; edits a variant after a price the API refuses on its field; adds a variant after a refused
    SKU."""
    base, title = live.base, "Aurora Running Sneaker"
    seller_id, token = await live.user("demo-seller", "seller")

    async def product() -> dict:
        items = (await live.api("GET", "/me/products?limit=100", token))[1]["items"]
        return next(p for p in items if p["title"] == title)

    page = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(page, "status of 422", "status of 409")  # the refusals below are on purpose
    await page.goto(f"{base}studio/products")
    card = page.locator("#product-list > li", has_text=title)
    pics = card.get_by_role("list", name=f"Pictures of {title}")
    demo_picture = pics.get_by_role("img", name=f"Picture 1 of {title}")
    assert await demo_picture.get_attribute("src") == "/static/demo/sneaker.svg"
    await loaded(demo_picture)
    add = card.get_by_label(f"Add a picture to {title}")
    await add.set_input_files({"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"not a picture\n" * 50})
    await card.get_by_role("alert").filter(
        has_text="photo.jpg: this file is not a JPEG, PNG or WebP image").wait_for()
    assert (await product())["image_urls"] == ["/static/demo/sneaker.svg"]

    await add.set_input_files({"name": "shot.jpg", "mimeType": "image/jpeg", "buffer": jpeg()})
    await page.locator("#list-note", has_text=f"shot.jpg is added to {title}.").wait_for()
    urls = (await product())["image_urls"]
    assert len(urls) == 2 and urls[1].startswith("/uploads/") and urls[1].endswith(".jpg")
    uploaded = pics.get_by_role("img", name=f"Picture 2 of {title}")
    assert await uploaded.get_attribute("src") == urls[1]
    await loaded(uploaded)
    await pics.get_by_role("button", name=f"Make picture 2 of {title} the first").click()
    await page.locator("#list-note", has_text="is now the first").wait_for()
    assert (await product())["image_urls"] == [urls[1], urls[0]]

    guest = await (await browser.new_context(viewport={"width": 360, "height": 740})).new_page()
    await guest.goto(f"{base}live/demo")
    spot = guest.get_by_role("img", name=title)
    await spot.wait_for()
    assert await spot.get_attribute("src") == urls[1]
    await loaded(spot)
    await guest.context.close()

    # an upload held: the box's buttons wait; a picture removed elsewhere meanwhile is not put back by its save
    held, release = asyncio.Event(), asyncio.Event()

    async def hold(route):
        held.set()
        await release.wait()
        await route.continue_()
    await page.route("**/api/v1/seller/uploads", hold)
    await add.set_input_files({"name": "late.jpg", "mimeType": "image/jpeg", "buffer": jpeg("teal")})
    await asyncio.wait_for(held.wait(), 10)
    for name in (f"Remove picture 1 of {title}", f"Remove picture 2 of {title}",
                 f"Make picture 2 of {title} the first"):
        assert await pics.get_by_role("button", name=name).is_disabled(), name
    assert await add.is_disabled()
    status, _ = await live.api("PATCH", f"/products/{(await product())['id']}", token, {"image_urls": [urls[1]]})
    assert status == 200
    release.set()
    await page.locator("#list-note", has_text=f"late.jpg is added to {title}.").wait_for()
    await page.unroute("**/api/v1/seller/uploads", hold)
    late = (await product())["image_urls"]
    assert len(late) == 2 and late[0] == urls[1] and late[1] not in urls, late

    await pics.get_by_role("button", name=f"Remove picture 2 of {title}").click()
    await page.locator("#list-note", has_text="is removed").wait_for()
    assert (await product())["image_urls"] == [urls[1]]
    await assert_accessible(page)

    # a variant edited: a price over the API's maximum is refused on its field, then saved
    variant = (await product())["variants"][0]
    await card.get_by_role("button", name=f"Edit variant {variant['sku']}").click()
    form = card.get_by_role("form", name=f"Variant {variant['sku']}")
    price = form.get_by_label("Price (USD)")
    assert await price.input_value() == "89.00"
    await price.fill("99999999999")
    await form.get_by_role("button", name="Save variant").click()
    await price.and_(page.locator("[aria-invalid=true]")).wait_for()
    assert await form.locator(f"#ev-{variant['id']}-price-error").inner_text()
    await price.fill("95")
    await form.get_by_label("Colour (optional)").fill("jet black")
    await assert_accessible(page)
    await form.get_by_role("button", name="Save variant").click()
    await page.locator("#list-note", has_text=f"Variant {variant['sku']} is saved.").wait_for()
    saved = next(v for v in (await product())["variants"] if v["id"] == variant["id"])
    assert (saved["price_minor"], saved["color"], saved["size"]) == (9500, "jet black", variant["size"])

    # a variant added: a bad SKU refused on its field, then added with its stock
    await card.get_by_text("Add a variant").click()
    new = card.get_by_role("form", name=f"New variant of {title}")
    await new.get_by_label("SKU").fill("bad sku!")
    await new.get_by_label("Size (optional)").fill("44")
    await new.get_by_label("Price (USD)").fill("89")
    await new.get_by_label("Units in stock").fill("3")
    await new.get_by_role("button", name="Add the variant").click()
    await new.get_by_label("SKU").and_(page.locator("[aria-invalid=true]")).wait_for()
    await new.get_by_label("SKU").fill("SNK-AUR-BLK-44")
    await new.get_by_role("button", name="Add the variant").click()
    await page.locator("#list-note", has_text=f"Variant SNK-AUR-BLK-44 is added to {title}.").wait_for()
    await card.get_by_text("3 available").wait_for()
    added = next(v for v in (await product())["variants"] if v["sku"] == "SNK-AUR-BLK-44")
    assert (added["size"], added["price_minor"], added["stock"]["on_hand"]) == ("44", 8900, 3)
    await no_sideways_scroll(page)
    assert errors == [], errors
