"""The studio's returns and coupons pages at a phone's 360 px, in a real Chromium.

Returns: two buyers ask to return delivered orders; the seller approves one (the sandbox carrier's return label
shows with its tracking number, pushed by the seller's socket, no reload; the pushes redrawing the row keep the
keyboard's place, and what is typed in an open form), marks it received (a refund over what is left refused on its
field, then none, the unit back in stock), and refuses the other (an empty reason is refused on its field first;
the buyer is told the reason); the "Refused" filter lists it, and a slow answer to an earlier filter does not
replace a later one's.
Coupons: the seed's DEMO10 listed; a code the API refuses (a space) is marked on its field, then a good one is
created and listed (its minimum subtotal as entered, not in minor units); a buyer's checkout uses it (its use
counted on the page); it is disabled. Both pages pass the accessibility scan."""
from __future__ import annotations

import asyncio
import uuid

from live.auth.principal import SYSTEM
from tests.shipping.labels_harness import US_BUYER
from tests.web.a11y import assert_accessible
from tests.web.helpers import watch_errors
from tests.web.test_web_account import buyer_with_things, rest
from tests.web.test_web_studio import no_sideways_scroll, signed_in_page


async def delivered_return(live, name: str) -> tuple[str, dict]:
    """A buyer's order of a demo-seller product, delivered, and a return asked of its first line: (token, return)."""
    _, token, things = await buyer_with_things(live, name)
    order = things["order"]
    async with live.services.db.tx(SYSTEM) as conn:  # setup: the parcel arrived (the shipping flow has its tests)
        await conn.execute("UPDATE orders SET status = 'delivered' WHERE id = $1::uuid", order["id"])
        await conn.execute("INSERT INTO order_status_history (order_id, from_status, to_status, actor_kind) "
                           "VALUES ($1::uuid, 'pending_payment', 'delivered', 'system')", order["id"])
    ret = await rest(live, "POST", f"/me/orders/{order['id']}/returns", token, {
        "reason": "damaged", "note": "The strap was torn",
        "items": [{"order_item_id": order["items"][0]["id"], "quantity": 1}]})
    return token, ret


async def test_returns_approved_and_refused(live, browser):
    base = live.base
    _, first = await delivered_return(live, "web-ret-ann")
    other_token, second = await delivered_return(live, "web-ret-bob")
    seller_id, token = await live.user("demo-seller", "seller")
    page = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(page, "status of 422")  # the refund refused on its field
    await page.goto(f"{base}studio")
    await page.get_by_role("link", name="Returns").click()
    await page.wait_for_url(f"{base}studio/returns")
    returns = page.get_by_role("list", name="Your shop's returns")
    one = returns.locator(f"[data-return='{first['id']}']")
    two = returns.locator(f"[data-return='{second['id']}']")
    await one.get_by_text("The strap was torn").wait_for()
    assert await returns.locator("[data-status='requested']").count() == 2
    await no_sideways_scroll(page)
    await assert_accessible(page)

    await one.get_by_role("button", name=f"Approve the return of order {first['order_number']}").click()
    one = returns.locator(f"[data-return='{first['id']}'][data-status='approved']")
    await one.wait_for()
    await one.get_by_text("Return label:").wait_for(timeout=15000)  # bought by the job, pushed to the socket
    label = (await rest(live, "GET", f"/seller/returns/{first['id']}", token))["label"]
    assert label["tracking_number"] and label["tracking_number"] in await one.inner_text()
    # the row was redrawn by the pushes (the answer's echo, the label bought): the keyboard's place is its heading
    assert await one.locator("h2").evaluate("h => h === document.activeElement")

    # back at the shop: a refund over what was paid (nothing: the order was never paid) is refused on its field
    await one.get_by_role("button", name=f"Mark the return of order {first['order_number']} received").click()
    receive = one.get_by_role("form", name=f"Receive the return of order {first['order_number']}")
    refund = receive.get_by_label("Refund (USD)")
    await refund.fill("5")
    # a push about the return while the form is being filled in: redrawn, the form stays open with what was typed
    await one.evaluate("li => { li.dataset.mark = 'before'; }")
    await live.services.commerce.shipping.returns.publish(first["id"])
    await returns.locator(f"[data-return='{first['id']}']:not([data-mark])").wait_for()
    assert await refund.input_value() == "5"
    assert await refund.evaluate("i => i === document.activeElement")
    await receive.get_by_role("button", name="Confirm received").click()
    await one.locator(f"#refund-{first['id']}-error:not(:empty)").wait_for()
    assert await refund.get_attribute("aria-invalid") == "true"
    await refund.fill("")
    await receive.get_by_role("button", name="Confirm received").click()
    received = returns.locator(f"[data-return='{first['id']}'][data-status='received']")
    await received.get_by_text("Received, no refund").wait_for()
    await received.get_by_text("1 back in stock").wait_for()

    await two.get_by_role("button", name=f"Refuse the return of order {second['order_number']}").click()
    form = two.get_by_role("form", name=f"Refuse the return of order {second['order_number']}")
    await form.get_by_role("button", name="Confirm refusal").click()
    reason = form.get_by_label("Why (told to the buyer)")
    await form.get_by_text("Say why: the buyer is told.").wait_for()
    assert await reason.get_attribute("aria-invalid") == "true"
    assert await reason.evaluate("el => el === document.activeElement")
    await reason.fill("Worn outside: not returnable")
    await form.get_by_role("button", name="Confirm refusal").click()
    await returns.locator(f"[data-return='{second['id']}'][data-status='refused']").get_by_text(
        "Refused: Worn outside: not returnable").wait_for()
    told = await rest(live, "GET", f"/me/returns/{second['id']}", other_token)
    assert (told["status"], told["decision_note"]) == ("refused", "Worn outside: not returnable")

    await page.get_by_label("Show").select_option("refused")
    await returns.locator("[data-status='refused']").wait_for()
    await returns.locator("[data-status='received']").wait_for(state="detached")
    assert await returns.locator("li[data-return]").count() == 1

    # a filter's slow answer arriving after a later filter's is dropped: the two filters' rows never mix
    held, release = asyncio.Event(), asyncio.Event()

    async def hold(route):
        held.set()
        await release.wait()
        await route.continue_()
    await page.route("**/api/v1/seller/returns?*status=received*", hold)
    await page.get_by_label("Show").select_option("received")
    await asyncio.wait_for(held.wait(), 10)
    await page.get_by_label("Show").select_option("")
    await returns.locator("li[data-return]").nth(1).wait_for()
    async with page.expect_response("**/api/v1/seller/returns?*status=received*") as late:
        release.set()
    await (await late.value).finished()
    await page.evaluate("() => new Promise((done) => setTimeout(done, 200))")  # the page has read the late answer
    assert await returns.locator("li[data-return]").count() == 2
    await page.unroute("**/api/v1/seller/returns?*status=received*", hold)
    await no_sideways_scroll(page)
    await assert_accessible(page)
    assert errors == [], errors


