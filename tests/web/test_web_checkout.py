"""Issue 16's buying acceptance in a real browser, the buyer's side: a viewer with the demo stream's spotlighted
product in the cart opens the cart drawer (a refused quantity shown on the line, focus back where it was), checks
out (an address with a per-field error from the API first, then a valid one; a shipping rate; a refused coupon),
pays on the sandbox provider's page and lands on the order's page, which says it is paid; then the seller buys the
label (REST) and the sandbox carrier's scans move the order to shipped on that page without a reload."""
from __future__ import annotations

from tests.auth.helpers import owner_fetchval
from tests.helpers import until
from tests.web.helpers import SHIPPED, sign_in, text_in, watch_errors


async def test_buy_the_spotlighted_product_and_follow_the_order(shop, dsn, browser):
    await _buy(shop, dsn, browser)


async def _buy(live, dsn, browser):
    base = live.base
    state = await live.demo_state()
    variant = state.spotlight["variants"][0]
    title = state.spotlight["title"]

    ctx = await browser.new_context(viewport={"width": 360, "height": 740})
    page = await ctx.new_page()
    errors = watch_errors(page, "status of 422", "status of 409")  # the refusals below are on purpose
    favicon: list[str] = []  # the sandbox provider's page names no icon: Chromium asks for /favicon.ico (404)
    page.on("console", lambda m: favicon.append(f"console: {m.text}")
            if m.type == "error" and m.location.get("url", "").endswith("/favicon.ico") else None)
    await sign_in(page, base, dsn, "buyer@example.com", next_path="/")
    token = await page.evaluate("JSON.parse(localStorage.getItem('live.session')).token")
    status, body = await live.api("POST", "/me/cart/items", token, json={"variant_id": variant["id"], "qty": 1})
    assert status == 200, body

    # the cart drawer, opened from the checkout page: the line, its hold counting down, a refused quantity
    await page.goto(f"{base}checkout")
    edit = page.get_by_role("button", name="Edit cart (1)")
    await edit.click()
    drawer = page.get_by_role("dialog", name="Your cart")
    await drawer.wait_for()
    line = drawer.get_by_role("listitem").filter(has_text=title)
    await line.get_by_text("Held for you for").wait_for()
    assert await line.get_by_role("img").count() == 0  # decorative: alt=""
    picture = line.locator("img")  # the demo's own picture, served by the server (no internet needed)
    assert (await picture.get_attribute("src")).startswith("/static/demo/")
    await until(lambda: picture.evaluate("i => i.complete && i.naturalWidth > 0"), 10, what="the line's picture")
    assert await drawer.get_by_label(f"Quantity of {title}").inner_text() == "1"
    await owner_fetchval(dsn, "UPDATE product_variants SET on_hand = reserved + sold WHERE id = $1::uuid RETURNING 1",
                         variant["id"])  # nothing left beyond the buyer's unit
    await drawer.get_by_role("button", name=f"One more {title}").click()
    await line.get_by_role("alert").filter(has_text="Not enough stock for 2").wait_for()
    assert await drawer.get_by_label(f"Quantity of {title}").inner_text() == "1"
    subtotal = await drawer.locator("#cart-subtotal").inner_text()
    assert subtotal and await drawer.get_by_role("link", name="Checkout").get_attribute("href") == "/checkout"
    await page.keyboard.press("Escape")
    await drawer.wait_for(state="hidden")
    assert await edit.evaluate("b => b === document.activeElement")  # focus back on what opened it

    # the address: the API's per-field error beside its field, then a valid address and the rates
    await page.get_by_label("Full name").fill("Bo Buyer")
    await page.get_by_label("Address line 1").fill("5 Broadway")
    await page.get_by_label("City").fill("New York")
    await page.get_by_label("State or region").fill("NY")
    await page.get_by_label("Postal code").fill("ABC")
    await page.get_by_label("Country code").fill("US")
    await page.get_by_role("button", name="Show shipping options").click()
    postal = page.get_by_label("Postal code")
    await until(lambda: postal.get_attribute("aria-invalid"), 10, what="the postal code marked invalid")
    assert await page.locator("#addr-postal_code-error").inner_text()
    assert await postal.evaluate("i => i === document.activeElement")
    assert await page.locator("#rates-step").is_hidden()
    await postal.fill("10001")
    await page.get_by_label("Save this address for next time").check()
    await page.get_by_role("button", name="Show shipping options").click()
    rates = page.get_by_role("group", name=f"Shipping for {title}")
    await rates.wait_for()
    saved = page.get_by_role("group", name="Ship to").get_by_role("radio", name="Bo Buyer, 5 Broadway, New York")
    assert await saved.is_checked() and await page.get_by_label("Full name").is_hidden()  # saved, then used by id
    radios = rates.get_by_role("radio")
    assert await radios.count() >= 2 and await radios.first.is_checked()
    await radios.nth(1).check()  # not the cheapest
    chosen = (await radios.nth(1).evaluate("r => r.parentElement.textContent")).split(" · ")[0]

    # a coupon that does not exist: refused with the API's message, beside the field; then none
    await page.get_by_label("Coupon code (optional)").fill("NOPE10")
    await page.get_by_role("button", name="Place order").click()
    await until(lambda: page.locator("#coupon-error").inner_text(), 10, what="the coupon refused")
    await page.get_by_label("Coupon code (optional)").fill("")
    await page.get_by_role("button", name="Place order").click()
    pay = page.get_by_role("link", name="Pay ")
    await pay.wait_for()
    assert chosen in await page.locator("#review-orders").inner_text()
    order_id = await owner_fetchval(dsn, "SELECT id::text FROM orders ORDER BY created_at DESC LIMIT 1")
    assert await owner_fetchval(dsn, "SELECT count(*) FROM orders") == 1  # one order, whatever was clicked

    # the sandbox provider's page, then back to the order's page: paid
    await pay.click()
    await page.get_by_role("button", name="Pay").click()
    await page.wait_for_url(f"{base}orders/{order_id}?payment=succeeded")
    await page.get_by_text("Your payment is received").wait_for()
    status_badge = page.locator("#order-status")
    await until(lambda: _text_is(status_badge, "Paid"), 10, what="the order shown paid")
    await page.get_by_text("Live: this page updates by itself.").wait_for()
    await page.evaluate("window.__sameDocument = true")

    # the seller buys the label; the sandbox carrier's scans move the order on this page, no reload
    _, seller_token = await live.user("demo-seller", "seller")
    status, body = await live.api("POST", f"/seller/orders/{order_id}/label", seller_token, json={})
    assert status == 202, body
    await until(lambda: text_in(status_badge, SHIPPED, strip=False), 30, what="the order shown shipped")
    assert "Shipped" in await page.locator("#order-timeline").inner_text()
    assert await page.get_by_text("tracking:").inner_text()
    assert await page.evaluate("window.__sameDocument") is True
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    errors = [e for e in errors if e not in favicon]
    assert errors == [], errors


async def _text_is(locator, text: str) -> bool:
    return await locator.inner_text() == text
