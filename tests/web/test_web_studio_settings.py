"""The studio's stream settings at a phone's 360 px, in a real Chromium: an empty title is refused with the API's
error on the field; a new title, slow mode and a blocked word are saved (PATCH): the heading changes, a viewer's
socket hears chat:slowmode, and a message with the blocked word is refused."""
from __future__ import annotations

from tests.helpers import until
from tests.web.helpers import watch_errors
from tests.web.test_web_studio import no_sideways_scroll, signed_in_page


async def test_stream_settings(live, browser):
    base = live.base
    seller_id, token = await live.user("demo-seller", "seller")
    page = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(page, "status of 422")  # the empty title, shown on its field
    await page.goto(f"{base}studio/live/demo")
    form = page.locator("#settings")
    title = form.get_by_label("Title")
    await until(title.input_value, 10, what="the title filled in")
    state = await live.demo_state()
    assert await title.input_value() == state.title

    await title.fill("")
    await form.get_by_role("button", name="Save settings").click()
    await title.and_(page.locator("[aria-invalid=true]")).wait_for()
    assert await form.locator("#set-title-error").inner_text()
    assert await title.get_attribute("aria-invalid") == "true"
    assert (await live.api("GET", "/livestreams/demo"))[1]["title"] == state.title
    await no_sideways_scroll(page)

    viewer = await live.viewer("web-chatter")
    await title.fill("Friday drop")
    await form.get_by_label("Slow mode").select_option("30")
    await form.get_by_label("Blocked words").fill("spoiler, leak")
    await form.get_by_role("button", name="Save settings").click()
    await form.get_by_role("status").get_by_text("Saved.").wait_for()
    assert await title.get_attribute("aria-invalid") is None
    await page.locator("#stream-title").get_by_text("Go live: Friday drop").wait_for()
    slow = await viewer.wait_for("chat:slowmode")
    assert slow["seconds"] == 30
    stream = (await live.api("GET", "/livestreams/demo"))[1]
    assert stream["title"] == "Friday drop" and stream["slow_mode_seconds"] == 30
    ack = await viewer.say("a big SPOILER here")
    assert ack["error"]["code"] == "invalid", ack
    await no_sideways_scroll(page)
    assert errors == [], errors
