"""The watch page as a live shopping page, in a real Chromium with the real server: two viewers chat and both see
it (seller and moderator badges, Enter sends), the seller (over the socket API) deletes a message (it disappears)
and mutes a viewer (they are told, and a message is refused 'muted'); a guest is offered to sign in; the spotlight
the seller sets appears with price and live stock, a viewer adds it to the cart (the cart count changes, the other
viewer's stock goes down, sold out disables the button); the 360 px layout; a reconnect after the server cuts the
websocket recovers a message sent meanwhile, once; a burst of 500 messages in 10 s leaves at most 200 in the list."""
from __future__ import annotations

import asyncio

from tests.helpers import until
from tests.web.helpers import page_as, watch_errors
from tests.web.test_web_watch import state_is

MAX_MESSAGES = 200  # js/chat.js


def chat_line(page, text: str):
    return page.locator("#chat-list li", has_text=text)


async def viewer_page(browser, live, name: str, init: str | None = None, **context):
    uid, token = await live.user(name)
    page = await page_as(browser, live.base, uid, name, token, **context)
    if init:
        await page.add_init_script(init)
    errors = watch_errors(page, "status of 409")  # WHEP while nobody publishes
    await page.goto(f"{live.base}live/demo")
    await page.get_by_label("Message", exact=True).wait_for()
    return uid, page, errors


async def no_sideways_scroll(page) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_chat_moderation_and_the_spotlight(live, browser):
    seller = await live.seller()
    mod_id, _ = await live.user("web-mod")  # a moderator since before the pages joined (the join ack names them)
    assert (await seller.call("moderator:add", {"stream_id": "demo", "user_id": mod_id}))["ok"]
    # ann's browser has no crypto.randomUUID, as a page at http://<LAN address> (not a secure context)
    ann_id, ann, ann_errors = await viewer_page(browser, live, "web-ann", init="delete Crypto.prototype.randomUUID;")
    bob_id, bob, bob_errors = await viewer_page(browser, live, "web-bob", viewport={"width": 360, "height": 740})

    # chat between the two, both ways, sent with Enter
    await ann.get_by_label("Message", exact=True).fill("hello from ann")
    await ann.keyboard.press("Enter")
    await bob.get_by_label("Message", exact=True).fill("hi ann")
    await bob.get_by_role("button", name="Send").click()
    for page in (ann, bob):
        await chat_line(page, "hello from ann").wait_for()
        await chat_line(page, "hi ann").wait_for()
    assert await ann.get_by_label("Message", exact=True).input_value() == ""
    assert (await seller.say("welcome everyone"))["ok"]
    await chat_line(ann, "welcome everyone").locator(".chat-badge", has_text="Seller").wait_for()
    mod = await live.viewer("web-mod")
    assert (await mod.say("keep it friendly"))["ok"]
    await chat_line(bob, "keep it friendly").locator(".chat-badge", has_text="Moderator").wait_for()
    assert await chat_line(bob, "hello from ann").locator(".chat-badge").count() == 0

    # the seller deletes bob's message: it disappears for both
    msg = await seller.wait_for("chat:new", lambda d: d["text"] == "hi ann")
    assert (await seller.call("chat:delete", {"stream_id": "demo", "message_id": msg["id"]}))["ok"]
    for page in (ann, bob):
        await chat_line(page, "hi ann").wait_for(state="detached")
    assert await chat_line(ann, "hello from ann").count() == 1

    # the seller mutes bob: he is told, and what he sends is refused
    assert (await seller.call("user:mute", {"stream_id": "demo", "user_id": bob_id, "seconds": 120}))["ok"]
    await bob.get_by_text("A moderator muted you for 120 s").wait_for()
    await bob.get_by_label("Message", exact=True).fill("let me talk")
    await bob.keyboard.press("Enter")
    await bob.get_by_text("You are muted for").wait_for()
    assert await chat_line(ann, "let me talk").count() == 0

    # a guest reads the chat and is offered to sign in
    guest = await (await browser.new_context()).new_page()
    guest_errors = watch_errors(guest, "status of 409")
    await guest.goto(f"{live.base}live/demo")
    await chat_line(guest, "hello from ann").wait_for()
    link = guest.get_by_role("link", name="Sign in to chat")
    assert await link.get_attribute("href") == "/signin?next=%2Flive%2Fdemo"
    assert not await guest.get_by_label("Message", exact=True).is_visible()

    # the spotlight: the seller spotlights the bag; its price, options and stock appear on every page
    status, body = await live.api("GET", "/livestreams/demo/products")
    assert status == 200
    bag = next(p for p in body["items"] if p["title"] == "Canvas Weekender Bag")
    assert (await seller.call("product:highlight", {"stream_id": "demo", "product_id": bag["id"]}))["ok"]
    for page in (ann, bob, guest):
        await page.locator("#spot-title", has_text="Canvas Weekender Bag").wait_for()
    assert "129" in await ann.locator("#spot-price").inner_text()
    picture = ann.get_by_role("img", name="Canvas Weekender Bag")  # the demo's own picture, served by the server
    assert await picture.get_attribute("src") == "/static/demo/weekender-bag.svg"
    await until(lambda: picture.evaluate("i => i.complete && i.naturalWidth > 0"), 10, what="the bag's picture")
    assert await ann.locator("#spot-stock").inner_text() == "15 in stock"
    await ann.get_by_label("Option").select_option(label="navy")
    navy = next(v for v in bag["variants"] if v["color"] == "navy")
    assert await ann.get_by_label("Option").input_value() == navy["id"]
    await bob.get_by_label("Option").select_option(label="navy")
    await ann.get_by_role("button", name="Add to cart").click()
    await ann.get_by_text("Added to your cart.").wait_for()
    await until(lambda: _text_is(ann.locator("#cart-count"), "1"), 10, what="ann's cart count")
    await until(lambda: _text_is(bob.locator("#spot-stock"), "14 in stock"), 10, what="bob's live stock")
    assert await no_sideways_scroll(bob)  # 360 px: spotlight, chat, reactions fit

    # a product with one unit left: ann takes it, bob's button turns to sold out
    last = await live.product("demo-seller", "Last lamp", stock=1)
    assert (await seller.call("product:highlight", {"stream_id": "demo", "product_id": last["id"]}))["ok"]
    await bob.locator("#spot-title", has_text="Last lamp").wait_for()
    await ann.locator("#spot-title", has_text="Last lamp").wait_for()
    await ann.get_by_role("button", name="Add to cart").click()
    await ann.get_by_text("Added to your cart.").wait_for()
    await until(lambda: _text_is(bob.locator("#spot-stock"), "Sold out"), 10, what="sold out on bob's page")
    assert await bob.get_by_role("button", name="Add to cart").is_disabled()
    await until(lambda: _text_is(ann.locator("#cart-count"), "2"), 10, what="ann's cart count")

    # the seller clears the spotlight: the card goes; a guest's Add to cart goes to sign in and back
    assert (await seller.call("product:unhighlight", {"stream_id": "demo"}))["ok"]
    await ann.locator("#spotlight").wait_for(state="hidden")
    assert (await seller.call("product:highlight", {"stream_id": "demo", "product_id": bag["id"]}))["ok"]
    await guest.get_by_role("button", name="Add to cart").click()
    await guest.wait_for_url(f"{live.base}signin?next=%2Flive%2Fdemo")

    # reactions: bob's heart reaches ann's totals
    await bob.get_by_role("button", name="React heart").click()
    await until(lambda: _text_is(ann.locator("[data-kind=heart] .reaction-total"), "1"), 10, what="ann sees the heart")
    assert await no_sideways_scroll(bob)

    # slow mode: announced, and a second message within it is refused with the wait
    assert (await seller.call("chat:slowmode", {"stream_id": "demo", "seconds": 30}))["ok"]
    await ann.get_by_text("Slow mode: one message every 30 s.").wait_for()
    for text in ("slow one", "slow two"):
        await ann.get_by_label("Message", exact=True).fill(text)
        await ann.keyboard.press("Enter")
        await until(ann.get_by_role("button", name="Send").is_enabled, 10, what="the message's answer")
    await ann.get_by_text("Slow mode: wait").wait_for()
    assert await chat_line(ann, "slow two").count() == 0
    assert ann_errors == [] and bob_errors == [] and guest_errors == [], (ann_errors, bob_errors, guest_errors)


