"""Issue 15's last acceptance line in a real browser: with Chromium's fake camera, the demo seller signs in, goes
live from the studio page (WHIP), two viewers in separate browser contexts see the video move (WHEP), the seller
stops and both viewers see "waiting"; the seller goes live again and the viewers' pages reconnect by themselves."""
from __future__ import annotations

from tests.helpers import until
from tests.web.helpers import frames_advance, sign_in, watch_errors


async def overlay(page) -> str:
    return await page.locator("#video-state").inner_text() if await page.locator("#video-state").is_visible() else ""


async def test_seller_goes_live_from_the_studio_and_viewers_watch(live, dsn, browser):
    base = live.base
    state = await live.demo_state()
    seller_ctx = await browser.new_context()
    studio = await seller_ctx.new_page()
    studio_errors = watch_errors(studio)
    await sign_in(studio, base, dsn, "demo-seller@example.com", next_path="/studio/live/demo")

    # a first viewer is there before the seller publishes: waiting
    viewers = []
    for _ in range(2):
        ctx = await browser.new_context()
        page = await ctx.new_page()
        viewers.append((page, watch_errors(page, "status of 409")))  # WHEP before anyone publishes: 409, shown
    first = viewers[0][0]
    await first.goto(f"{base}live/demo")
    await first.get_by_text("Waiting for the seller to go live").wait_for()
    assert await first.locator("#stream-title").inner_text() == state.title

    # the studio: status, the OBS settings to copy, then Go live
    await studio.get_by_text("Not publishing").wait_for()
    assert await studio.locator("#stream-status").inner_text() == "live"
    assert await studio.get_by_label("Server (WHIP URL)").input_value() == f"{base}api/v1/livestreams/{state.id}/whip"
    token = await studio.get_by_label("Bearer token").input_value()
    assert token and await studio.get_by_label("Bearer token").get_attribute("type") == "password"
    await studio.get_by_role("button", name="Go live").click()
    await studio.get_by_text("Live: your video is on air").wait_for(timeout=15000)
    assert live.services.embedded.publishing(state.id)

    # the first viewer's page starts playing on media:status; the second comes after the start
    second = viewers[1][0]
    await second.goto(f"{base}live/demo")
    for i, (page, _) in enumerate(viewers):
        await frames_advance(page, f"viewer {i + 1}")
        assert await overlay(page) == ""
        assert await page.get_by_role("button", name="Unmute").is_visible()  # autoplay is muted
    await until(lambda: first.locator("#viewers").inner_text(), 5)
    await until(lambda: _count_at_least(first, 3), 10, what="the viewer count (seller + 2 viewers)")

    # unmuting is one click
    await second.get_by_role("button", name="Unmute").click()
    assert await second.evaluate("document.getElementById('video').muted") is False

    # the seller stops: both viewers are told, and the server holds no media session any more
    await studio.get_by_role("button", name="Stop").click()
    await studio.get_by_text("Not publishing").wait_for()
    for page, _ in viewers:
        await page.get_by_text("Waiting for the seller to go live").wait_for(timeout=10000)
    await until(lambda: not live.services.embedded.sessions, 10, what="every media session ended")

    # going live again: the viewers' pages reconnect their playback by themselves
    await studio.get_by_role("button", name="Go live").click()
    await studio.get_by_text("Live: your video is on air").wait_for(timeout=15000)
    for i, (page, _) in enumerate(viewers):
        await frames_advance(page, f"viewer {i + 1} after the restart")

    assert studio_errors == [], studio_errors
    for page, errors in viewers:
        assert errors == [], errors


async def _count_at_least(page, n: int) -> bool:
    return int(await page.locator("#viewers").inner_text()) >= n
