"""The account pages (/account/<section>) in a real Chromium, with the real server and database: a signed-in buyer
with an order, an address, a wishlist item, a follow and notifications (made through REST and the notify service)
sees each section; adds an address after a per-field error; removes, unfollows; marks notifications read (the
unread count changes) while a new one arrives without a reload; turns an optional email kind off (the API shows
it off); at 360 px no page scrolls sideways; signed out, /account sends to sign-in and back."""
from __future__ import annotations

import uuid

from live.auth.principal import SYSTEM
from live.notify import notify
from tests.helpers import until
from tests.web.helpers import page_as, watch_errors

ADDRESS = {"name": "Bo Buyer", "line1": "5 Broadway", "city": "New York", "state": "NY", "postal_code": "10001",
           "country": "US"}
NO_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


async def rest(live, method: str, path: str, token: str, body=None, **headers) -> dict:
    resp = await live.client.request(method, f"/api/v1{path}", json=body,
                                     headers={"Authorization": f"Bearer {token}", **headers})
    assert resp.status < 300, (method, path, resp.status, await resp.text())
    return await resp.json() if resp.status != 204 else {}


async def buyer_with_things(live, name: str) -> tuple[str, str, dict]:
    """A buyer with an order (sandbox checkout, awaiting payment), a saved address, a wishlist item and a follow of
    the demo seller; (user id, token, {order, product})."""
    user_id, token = await live.user(name)
    product = await live.product("demo-seller", title=f"Scarf {name}")
    await rest(live, "POST", "/me/cart/items", token, {"variant_id": product["variant_id"], "qty": 2})
    out = await rest(live, "POST", "/checkout", token, {"address": ADDRESS, "provider": "sandbox"},
                     **{"Idempotency-Key": uuid.uuid4().hex})
    await rest(live, "POST", "/me/addresses", token, {**ADDRESS, "default": True})
    await rest(live, "PUT", f"/me/wishlist/{product['id']}", token)
    await rest(live, "POST", "/sellers/demo-seller/follow", token)
    return user_id, token, {"order": out["orders"][0], "product": product}


async def notice(live, user_id: str, kind: str, number: str) -> None:
    async with live.services.db.tx(SYSTEM) as conn:
        await notify(conn, kind, [user_id], {"order_id": str(uuid.uuid4()), "number": number},
                     f"{kind}:{number}:{uuid.uuid4().hex[:6]}")