async def _text_is(locator, text: str) -> bool:
    return (await locator.inner_text()).strip() == text


async def test_reconnect_recovers_the_chat_and_a_burst_stays_bounded(live, browser):
    ann_id, ann, errors = await viewer_page(browser, live, "web-ann")
    seller = await live.seller()
    assert (await seller.say("before the cut"))["ok"]
    await chat_line(ann, "before the cut").wait_for()

    # the network drops every connection (the seller's test socket too); a message is sent meanwhile
    for conn in list(live.gateway.conns.values()):
        if conn.sock.transport is not None:
            conn.sock.transport.abort()
    await until(lambda: state_is(ann, "reconnecting"), 5, step=0.01, what="the page reconnecting")
    seller = await live.seller()
    assert (await seller.say("while you were away"))["ok"]
    await chat_line(ann, "while you were away").wait_for(timeout=15000)
    await until(lambda: state_is(ann, "live"), 10, what="the page joined again")
    assert await chat_line(ann, "before the cut").count() == 1  # recovered, not duplicated
    assert await chat_line(ann, "while you were away").count() == 1

    # a burst: 500 messages in about 10 s from five of the seller's sockets (the seller has no chat limit)
    senders = [seller] + [await live.seller() for _ in range(4)]

    async def send(i: int, v) -> None:
        for j in range(100):
            ack = await v.say(f"burst {i}-{j}")
            assert ack["ok"], ack
            await asyncio.sleep(0.09)

    await asyncio.gather(*(send(i, v) for i, v in enumerate(senders)))
    await until(lambda: _all_in(ann), 15, what="the burst's last messages")
    assert await ann.locator("#chat-list li").count() == MAX_MESSAGES
    # the reader was at the bottom: it followed the newest
    assert await ann.evaluate("(l => l.scrollHeight - l.scrollTop - l.clientHeight < 24)"
                              "(document.getElementById('chat-list'))")

    # scrolled up to read: a new message does not move the list, a button offers to go down
    await ann.evaluate("document.getElementById('chat-list').scrollTop = 0")
    assert (await seller.say("one more"))["ok"]
    more = ann.get_by_role("button", name="New messages")
    await more.wait_for()
    assert await ann.evaluate("document.getElementById('chat-list').scrollTop") == 0
    await more.click()
    await more.wait_for(state="hidden")
    assert await chat_line(ann, "one more").is_visible()
    assert errors == [], errors


async def _all_in(page) -> bool:
    texts = await page.locator("#chat-list li").all_inner_texts()
    return sum(any(t.endswith(f"burst {i}-99") for t in texts) for i in range(5)) == 5
