"""The home page in a real Chromium against the real server and database: the demo stream live with its card
(viewers, link to its watch page), a scheduled stream with its start in the viewer's time zone and its cover,
an ended one as a replay card, empty and failed shelves ("Try again"), "Show more", and no sideways scroll at
360 px wide."""
from __future__ import annotations

from datetime import datetime, timezone

from tests.helpers import until
from tests.notify.test_uploads_cover import png
from tests.rooms.harness import SELLER
from tests.web.a11y import assert_accessible
from tests.web.helpers import latest_code, watch_errors

START = datetime(2031, 1, 2, 3, 4, tzinfo=timezone.utc)  # 12:04 PM in Tokyo (GMT+9)


async def test_home_lists_live_scheduled_and_replays(live, browser):
    base = live.base
    _, token = await live.user(SELLER, "seller")
    assert (await live.api("POST", "/livestreams", token, {"title": "Pottery night", "slug": "pottery",
                                                         "scheduled_at": START.isoformat()}))[0] == 201
    resp = await live.client.post("/api/v1/livestreams/pottery/cover", data=png(),
                                  headers={"Content-Type": "image/png", "Authorization": f"Bearer {token}"})
    assert resp.status == 200
    await live.viewer()  # someone watches the demo stream
    await live.services.rooms.publish_counts()

    context = await browser.new_context(locale="en-US", timezone_id="Asia/Tokyo",
                                        viewport={"width": 360, "height": 740})
    page = await context.new_page()
    errors = watch_errors(page, "status of 500")  # the failed shelf below, on purpose
    # the replays' first request fails: the shelf says so and offers to try again
    await page.route("**/api/v1/livestreams?status=ended*", lambda route: route.fulfill(
        status=500, content_type="application/json", body='{"error": {"code": "internal", "message": "boom"}}'))
    await page.goto(base)

    live_now = page.get_by_role("region", name="Live now")
    state = await live.demo_state()
    demo = live_now.get_by_role("link", name=state.title)
    await demo.wait_for()
    assert await demo.get_attribute("href") == "/live/demo"
    assert "1 watching" in await demo.inner_text() and "Demo Seller" in await demo.inner_text()
    assert "Live" in await demo.locator(".badge").inner_text()

    coming = page.get_by_role("region", name="Coming up")
    pottery = coming.get_by_role("link", name="Pottery night")
    await pottery.wait_for()
    assert await pottery.get_attribute("href") == "/live/pottery"
    when = pottery.locator("time")
    assert await when.get_attribute("datetime") == START.isoformat().replace("+00:00", "Z") \
        or datetime.fromisoformat(await when.get_attribute("datetime")) == START
    text = await when.inner_text()
    assert "12:04" in text and "PM" in text and "GMT+9" in text, text  # the viewer's time zone
    cover = pottery.locator("img")
    assert (await cover.get_attribute("src")).startswith("/uploads/")
    await until(lambda: cover.evaluate("img => img.complete && img.naturalWidth > 0"), 5, what="the cover shown")

    replays = page.get_by_role("region", name="Replays")
    await replays.get_by_role("alert").get_by_text("Could not load this list").wait_for()
    await page.unroute("**/api/v1/livestreams?status=ended*")
    await replays.get_by_role("button", name="Try again: Replays").click()
    await replays.get_by_text("No replays yet.").wait_for()
    assert not await replays.get_by_role("alert").is_visible()

    # at 360 px: one column, nothing wider than the screen
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    box = await demo.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    # the header still leads to sign-in and the studio
    assert await page.get_by_role("link", name="Sign in").first.get_attribute("href") == "/signin"
    assert await page.get_by_role("link", name="Go live (studio)").get_attribute("href") == "/studio/live/demo"

    # an ended stream is a replay card; more scheduled streams than a page: "Show more"
    assert (await live.api("POST", "/livestreams", token, {"title": "Done show", "slug": "done-show"}))[0] == 201
    assert (await live.api("POST", "/livestreams/done-show/start", token))[0] == 200
    assert (await live.api("POST", "/livestreams/done-show/end", token))[0] == 200
    for i in range(24):
        assert (await live.api("POST", "/livestreams", token, {"title": f"Later {i}", "slug": f"later-{i}"}))[0] == 201
    await page.reload()
    done = page.get_by_role("region", name="Replays").get_by_role("link", name="Done show")
    await done.wait_for()
    assert await done.get_attribute("href") == "/replay/done-show"
    cards = coming.locator("li")
    await until(lambda: cards.count(), 5, what="the scheduled cards")
    assert await cards.count() == 12
    more = coming.get_by_role("button", name="Show more: Coming up")
    await more.focus()
    await page.keyboard.press("Enter")
    await until(lambda: _count_is(cards, 24), 5, what="24 scheduled cards")
    assert await more.evaluate("b => b === document.activeElement")  # still there, still focused
    await page.keyboard.press("Enter")
    await until(lambda: _count_is(cards, 25), 5, what="the 25th scheduled card")
    assert not await more.is_visible()  # nothing more to show: the keyboard goes on to the first new card
    assert await cards.nth(24).get_by_role("link").evaluate("a => a === document.activeElement")
    assert errors == [], errors


async def _count_is(locator, n: int) -> bool:
    return await locator.count() == n