async def test_the_buyer_sees_and_changes_each_section(live, browser):
    base = live.base
    user_id, token, things = await buyer_with_things(live, "web-acct-ann")
    order = things["order"]
    page = await page_as(browser, base, user_id, "web-acct-ann", token)
    errors = watch_errors(page, "status of 422")

    await page.goto(f"{base}account")
    orders = page.get_by_role("list", name="Your orders")
    link = orders.get_by_role("link", name=f"Order {order['number']}")
    await link.wait_for()
    assert await link.get_attribute("href") == f"/orders/{order['id']}"
    assert await orders.locator("[data-status]").first.inner_text() == "pending payment"
    assert await page.get_by_label("Name").input_value() == "web-acct-ann"

    # addresses: the saved one (default), then adding one with a bad country first
    await page.get_by_role("navigation", name="Account sections").get_by_role("link", name="Addresses").click()
    addresses = page.get_by_role("list", name="Your addresses")
    await addresses.get_by_text("5 Broadway, 10001 New York").wait_for()
    await page.get_by_label("Full name").fill("Cy Friend")
    await page.get_by_label("Address line 1").fill("1 Congress Ave")
    await page.get_by_label("City").fill("Austin")
    await page.get_by_label("State or region").fill("TX")
    await page.get_by_label("Postal code").fill("78701")
    await page.get_by_label("Country code").fill("U")
    await page.get_by_role("button", name="Save address").click()
    country_error = page.locator("#address-country-error")
    await country_error.wait_for()
    assert await country_error.inner_text() != ""
    assert await page.get_by_label("Country code").get_attribute("aria-invalid") == "true"
    assert await addresses.locator("li").count() == 1
    await page.get_by_label("Country code").fill("US")
    await page.get_by_role("button", name="Save address").click()
    await addresses.get_by_text("1 Congress Ave, 78701 Austin, TX").wait_for()
    assert await country_error.inner_text() == ""
    assert await addresses.locator("li").count() == 2
    assert await addresses.locator("li").first.get_by_text("default", exact=True).count() == 1  # default first
    assert len((await rest(live, "GET", "/me/addresses", token))["items"]) == 2
    # the new one becomes the default: listed first with the badge
    await addresses.get_by_role("button", name="Make Cy Friend, 1 Congress Ave the default").click()
    await page.get_by_text("Cy Friend, 1 Congress Ave is now your default address.").wait_for()
    assert await addresses.locator("li").first.get_by_text("1 Congress Ave, 78701 Austin, TX").count() == 1
    assert await addresses.locator("li").first.get_by_text("default", exact=True).count() == 1
    listed = (await rest(live, "GET", "/me/addresses", token))["items"]
    assert [(a["line1"], a["is_default"]) for a in listed] == [("1 Congress Ave", True), ("5 Broadway", False)]
    await addresses.get_by_role("button", name="Delete the address Cy Friend, 1 Congress Ave").click()
    await page.get_by_text("Address deleted.").wait_for()
    assert await addresses.locator("li").count() == 1
    assert len((await rest(live, "GET", "/me/addresses", token))["items"]) == 1

    # wishlist: remove the item
    await page.get_by_role("link", name="Wishlist").click()
    wish = page.get_by_role("list", name="Your wishlist")
    await wish.get_by_text("Scarf web-acct-ann", exact=True).wait_for()
    await wish.get_by_role("button", name="Remove Scarf web-acct-ann from the wishlist").click()
    await page.get_by_text("Your wishlist is empty.").wait_for()
    assert (await rest(live, "GET", "/me/wishlist", token))["items"] == []

    # follows: unfollow the demo seller
    await page.get_by_role("link", name="Following").click()
    follows = page.get_by_role("list", name="Sellers you follow")
    await follows.locator("li").first.wait_for()
    await follows.get_by_role("button", name="Unfollow").first.click()
    await page.get_by_text("You follow no seller.").wait_for()
    assert (await rest(live, "GET", "/me/follows", token))["items"] == []

    # the name, with a per-field error first
    await page.get_by_label("Name").fill("")
    await page.get_by_role("button", name="Save name").click()
    await page.locator("#profile-name-error").filter(has_text="at least 1").wait_for()
    await page.get_by_label("Name").fill("Ann Account")
    await page.get_by_role("button", name="Save name").click()
    await page.get_by_text("Name saved.").wait_for()
    assert (await rest(live, "GET", "/me", token))["name"] == "Ann Account"
    assert errors == [], errors


