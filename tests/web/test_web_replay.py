"""The replay page in a real Chromium against the real server and database: the demo seller publishes ~4 s by
WHIP (a real aiortc peer), spotlights a product and a viewer chats during it, then the stream ends. The page plays
the recording (frames advance), lists the timeline (the product on screen from 0:00, then the spotlight at its
offset), a click on an entry seeks there and shows that product, which a signed-in buyer adds to the cart; the chat
message appears only once the playhead passes it. A stream with no recording and an unknown one say so."""
from __future__ import annotations

import asyncio
import re

from tests.helpers import until
from tests.media.test_recording import publish
from tests.rooms.harness import SELLER
from tests.web.a11y import assert_accessible
from tests.web.helpers import sign_in, watch_errors

CHAT = "hello from the recording"
VIDEO = "document.getElementById('video')"


async def record_demo(live) -> tuple[dict, dict]:
    """Publish ~4 s with a spotlight change at ~1 s and a chat message at ~2.5 s; end the stream: (before, other)."""
    _, token = await live.user(SELLER, "seller")
    seller = await live.seller()
    fan = await live.viewer("replay-fan")
    products = (await live.api("GET", "/livestreams/demo/products"))[1]["items"]
    before_id = (await live.api("GET", "/livestreams/demo"))[1]["spotlight_product_id"]
    before = next(p for p in products if p["id"] == before_id)
    other = next(p for p in products if p["id"] != before_id)
    pc, location = await publish(live, token)
    recorder = live.services.recorder
    try:
        await until(lambda: any(s.writer.started_wall for s in recorder.segments.values()), what="the first frame")
        await asyncio.sleep(1.0)
        assert (await seller.call("product:highlight", {"stream_id": "demo", "product_id": other["id"]}))["ok"]
        await asyncio.sleep(1.5)
        assert (await fan.say(CHAT))["ok"]
        await asyncio.sleep(1.5)
        assert (await live.client.delete(location, headers={"Authorization": f"Bearer {token}"})).status == 204
    finally:
        await pc.close()
    await until(lambda: not recorder.segments, what="the recording closed")
    assert (await live.api("POST", "/livestreams/demo/end", token))[0] == 200
    return before, other


async def test_replay_plays_with_its_timeline_product_and_chat(live, dsn, browser):
    before, other = await record_demo(live)
    body = (await live.api("GET", "/livestreams/demo/replay"))[1]
    (rec,) = body["recordings"]
    assert rec["status"] == "ready", rec
    spots = [t for t in body["timeline"] if t["recording_id"] == rec["id"] and t["product_id"] == other["id"]]
    assert spots, body["timeline"]
    spot = spots[0]

    context = await browser.new_context(locale="en-US", viewport={"width": 360, "height": 740})
    page = await context.new_page()
    await sign_in(page, live.base, dsn, "replay-buyer@example.com", next_path="/replay/demo")
    errors = watch_errors(page)
    await page.reload()
    timeline = page.get_by_role("region", name="Products shown")
    first = timeline.get_by_role("button", name=f"0:00 {before['title']}")
    jump = timeline.get_by_role("button", name=f"{spot['offset_ms'] // 1000 // 60}:"
                                f"{spot['offset_ms'] // 1000 % 60:02d} {other['title']}")
    await first.wait_for()
    await jump.wait_for()
    card = page.get_by_role("region", name="On screen")
    await card.get_by_text(before["title"]).wait_for()  # the product on screen at 0:00
    chat = page.get_by_role("region", name="Chat")
    await until(lambda: _chat_loaded(page), 10,
                what="the chat loaded")
    assert await chat.get_by_text(CHAT).count() == 0  # written ~2.5 s in: not yet at 0:00

    # it plays: frames advance, and the message appears once the playhead passes it
    await page.evaluate(f"{VIDEO}.muted = true")
    await page.evaluate(f"{VIDEO}.play()")
    frames = f"{VIDEO}.getVideoPlaybackQuality().totalVideoFrames"
    start = await page.evaluate(frames)
    await until(lambda: _more_than(page, frames, start + 10), 10, what="the replay's frames advancing")
    await chat.get_by_text(CHAT).wait_for(timeout=10000)
    assert "replay-fan" in await chat.locator("li", has_text=CHAT).inner_text()

    # a click on the timeline seeks there and shows that product
    await page.evaluate(f"{VIDEO}.pause()")
    await page.evaluate(f"window.seekedAt = []; {VIDEO}.addEventListener('seeked', "
                        f"() => window.seekedAt.push({VIDEO}.currentTime))")
    await jump.click()
    await until(lambda: _seeked_near(page, spot["offset_ms"] / 1000), 5, what="the seek to the spotlight")
    await card.get_by_text(other["title"]).wait_for()
    price = other["variants"][0]["price_minor"]
    assert await card.locator("#product-price").inner_text() == f"${price // 100:,}.{price % 100:02d}"  # USD, en-US
    assert await jump.locator("xpath=..").get_attribute("aria-current") == "true"
    await page.evaluate(f"{VIDEO}.pause()")

    # a signed-in buyer adds it to the cart through the REST cart
    await card.get_by_role("button", name="Add to cart").click()
    await card.get_by_text("Added to your cart.").wait_for()
    cart = await page.evaluate("""async () => {
        const s = JSON.parse(localStorage.getItem('live.session'));
        const r = await fetch('/api/v1/me/cart', {headers: {Authorization: 'Bearer ' + s.token}});
        return (await r.json()).cart;
    }""")
    assert [(line["product_id"], line["quantity"]) for line in cart["items"]] == [(other["id"], 1)], cart

    assert await page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll at 360 px
    await assert_accessible(page)
    assert errors == [], errors