async def test_follow_the_seller_of_a_scheduled_stream(live, dsn, browser):
    """Signed out, "Follow Demo Seller" on a scheduled card leads to sign-in and back, where the follow is made
    (the API then lists it); the toggle works by keyboard, is announced (aria-pressed, a status line) and keeps
    every card of that seller in step."""
    _, token = await live.user(SELLER, "seller")
    for slug, title in (("pottery", "Pottery night"), ("glaze", "Glazing")):
        assert (await live.api("POST", "/livestreams", token, {"title": title, "slug": slug,
                                                             "scheduled_at": START.isoformat()}))[0] == 201
    page = await (await browser.new_context(viewport={"width": 360, "height": 740})).new_page()
    errors = watch_errors(page)
    await page.goto(live.base)
    coming = page.get_by_role("region", name="Coming up")
    follow = coming.get_by_role("listitem").filter(has_text="Pottery night").get_by_role("button",
                                                                                         name="Follow Demo Seller")
    await follow.wait_for()
    assert await follow.get_attribute("aria-pressed") == "false"
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await assert_accessible(page)

    await follow.click()  # signed out: to the sign-in page, and back here
    await page.wait_for_url("**/signin?next=%2F")
    await page.get_by_label("Email address").fill("follower@example.com")
    await page.get_by_role("button", name="Email me a code").click()
    _, code = await latest_code(dsn, "follower@example.com")
    await page.get_by_label("6-digit code").fill(code)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(live.base)
    await until(lambda: _pressed(follow, "true"), 10, what="the follow made on coming back")
    assert await follow.evaluate("b => b === document.activeElement")
    await coming.get_by_text("You follow Demo Seller").wait_for()
    other = coming.get_by_role("listitem").filter(has_text="Glazing").get_by_role("button", name="Follow Demo Seller")
    assert await other.get_attribute("aria-pressed") == "true"  # the same seller's other card
    me = await page.evaluate("JSON.parse(localStorage.getItem('live.session')).token")
    assert [f["seller"]["slug"] for f in (await live.api("GET", "/me/follows", me))[1]["items"]] == [SELLER]
    await assert_accessible(page)

    await page.keyboard.press("Space")  # unfollow, by keyboard
    await until(lambda: _pressed(follow, "false"), 10, what="the unfollow")
    await coming.get_by_text("You no longer follow Demo Seller.").wait_for()
    assert await other.get_attribute("aria-pressed") == "false"
    assert (await live.api("GET", "/me/follows", me))[1]["items"] == []
    await page.reload()  # the state is the server's
    await follow.wait_for()
    assert await follow.get_attribute("aria-pressed") == "false"
    await follow.press("Enter")
    await until(lambda: _pressed(follow, "true"), 10, what="the follow by Enter")
    await page.reload()
    await until(lambda: _pressed(follow, "true"), 10, what="the follow read back from GET /me/follows")
    assert errors == [], errors


async def test_live_counts_refresh_in_place(live, browser):
    """Every 30 s (the page's clock run forward) the live shelf shows the new viewer count, drops a stream that
    ended and adds one that went live, and the coming-up shelf loses it; the focused card keeps its focus."""
    _, token = await live.user(SELLER, "seller")
    for slug, title in (("knitting", "Knitting"), ("pottery", "Pottery night")):
        assert (await live.api("POST", "/livestreams", token, {"title": title, "slug": slug}))[0] == 201
    assert (await live.api("POST", "/livestreams/knitting/start", token))[0] == 200
    page = await (await browser.new_context()).new_page()
    errors = watch_errors(page)
    await page.clock.install()
    await page.goto(live.base)
    live_now = page.get_by_role("region", name="Live now")
    title = (await live.demo_state()).title
    demo = live_now.get_by_role("link", name=title)
    await demo.wait_for()
    assert "0 watching" in await demo.inner_text()
    await live_now.get_by_role("link", name="Knitting").wait_for()
    await page.get_by_role("region", name="Coming up").get_by_role("link", name="Pottery night").wait_for()
    await demo.focus()
    await demo.evaluate("a => { a.dataset.mark = 'same node'; }")

    await live.viewer()  # someone watches the demo; knitting ends; pottery goes live
    await live.services.rooms.publish_counts()
    assert (await live.api("POST", "/livestreams/knitting/end", token))[0] == 200
    assert (await live.api("POST", "/livestreams/pottery/start", token))[0] == 200
    await page.clock.run_for(20000)
    assert "0 watching" in await demo.inner_text()  # not yet
    await page.clock.run_for(10000)
    await live_now.get_by_role("link", name="Pottery night").wait_for()
    await until(lambda: _has_text(demo, "1 watching"), 5, what="the demo's new viewer count")
    assert await live_now.get_by_role("link", name="Knitting").count() == 0
    await page.get_by_role("region", name="Coming up").get_by_text("Nothing is scheduled yet.").wait_for()
    assert await page.evaluate("document.activeElement.dataset.mark") == "same node"  # not re-rendered, focused
    assert errors == [], errors


async def _pressed(locator, value: str) -> bool:
    return await locator.get_attribute("aria-pressed") == value


async def _has_text(locator, text: str) -> bool:
    return text in await locator.inner_text()