async def test_notifications_live_and_read_and_email_preferences(live, browser):
    base = live.base
    user_id, token = await live.user("web-acct-bea")
    await notice(live, user_id, "order.shipped", "1001")
    await notice(live, user_id, "order.delivered", "1002")
    await until(lambda: _unread(live, token, 2), 10, what="two unread notifications")
    page = await page_as(browser, base, user_id, "web-acct-bea", token)
    errors = watch_errors(page)
    await page.goto(f"{base}account/notifications")
    inbox = page.get_by_role("list", name="Your notifications")
    await inbox.get_by_role("link", name="Order 1002 was delivered").wait_for()
    assert await inbox.locator("li").count() == 2
    badge = page.locator("#unread-badge")
    assert await badge.inner_text() == "2 unread"
    assert (await inbox.get_by_role("link", name="Order 1001 is on its way").get_attribute("href")).startswith(
        "/account/orders/")

    # one arrives while the page is open: it shows at the top, the count moves, no reload
    await page.evaluate("window.__sameDocument = true")
    await notice(live, user_id, "order.canceled", "1003")
    await inbox.locator("li").first.get_by_role("link", name="Order 1003 was canceled").wait_for(timeout=10000)
    await page.get_by_role("status").filter(has_text="3 unread").wait_for()
    assert await page.evaluate("window.__sameDocument") is True
    assert await badge.inner_text() == "3 unread"
    assert await page.locator("#live-state").inner_text() == ""

    # mark one read, then the rest
    await inbox.get_by_role("button", name="Mark “Order 1003 was canceled” as read").click()
    await page.get_by_role("status").filter(has_text="2 unread").wait_for()
    assert await _unread(live, token, 2)
    await page.get_by_label("Unread only").check()
    await until(lambda: _count(inbox, 2), 5, what="the unread-only list")
    await page.get_by_role("button", name="Mark all as read").click()
    await page.get_by_role("status").filter(has_text="All read").wait_for()
    assert await badge.is_hidden()
    assert await _unread(live, token, 0)
    await page.get_by_text("No notifications.").wait_for()

    # email preferences: an optional kind off; a transactional one locked with why
    await page.get_by_role("link", name="Email preferences").click()
    shipped = page.get_by_label("Order shipped: email")
    await shipped.wait_for()
    assert await shipped.is_disabled() and await shipped.is_checked()
    assert "Always sent" in await page.locator("tr[data-kind='order.shipped']").inner_text()
    live_now = page.get_by_label("A seller you follow is live: email")
    assert await live_now.is_checked()
    await live_now.uncheck()
    await page.get_by_role("button", name="Save preferences").click()
    await page.get_by_text("Preferences saved").wait_for()
    prefs = {p["kind"]: p for p in (await rest(live, "GET", "/me/notification-preferences", token))["items"]}
    assert prefs["follow.live_now"]["email"] is False and prefs["follow.live_now"]["push"] is True
    assert prefs["follow.reminder"]["email"] is True
    await page.reload()
    await page.get_by_label("A seller you follow is live: email").wait_for()
    assert not await page.get_by_label("A seller you follow is live: email").is_checked()
    assert errors == [], errors


async def _unread(live, token, n: int) -> bool:
    return (await rest(live, "GET", "/me/notifications?limit=1", token))["unread"] == n


async def _loaded(page) -> bool:
    return await page.locator("#panel-status").inner_text() == ""


async def _count(locator, n: int) -> bool:
    return await locator.locator("li").count() == n


