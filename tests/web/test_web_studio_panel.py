"""The studio's live panel and orders queue in a real Chromium, against the real server and database: the demo seller
sees a viewer's chat message and deletes it, mutes the viewer (the viewer's socket is refused `muted`); a sale made
by a buyer through the public API (cart:add in the room, checkout, the sandbox payment) shows in the panel's units
and revenue without a reload; one click spotlights another product (a viewer's socket hears product:highlighted)
and one click clears it; in the orders queue the seller opens that order, buys its label, sees it labelled and
prints it; at 360 px neither page scrolls sideways."""
from __future__ import annotations

from tests.rooms.harness import paid_sale
from tests.web.helpers import watch_errors
from tests.web.test_web_studio import PHONE, no_sideways_scroll, signed_in_page


async def test_live_panel_and_orders_queue(live, browser):
    base = live.base
    seller_id, token = await live.user("demo-seller", "seller")
    studio = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    await studio.set_viewport_size({"width": 1280, "height": 900})
    errors = watch_errors(studio)
    await studio.goto(f"{base}studio/live/demo")
    panel = studio.locator("#panel")
    await panel.get_by_role("heading", name="This stream").wait_for()
    await studio.locator("#products li").first.get_by_role("button").wait_for()

    # chat: the seller sees a viewer's message, deletes it, then mutes the viewer
    chatty = await live.viewer("web-chatty")
    assert (await chatty.say("first from chatty"))["ok"]
    message = studio.locator("#chat-list li", has_text="first from chatty")
    await message.wait_for()
    await message.get_by_role("button", name="Delete").click()
    await message.wait_for(state="detached")
    await chatty.wait_for("chat:deleted")
    await studio.get_by_role("status").get_by_text("web-chatty’s message is deleted.").wait_for()

    assert (await chatty.say("second from chatty"))["ok"]
    message = studio.locator("#chat-list li", has_text="second from chatty")
    await message.get_by_role("button", name="Mute web-chatty").click()
    await message.get_by_label("Mute web-chatty for").select_option(label="1 hour")
    await message.get_by_role("button", name="Confirm mute").click()
    await studio.get_by_role("status").get_by_text("web-chatty is muted for 1 hour.").wait_for()
    muted = await chatty.wait_for("user:muted")
    assert muted["user_id"] == chatty.user_id and muted["seconds"] == 3600
    ack = await chatty.say("can I still talk?")
    assert ack["error"]["code"] == "muted", ack

    # a sale through the public API: units and revenue in the panel without a reload
    assert await studio.locator("#units").inner_text() == "0"
    buyer_id, buyer_token = await live.user("web-buyer")
    buyer = await live.open_viewer(base, buyer_token, "web-buyer", buyer_id, "demo", {})
    order = await paid_sale(live, buyer_token, buyer)
    await studio.locator("#units").get_by_text("2", exact=True).wait_for(timeout=15000)
    revenue = await studio.locator("#revenue").inner_text()
    assert any(ch.isdigit() for ch in revenue) and revenue.strip("$0.,") != "", revenue
    assert await studio.locator("#orders-count").inner_text() == "1"
    assert await studio.locator("#carts").inner_text() == "1"  # the buyer's one add (of 2 units)
    assert int(await studio.locator("#peak").inner_text()) >= 2

    # the product picker: one click spotlights another product, one click clears it
    spot = buyer.joined["spotlight"]
    other = studio.locator("#products li").filter(has_not=studio.locator(".badge")).first
    title = (await other.locator("strong").inner_text()).strip()
    assert title != spot["title"]
    await studio.get_by_role("button", name=f"Spotlight {title}").click()
    highlighted = await chatty.wait_for("product:highlighted", lambda d: d["product"]["title"] == title)
    assert highlighted["stream_id"] == buyer.joined["stream"]["id"]
    await studio.locator("#spotlight-now").get_by_text(title).wait_for()
    await studio.locator("#products li.on").get_by_text("On screen").wait_for()
    await studio.locator("#products li.on").get_by_role("button", name="Clear").click()
    await chatty.wait_for("product:unhighlighted")
    await studio.get_by_text("Nothing is spotlighted").wait_for()

    # the orders queue: the order of that sale, its label bought and printed
    await studio.goto(f"{base}studio/orders")
    row = studio.locator("#orders li", has_text=f"#{order['number']}")
    await row.get_by_text("Paid: to ship").wait_for()
    await row.get_by_role("link").click()
    await studio.wait_for_url(f"{base}studio/orders/{order['id']}")
    detail = studio.locator("#order")
    await detail.get_by_role("heading", name=f"Order #{order['number']}").wait_for()
    await detail.get_by_role("button", name="Buy label").click()
    await detail.locator("#order-status").get_by_text("Labelled").wait_for(timeout=20000)
    await row.get_by_text("Labelled").wait_for()
    assert "SBX" in await detail.inner_text()  # the sandbox carrier's tracking number
    async with studio.expect_popup() as popup:
        await detail.get_by_role("button", name="Print label").click()
    label = await popup.value
    assert label.url.startswith("blob:"), label.url  # fetched with the token, never a token in a URL
    await label.close()

    # a phone's 360 px: both pages fit
    await studio.set_viewport_size(PHONE)
    await no_sideways_scroll(studio)
    await studio.goto(f"{base}studio/live/demo")
    await panel.get_by_role("heading", name="This stream").wait_for()
    await studio.locator("#chat-list li").first.wait_for()
    await no_sideways_scroll(studio)
    assert errors == [], errors


async def test_a_refused_moderation_is_shown(live, browser):
    """Only an admin mutes an admin: the seller's try is refused and the page says why, where the seller looks."""
    base = live.base
    seller_id, token = await live.user("demo-seller", "seller")
    studio = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(studio)
    await studio.goto(f"{base}studio/live/demo")
    admin = await live.viewer("web-admin", "admin")
    assert (await admin.say("admin here"))["ok"]
    message = studio.locator("#chat-list li", has_text="admin here")
    await message.get_by_text("admin", exact=True).wait_for()  # the admin's badge
    await message.get_by_role("button", name="Mute web-admin").click()
    await message.get_by_role("button", name="Confirm mute").click()
    alert = studio.get_by_role("alert").filter(has_text="admin")
    await alert.wait_for()
    assert await studio.locator("#mod-state").inner_text() == ""
    await message.get_by_role("button", name="Cancel").click()
    await message.get_by_role("button", name="Confirm mute").wait_for(state="detached")
    await no_sideways_scroll(studio)
    assert errors == [], errors
