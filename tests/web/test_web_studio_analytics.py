"""A stream's analytics page at a phone's 360 px, in a real Chromium: reached from the studio's home, after a paid
sale and three viewer counts (one written by the rooms' sampler, two earlier ones), it shows the totals, a line
chart with three points and a bar chart with one bar (their tables too) and the product sold; a show that has not
started says it has nothing yet, and its Refresh reads once at a time and gives up on a server that does not answer
(15 s of the page's clock); both pass the accessibility scan and do not scroll sideways. A buyer is told the
analytics are the seller's."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from live.auth.principal import SYSTEM
from tests.rooms.harness import paid_sale
from tests.web.a11y import assert_accessible
from tests.web.helpers import watch_errors
from tests.web.test_web_studio import no_sideways_scroll, signed_in_page


async def test_stream_analytics_page(live, browser):
    base = live.base
    rooms = live.services.rooms
    demo = await live.demo_state()
    buyer_id, buyer_token = await live.user("web-analytics-buyer")
    buyer = await live.open_viewer(base, buyer_token, "web-analytics-buyer", buyer_id, "demo", {})
    await live.viewer()
    order = await paid_sale(live, buyer_token, buyer)
    await buyer.wait_for("order:update", lambda d: d["order"]["status"] == "paid", 20)
    await rooms.publish_counts()  # the 1 s tally: 2 viewers (the peak)
    await rooms.save_viewer_samples()  # the 30 s sampler, now
    async with live.services.db.tx(SYSTEM) as conn:
        [now_slot] = await conn.fetch("SELECT at FROM viewer_samples WHERE livestream_id = $1::uuid", demo.id)
        for back, viewers in ((60, 1), (30, 3)):  # two earlier counts
            await conn.execute("INSERT INTO viewer_samples (livestream_id, at, viewers) VALUES ($1::uuid, $2, $3)",
                               demo.id, now_slot["at"] - timedelta(seconds=back), viewers)

    seller_id, token = await live.user("demo-seller", "seller")
    page = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(page)
    await page.goto(f"{base}studio")
    show = page.locator(".shows-live li", has=page.get_by_role("link", name=demo.title, exact=True))
    await show.get_by_role("link", name="Analytics", exact=True).click()
    await page.wait_for_url(f"{base}studio/streams/{demo.id}/analytics")
    await page.get_by_role("heading", name=f"Analytics: {demo.title}").wait_for()

    totals = page.locator("#totals")
    assert await totals.locator("[data-total='Units sold'] dd").inner_text() == "2"
    assert await totals.locator("[data-total='Paid orders'] dd").inner_text() == "1"
    assert await totals.locator("[data-total='Peak viewers'] dd").inner_text() == "2"
    line = order["items"][0]
    revenue = await page.evaluate("([m, c]) => new Intl.NumberFormat(undefined, {style: 'currency', currency: c})"
                                  ".format(m / 100)", [2 * line["unit_price_minor"], line["currency"]])
    assert await totals.locator("[data-total='Revenue'] dd").inner_text() == revenue

    viewers = page.locator("#viewers-chart")
    chart = viewers.get_by_role("img")
    assert "3 counts" in await chart.get_attribute("aria-label") and "at most 3 viewers" in \
        await chart.get_attribute("aria-label")
    assert await viewers.locator("circle.point").count() == 3
    heights = await viewers.locator("circle.point").evaluate_all("cs => cs.map(c => +c.getAttribute('cy'))")
    assert heights[1] < heights[2] < heights[0], "1, 3 then 2 viewers: the middle point highest (smallest y)"
    await viewers.get_by_text("Show the numbers").click()
    assert await viewers.locator("tbody tr").count() == 3
    assert await viewers.locator("tbody tr td").all_inner_texts() == ["1", "3", "2"]

    sales = page.locator("#sales-chart")
    assert await sales.locator("rect.bar").count() == 1
    await sales.get_by_text("Show the numbers").click()
    assert (await sales.locator("tbody tr td").all_inner_texts())[:3] == ["1", "2", revenue]
    assert await page.locator("#top li").all_inner_texts() == [f"{line['title']}: 2 sold · {revenue}"]
    await no_sideways_scroll(page)
    await assert_accessible(page)

    # sales spread over days come summed into buckets (the API's sales_bucket_minutes): the chart says so
    async def bucketed(route):
        body = await (await route.fetch()).json()
        body["sales_bucket_minutes"] = 8
        await route.fulfill(json=body)
    await page.route("**/analytics", bucketed)
    await page.get_by_role("button", name="Refresh").click()
    sales = page.locator("#sales-chart")
    await sales.get_by_role("heading", name="Sales per 8 minutes").wait_for()
    assert "2 units in 1 period of 8 minutes with a sale" in await sales.get_by_role("img").get_attribute("aria-label")
    await sales.get_by_text("Show the numbers").click()
    assert await sales.locator("thead th").first.inner_text() == "From"
    await page.unroute("**/analytics", bucketed)

    # a show that has not started: nothing yet, said so
    status, show = await live.api("POST", "/livestreams", token, {
        "title": "Next week", "slug": "next-week",
        "scheduled_at": (datetime.now(timezone.utc) + timedelta(days=7)).isoformat()})
    assert status == 201, show
    await page.clock.install()  # the page's timers run forward below
    await page.goto(f"{base}studio/streams/next-week/analytics")
    await page.get_by_text("Not started yet").wait_for()
    await page.get_by_text("No viewer counts yet").wait_for()
    await page.get_by_text("No paid orders from this stream yet.").wait_for()
    await page.get_by_text("Nothing sold from this stream yet.").wait_for()
    assert await page.locator("svg").count() == 0
    await no_sideways_scroll(page)
    await assert_accessible(page)

    # Refresh by keyboard while the server does not answer: one read at a time, then given up after 15 s
    held, release, done, asked = asyncio.Event(), asyncio.Event(), asyncio.Event(), []

    async def hold(route):
        asked.append(route.request.url)
        held.set()
        await release.wait()
        await route.continue_()  # the late answer, which the page no longer waits for
        done.set()
    await page.route("**/analytics", hold)
    reload = page.get_by_role("button", name="Refresh")
    await reload.focus()
    await page.keyboard.press("Enter")
    await asyncio.wait_for(held.wait(), 10)
    assert await reload.get_attribute("aria-disabled") == "true"
    await page.keyboard.press("Enter")  # a second press while the first read waits asks nothing more
    await page.get_by_role("status").get_by_text("Loading…").wait_for()
    await page.clock.run_for(15000)
    await page.get_by_role("alert").get_by_text("Could not load the analytics: the server did not answer.").wait_for()
    assert len(asked) == 1, asked
    assert await reload.get_attribute("aria-disabled") is None
    assert await reload.evaluate("b => b === document.activeElement")
    assert await page.get_by_role("status").inner_text() == ""
    release.set()
    await asyncio.wait_for(done.wait(), 10)
    await page.unroute("**/analytics", hold)
    assert errors == [], errors

    # another account (the buyer) is refused by the API, and told so
    other = await signed_in_page(browser, base, buyer_token, {"id": buyer_id, "name": "web-analytics-buyer"})
    await other.goto(f"{base}studio/streams/demo/analytics")
    await other.get_by_role("alert").get_by_text("Only the stream’s seller sees its analytics.").wait_for()
    assert await other.locator("#an-body").is_hidden()