async def test_360px_keyboard_and_signed_out(live, browser):
    base = live.base
    user_id, token, things = await buyer_with_things(live, "web-acct-cy")
    await notice(live, user_id, "order.shipped", "2001")
    page = await page_as(browser, base, user_id, "web-acct-cy", token, viewport={"width": 360, "height": 740})
    errors = watch_errors(page)
    for section in ("orders", "returns", "addresses", "wishlist", "follows", "notifications", "preferences"):
        await page.goto(f"{base}account/{section}")
        await until(lambda: _loaded(page), 10, what=f"/account/{section} loaded")
        assert await page.evaluate(NO_SCROLL), f"/account/{section} scrolls sideways at 360 px"
        assert await page.locator("#panel-error").inner_text() == "", section
        assert "null" not in await page.locator("#panel-body").inner_text(), section
    # Orders pages by cursor: 21 orders are 20, then "Load more" adds the oldest
    # (a checkout makes one order per seller: 5 checkouts of 4 sellers' items stay under the checkout rate limit)
    products = []
    for i in range(4):
        await live.user(f"web-acct-shop{i}", "seller")
        products.append(await live.product(f"web-acct-shop{i}", title=f"Socks {i}", stock=5))
    for _ in range(5):
        for p in products:
            await rest(live, "POST", "/me/cart/items", token, {"variant_id": p["variant_id"], "qty": 1})
        out = await rest(live, "POST", "/checkout", token, {"address": ADDRESS, "provider": "sandbox"},
                         **{"Idempotency-Key": uuid.uuid4().hex})
        assert len(out["orders"]) == 4
    await page.goto(f"{base}account/orders")
    orders = page.get_by_role("list", name="Your orders")
    await until(lambda: _count(orders, 20), 10, what="the first page of orders")
    assert await orders.get_by_role("link", name=f"Order {things['order']['number']}").count() == 0
    await page.get_by_role("button", name="Load more").click()
    await orders.get_by_role("link", name=f"Order {things['order']['number']}").wait_for()
    assert await orders.locator("li").count() == 21
    assert await page.get_by_role("button", name="Load more").is_hidden()
    assert await page.evaluate(NO_SCROLL)

    # the tabs by keyboard: focus the current one, Tab to the next, Enter follows it
    await page.goto(f"{base}account/orders")
    tabs = page.get_by_role("navigation", name="Account sections")
    await tabs.get_by_role("link", name="Orders").focus()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}account/returns")
    assert await tabs.get_by_role("link", name="Returns").get_attribute("aria-current") == "page"
    # an old notification link /account/orders/<id> leads to the order's page
    resp = await live.client.get(f"/account/orders/{things['order']['id']}", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"/orders/{things['order']['id']}"
    assert errors == [], errors

    anon = await (await browser.new_context()).new_page()
    await anon.goto(f"{base}account/wishlist")
    await anon.wait_for_url(f"{base}signin?next=%2Faccount%2Fwishlist")


async def test_a_delivered_order_is_returned_from_the_orders_and_withdrawn_in_returns(live, browser):
    base = live.base
    user_id, token, things = await buyer_with_things(live, "web-acct-dee")
    order = things["order"]
    async with live.services.db.tx(SYSTEM) as conn:  # setup: the parcel arrived (the shipping flow has its tests)
        await conn.execute("UPDATE orders SET status = 'delivered' WHERE id = $1::uuid", order["id"])
        await conn.execute("INSERT INTO order_status_history (order_id, from_status, to_status, actor_kind) "
                           "VALUES ($1::uuid, 'pending_payment', 'delivered', 'system')", order["id"])
    page = await page_as(browser, base, user_id, "web-acct-dee", token)
    errors = watch_errors(page)
    await page.goto(f"{base}account/orders")
    await page.get_by_role("button", name=f"Return items of order {order['number']}").click()
    form = page.get_by_role("form", name=f"Return items of order {order['number']}")
    await form.get_by_role("button", name="Send the return request").click()
    await form.get_by_text("Choose at least one item to return.").wait_for()  # nothing chosen: said, nothing sent
    await form.get_by_label("how many to return").fill("1")
    await form.get_by_label("Reason").select_option("changed_mind")
    await form.get_by_role("button", name="Send the return request").click()
    await page.get_by_text("Return requested").wait_for()
    (ret,) = (await rest(live, "GET", "/me/returns", token))["items"]
    assert (ret["status"], ret["reason"], ret["items"][0]["quantity"]) == ("requested", "changed_mind", 1)

    await page.get_by_role("link", name="see it in Returns").click()
    returns = page.get_by_role("list", name="Your returns")
    await returns.locator("[data-status='requested']").wait_for()
    await returns.get_by_role("button", name=f"Withdraw the return of order {order['number']}").click()
    await returns.locator("[data-status='canceled']").wait_for()
    assert (await rest(live, "GET", f"/me/returns/{ret['id']}", token))["status"] == "canceled"
    assert errors == [], errors


async def test_the_inbox_says_when_live_updates_stop(live, browser):
    user_id, token = await live.user("web-acct-eve")
    page = await page_as(browser, live.base, user_id, "web-acct-eve", token)
    await page.goto(f"{live.base}account/notifications")
    await page.get_by_text("No notifications.").wait_for()
    await until(lambda: _socket_up(page), 10, what="the inbox's socket")
    status, _ = await live.api("POST", "/auth/sign-out", token)  # every token void: the server cuts the socket
    assert status == 204
    await page.get_by_text("Live updates are paused").wait_for(timeout=10000)


async def _socket_up(page) -> bool:
    return await page.locator("#live-state").inner_text() == "" and await page.evaluate(
        "performance.getEntriesByType('resource').some(e => e.name.includes('/socket.io/'))")
