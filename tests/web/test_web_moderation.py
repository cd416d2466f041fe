"""What a ban and the stream's end look like on the pages, in a real Chromium: a banned viewer's page stops the
video and says so (the server closes their WHEP session), another viewer plays on; when the seller ends the stream
every page says so, the studio stops publishing and cannot go live again."""
from __future__ import annotations

from tests.helpers import until
from tests.web.helpers import frames_advance, page_as, watch_errors


async def test_a_ban_and_the_end_of_the_stream_on_the_pages(live, browser):
    base = live.base
    state = await live.demo_state()
    seller_id, seller_token = await live.user("demo-seller", "seller")
    studio = await page_as(browser, base, seller_id, "demo-seller", seller_token)
    studio_errors = watch_errors(studio)
    await studio.goto(f"{base}studio/live/demo")
    await studio.get_by_role("button", name="Go live").click()
    await studio.get_by_text("Live: your video is on air").wait_for(timeout=15000)

    buyer_id, buyer_token = await live.user("web-rowdy")
    rowdy = await page_as(browser, base, buyer_id, "web-rowdy", buyer_token)
    rowdy_errors = watch_errors(rowdy)
    await rowdy.goto(f"{base}live/demo")
    other = await (await browser.new_context()).new_page()
    other_errors = watch_errors(other)
    await other.goto(f"{base}live/demo")
    for page in (rowdy, other):
        await frames_advance(page, page.url)

    seller = await live.seller()  # a moderator's socket (the studio's moderation panel is issue 16)
    assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": buyer_id}))["ok"]
    await rowdy.get_by_text("You cannot watch this stream.").wait_for(timeout=10000)
    assert await rowdy.evaluate("document.getElementById('video').srcObject") is None
    await frames_advance(other, "the other viewer")  # unaffected

    status, _ = await live.api("POST", "/livestreams/demo/end", seller_token)
    assert status == 200
    await other.get_by_text("This stream has ended.").wait_for(timeout=10000)
    await studio.get_by_text("This stream has ended: create a new one").wait_for(timeout=10000)
    assert await studio.get_by_role("button", name="Go live").is_disabled()
    assert await studio.locator("#stream-status").inner_text() == "ended"
    await until(lambda: not live.services.embedded.sessions, 10, what="every media session of the stream ended")
    assert not live.services.embedded.publishing(state.id)
    assert studio_errors == [] and other_errors == [] and rowdy_errors == [], (studio_errors, other_errors,
                                                                               rowdy_errors)
