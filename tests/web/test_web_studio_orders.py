"""The orders queue at a phone's 360 px, in a real Chromium: a paid order opened from its notification's path
(/studio/orders/<id>), tracking entered by hand with the API's per-field error on a number that does not fit its
carrier, then a good one: the order is shipped, and the "Shipped" filter lists it."""
from __future__ import annotations

from tests.rooms.harness import paid_sale
from tests.web.helpers import watch_errors
from tests.web.test_web_studio import no_sideways_scroll, signed_in_page


async def test_tracking_by_hand_with_field_errors(live, browser):
    base = live.base
    buyer_id, buyer_token = await live.user("web-buyer")
    buyer = await live.open_viewer(base, buyer_token, "web-buyer", buyer_id, "demo", {})
    order = await paid_sale(live, buyer_token, buyer)
    await buyer.wait_for("order:update", lambda d: d["order"]["status"] == "paid", 20)

    seller_id, token = await live.user("demo-seller", "seller")
    page = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(page, "status of 422")  # the refused number, shown on its field
    await page.goto(f"{base}studio/orders/{order['id']}")
    detail = page.locator("#order")
    await detail.get_by_role("heading", name=f"Order #{order['number']}").wait_for()
    await detail.get_by_label("Carrier").select_option("ups")
    number = detail.get_by_label("Tracking number")
    await number.fill("12345")
    await detail.get_by_role("button", name="Save tracking").click()
    field_error = detail.locator("#track-number-error")
    await field_error.wait_for()
    assert await field_error.inner_text(), "the API's message on the field"
    assert await number.get_attribute("aria-invalid") == "true"
    assert await detail.locator("#order-status").inner_text() == "Paid: to ship"
    await no_sideways_scroll(page)

    await number.fill("1Z 999 AA1 0123456784")
    await detail.get_by_role("button", name="Save tracking").click()
    await detail.locator("#order-status").get_by_text("Shipped").wait_for(timeout=10000)
    await detail.get_by_text("1Z999AA10123456784").wait_for()
    assert await detail.get_by_role("button", name="Buy label").count() == 0

    await page.get_by_label("Show").select_option("shipped")
    await page.locator("#orders li", has_text=f"#{order['number']}").wait_for()
    assert await page.locator("#orders li").count() == 1
    await no_sideways_scroll(page)
    assert errors == [], errors