async def test_replay_without_a_recording_and_an_unknown_stream(live, browser):
    _, token = await live.user(SELLER, "seller")
    assert (await live.api("POST", "/livestreams", token, {"title": "Quiet", "slug": "quiet"}))[0] == 201
    assert (await live.api("POST", "/livestreams/quiet/start", token))[0] == 200
    assert (await live.api("POST", "/livestreams/quiet/end", token))[0] == 200
    context = await browser.new_context()
    page = await context.new_page()
    errors = watch_errors(page)
    await page.goto(f"{live.base}replay/quiet")
    await page.get_by_role("status").get_by_text("This stream has no recording.").wait_for()
    assert await page.locator("#replay-title").inner_text() == "Quiet"
    assert not await page.locator("#video").is_visible()
    await assert_accessible(page)
    assert errors == [], errors
    await page.goto(f"{live.base}replay/no-such-stream")
    await page.get_by_role("alert").get_by_text("There is no such stream.").wait_for()


async def test_two_recordings_play_as_parts_in_order(live, browser):
    _, token = await live.user(SELLER, "seller")
    seller = await live.seller()
    products = (await live.api("GET", "/livestreams/demo/products"))[1]["items"]
    before_id = (await live.api("GET", "/livestreams/demo"))[1]["spotlight_product_id"]
    other = next(p for p in products if p["id"] != before_id)
    recorder = live.services.recorder
    for part in range(2):  # the seller publishes twice: two recordings
        pc, location = await publish(live, token)
        try:
            await until(lambda: any(s.writer.started_wall for s in recorder.segments.values()), what="a frame")
            await asyncio.sleep(1.0)
            if part == 1:
                assert (await seller.call("product:highlight", {"stream_id": "demo", "product_id": other["id"]}))["ok"]
            await asyncio.sleep(1.0)
            assert (await live.client.delete(location, headers={"Authorization": f"Bearer {token}"})).status == 204
        finally:
            await pc.close()
        await until(lambda: not recorder.segments, what="the recording closed")
    recordings = (await live.api("GET", "/livestreams/demo/replay"))[1]["recordings"]
    assert [r["status"] for r in recordings] == ["ready", "ready"], recordings
    first, second = sorted(recordings, key=lambda r: r["started_at"])

    context = await browser.new_context()
    page = await context.new_page()
    errors = watch_errors(page)
    await page.goto(f"{live.base}replay/demo")
    picker = page.get_by_label("Part")
    await picker.wait_for()
    assert await picker.locator("option").count() == 2 and await picker.input_value() == "0"
    assert await page.evaluate(f"{VIDEO}.currentSrc.endsWith({first['url']!r})")
    jump = page.get_by_role("button", name=re.compile(r"^part 2, 0:0\d " + re.escape(other["title"])))
    await jump.click()  # a spotlight of the second part: that part, at its offset
    await until(lambda: page.evaluate(f"{VIDEO}.currentSrc.endsWith({second['url']!r})"), 5, what="part 2 loaded")
    assert await picker.input_value() == "1"
    await page.get_by_role("region", name="On screen").get_by_text(other["title"]).wait_for()

    # the first part's end starts the second
    await picker.select_option("0")
    await until(lambda: page.evaluate(f"{VIDEO}.currentSrc.endsWith({first['url']!r}) && {VIDEO}.readyState >= 1"),
                5, what="part 1 loaded")
    await page.evaluate(f"{VIDEO}.muted = true; {VIDEO}.currentTime = {VIDEO}.duration - 0.3; {VIDEO}.play()")
    await until(lambda: _on_part(picker, "1"), 10, what="part 2 playing after part 1 ended")
    await until(lambda: page.evaluate(f"!{VIDEO}.paused && {VIDEO}.currentSrc.endsWith({second['url']!r})"), 5,
                what="part 2 playing")
    assert errors == [], errors


async def _on_part(picker, value: str) -> bool:
    return await picker.input_value() == value


async def _chat_loaded(page) -> bool:
    return await page.evaluate("document.getElementById('chat-state').textContent.indexOf('Loading') < 0")


async def _more_than(page, expr: str, n: int) -> bool:
    return await page.evaluate(expr) > n


async def _seeked_near(page, seconds: float) -> bool:
    """A seek of the video ended within 0.3 s of `seconds` (whatever it played since)."""
    return any(abs(t - seconds) < 0.3 for t in await page.evaluate("window.seekedAt"))
