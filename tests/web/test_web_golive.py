"""Issue 16's show, end to end in a real browser with Chromium's fake camera: the demo seller signs in and goes live
from the studio (WHIP); two viewers in separate browser contexts see the video move (WHEP) and chat with each
other; the seller spotlights a product with one click in the studio's picker; a viewer adds it to the cart from
the spotlight card, checks out from the cart drawer through the sandbox provider and lands on the order's page,
which says paid and then shipped without a reload; the seller sees the sale in the live panel and buys the label
in the orders queue (another tab: the show goes on). Then the seller stops, both viewers see "waiting", and going
live again restarts their playback by itself."""
from __future__ import annotations

from tests.helpers import until
from tests.web.helpers import SHIPPED, frames_advance, page_as, sign_in, text_in, watch_errors


async def overlay(page) -> str:
    return await page.locator("#video-state").inner_text() if await page.locator("#video-state").is_visible() else ""


async def test_the_show_from_going_live_to_the_label(shop, dsn, browser):
    await _show(shop, dsn, browser)


async def _show(live, dsn, browser):
    base = live.base
    state = await live.demo_state()
    seller_ctx = await browser.new_context()
    studio = await seller_ctx.new_page()
    studio_errors = watch_errors(studio)
    await sign_in(studio, base, dsn, "demo-seller@example.com", next_path="/studio/live/demo")

    # a first viewer is there before the seller publishes: waiting; the second watches on a phone
    viewers = []
    for name, viewport in (("web-ann", None), ("web-bob", {"width": 360, "height": 740})):
        uid, token = await live.user(name)
        page = await page_as(browser, base, uid, name, token, **({"viewport": viewport} if viewport else {}))
        viewers.append((page, watch_errors(page, "status of 409")))  # WHEP before anyone publishes: 409, shown
    (ann, ann_errors), (bob, bob_errors) = viewers
    await ann.goto(f"{base}live/demo")
    await ann.get_by_text("Waiting for the seller to go live").wait_for()
    assert await ann.locator("#stream-title").inner_text() == state.title

    # the studio: status, the OBS settings to copy, then Go live
    await studio.get_by_text("Not publishing").wait_for()
    assert await studio.locator("#stream-status").inner_text() == "live"
    assert await studio.get_by_label("Server (WHIP URL)").input_value() == f"{base}api/v1/livestreams/{state.id}/whip"
    token = await studio.get_by_label("Bearer token").input_value()
    assert token and await studio.get_by_label("Bearer token").get_attribute("type") == "password"
    await studio.get_by_role("button", name="Go live").click()
    await studio.get_by_text("Live: your video is on air").wait_for(timeout=15000)
    assert live.services.embedded.publishing(state.id)

    # ann's page starts playing on media:status; bob comes after the start
    await bob.goto(f"{base}live/demo")
    for i, (page, _) in enumerate(viewers):
        await frames_advance(page, f"viewer {i + 1}")
        assert await overlay(page) == ""
        assert await page.get_by_role("button", name="Unmute").is_visible()  # autoplay is muted
    await until(lambda: _count_at_least(ann, 3), 10, what="the viewer count (seller + 2 viewers)")
    await bob.get_by_role("button", name="Unmute").click()
    assert await bob.evaluate("document.getElementById('video').muted") is False

    # the two viewers chat: each message appears on both pages (and in the seller's panel)
    await ann.get_by_label("Message", exact=True).fill("is the bag waterproof?")
    await ann.keyboard.press("Enter")
    await bob.get_by_label("Message", exact=True).fill("I have one, it is")
    await bob.keyboard.press("Enter")
    for page in (ann, bob, studio):
        for text in ("is the bag waterproof?", "I have one, it is"):
            await page.locator("#chat-list li", has_text=text).wait_for()

    # the seller spotlights the bag with one click in the picker: both viewers see it with its stock
    bag = "Canvas Weekender Bag"
    await studio.get_by_role("button", name=f"Spotlight {bag}").click()
    for page in (ann, bob):
        await page.locator("#spot-title", has_text=bag).wait_for()
    before = await ann.locator("#spot-stock").inner_text()
    price = (await bob.locator("#spot-price").inner_text()).strip()
    assert (await studio.locator("#revenue").inner_text()).strip() != price  # no sale yet

    # bob adds it to his cart from the card, opens the drawer, checks out through the sandbox
    await bob.get_by_role("button", name="Add to cart").click()
    await bob.get_by_text("Added to your cart.").wait_for()
    await until(lambda: _changed(ann.locator("#spot-stock"), before), 10, what="ann's live stock going down")
    await bob.get_by_role("button", name="Cart (1)").click()
    drawer = bob.get_by_role("dialog", name="Your cart")
    await drawer.get_by_role("listitem").filter(has_text=bag).wait_for()
    await drawer.get_by_role("link", name="Checkout").click()
    await bob.wait_for_url(f"{base}checkout")
    for label, value in (("Full name", "Bob Buyer"), ("Address line 1", "5 Broadway"), ("City", "New York"),
                         ("State or region", "NY"), ("Postal code", "10001"), ("Country code", "US")):
        await bob.get_by_label(label).fill(value)
    await bob.get_by_role("button", name="Show shipping options").click()
    await bob.get_by_role("group", name=f"Shipping for {bag}").wait_for()
    await bob.get_by_role("button", name="Place order").click()
    await bob.get_by_role("link", name="Pay ").click()
    await bob.get_by_role("button", name="Pay").click()
    await bob.wait_for_url(f"{base}orders/*?payment=succeeded")
    await bob.evaluate("window.__sameDocument = true")  # from here on, no reload: paid, then shipped
    order_id = bob.url.split("/orders/")[1].split("?")[0]
    badge = bob.locator("#order-status")
    await until(lambda: text_in(badge, ("Paid",)), 10, what="the order shown paid")
    await bob.get_by_text("Live: this page updates by itself.").wait_for()

    # the seller sees the sale in the live panel, then buys the label in the orders queue in another tab
    await studio.locator("#units").get_by_text("1", exact=True).wait_for(timeout=15000)
    await until(lambda: text_in(studio.locator("#revenue"), (price,)), 10, what="the sale's revenue in the panel")
    assert await studio.locator("#orders-count").inner_text() == "1"
    queue = await seller_ctx.new_page()
    queue_errors = watch_errors(queue)
    await queue.goto(f"{base}studio/orders/{order_id}")
    detail = queue.locator("#order")
    await detail.get_by_role("button", name="Buy label").click()
    await detail.locator("#order-status").get_by_text("Labelled").wait_for(timeout=20000)

    # the sandbox carrier's scans move bob's order page to shipped, with no reload; the show is still on
    await until(lambda: text_in(badge, SHIPPED), 30, what="the order shown shipped")
    assert await bob.evaluate("window.__sameDocument") is True
    assert await bob.evaluate("document.documentElement.scrollWidth") <= 360
    await frames_advance(ann, "viewer 1 during the sale")

    # the seller stops: ann is told, and the server holds no media session any more
    await studio.get_by_role("button", name="Stop").click()
    await studio.get_by_text("Not publishing").wait_for()
    await ann.get_by_text("Waiting for the seller to go live").wait_for(timeout=10000)
    await until(lambda: not live.services.embedded.sessions, 10, what="every media session ended")

    # going live again: ann's page, and bob's back on the watch page, play again by themselves
    await bob.goto(f"{base}live/demo")
    await bob.get_by_text("Waiting for the seller to go live").wait_for(timeout=10000)
    await studio.get_by_role("button", name="Go live").click()
    await studio.get_by_text("Live: your video is on air").wait_for(timeout=15000)
    for i, (page, _) in enumerate(viewers):
        await frames_advance(page, f"viewer {i + 1} after the restart")

    for errors in (studio_errors, queue_errors, ann_errors, bob_errors):
        assert errors == [], errors


async def _count_at_least(page, n: int) -> bool:
    return int(await page.locator("#viewers").inner_text()) >= n


async def _changed(locator, before: str) -> bool:
    return (await locator.inner_text()).strip() != before.strip()
