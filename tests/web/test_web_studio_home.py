"""The studio's home (/studio) at a phone's 360 px, in a real Chromium: the header's Studio link leads there; the
demo seller sees the live demo show linking its go-live page; a new show with a taken address gets the API's
refusal on that field, then with a free one lands on its go-live page, scheduled; a buyer is told the studio is for
sellers."""
from __future__ import annotations

from tests.web.helpers import watch_errors
from tests.web.test_web_studio import no_sideways_scroll, signed_in_page


async def test_studio_home_lists_and_creates_shows(live, browser):
    base = live.base
    seller_id, token = await live.user("demo-seller", "seller")
    page = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(page, "status of 409")  # the taken address, shown on its field
    await page.goto(f"{base}signin")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Studio").click()
    await page.wait_for_url(f"{base}studio")
    state = await live.demo_state()
    live_now = page.locator(".shows-live")
    await live_now.get_by_role("link", name=state.title).wait_for()
    assert await live_now.get_by_role("link", name=state.title).get_attribute("href") == "/studio/live/demo"
    await no_sideways_scroll(page)

    form = page.locator("#new-show")
    await form.get_by_label("Title").fill("Sunday Market")
    slug = form.get_by_label("Address")
    assert await slug.input_value() == "sunday-market"  # made from the title
    await slug.fill("demo")  # taken
    await form.get_by_label("Starts at").fill("2030-05-05T18:30")
    await form.get_by_role("button", name="Create the show").click()
    await page.locator("#new-slug-error").get_by_text("slug", exact=False).wait_for()
    assert await slug.get_attribute("aria-invalid") == "true"
    await slug.fill("sunday-market")
    await form.get_by_role("button", name="Create the show").click()
    await page.wait_for_url(f"{base}studio/live/sunday-market")
    await page.locator("#stream-status").get_by_text("scheduled").wait_for()
    created = (await live.api("GET", "/livestreams/sunday-market"))[1]
    assert created["title"] == "Sunday Market" and created["scheduled_at"].startswith("2030-05-05")

    await page.goto(f"{base}studio")
    await page.locator(".shows-scheduled").get_by_role("link", name="Sunday Market").wait_for()
    assert errors == [], errors

    buyer_id, buyer_token = await live.user("web-buyer")
    buyer = await signed_in_page(browser, base, buyer_token, {"id": buyer_id, "name": "web-buyer"})
    await buyer.goto(f"{base}studio")
    await buyer.get_by_role("alert").get_by_text("The studio is for sellers").wait_for()
    await no_sideways_scroll(buyer)