async def test_coupons_created_used_and_disabled(live, browser):
    base = live.base
    seller_id, token = await live.user("demo-seller", "seller")
    page = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(page, "status of 422")  # the refused code, shown on its field
    await page.goto(f"{base}studio/coupons")
    await page.locator("#coupons li[data-code='DEMO10']").get_by_text("10 % off · used 0 of 1000").wait_for()
    await no_sideways_scroll(page)

    form = page.get_by_role("form", name="New coupon")
    code = form.get_by_label("Code")
    await code.fill("SPRING 10")
    await form.get_by_label("Percent off (1-100)").fill("10")
    await form.get_by_label("Number of uses (optional: no limit)").fill("5")
    await form.get_by_role("button", name="Create the coupon").click()
    await page.locator("#nc-code-error:not(:empty)").wait_for()
    assert await code.get_attribute("aria-invalid") == "true"
    assert await page.locator("#nc-error").inner_text() == ""
    await assert_accessible(page)

    await code.fill("SPRING10")
    # a percent coupon has no currency: its minimum is an amount in the cart's, entered and shown as such
    await form.get_by_label("Minimum order subtotal, in the cart’s currency (optional)").fill("1")
    await form.get_by_role("button", name="Create the coupon").click()
    await page.get_by_role("status").get_by_text("SPRING10 is created.").wait_for()
    assert await code.get_attribute("aria-invalid") is None
    row = page.locator("#coupons li[data-code='SPRING10']")
    await row.get_by_text("10 % off · orders from 1.00 (in the cart’s currency) · used 0 of 5").wait_for()
    await form.get_by_label("An amount off").check()
    await form.get_by_label("Minimum order subtotal in USD (optional)").wait_for()
    await form.get_by_label("A percentage off").check()

    # a buyer uses it at checkout (the API, as the checkout page would)
    viewer = await live.viewer("web-coupon-buyer")
    _, buyer_token = await live.user("web-coupon-buyer")  # the viewer's user, another token
    variant = viewer.joined["spotlight"]["variants"][0]
    assert (await viewer.call("cart:add", {"variant_id": variant["id"], "qty": 1, "stream_id": "demo"}))["ok"]
    out = await rest(live, "POST", "/checkout", buyer_token, {"address": US_BUYER, "provider": "sandbox",
                                                              "coupon_code": "spring10"},
                     **{"Idempotency-Key": uuid.uuid4().hex})
    [order] = out["orders"]
    assert order["coupon_code"] == "SPRING10" and order["discount_minor"] == order["subtotal_minor"] // 10
    await page.reload()
    await row.get_by_text("used 1 of 5").wait_for()

    await row.get_by_role("button", name="Disable SPRING10").click()
    await page.locator("#coupons li[data-code='SPRING10'][data-active='false']").get_by_text("Disabled").wait_for()
    [coupon] = [c for c in (await rest(live, "GET", "/me/coupons", token))["items"] if c["code"] == "SPRING10"]
    assert coupon["active"] is False
    assert await page.evaluate("document.activeElement.textContent") == "Enable"
    await no_sideways_scroll(page)
    await assert_accessible(page)
    assert errors == [], errors
