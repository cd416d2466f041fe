"""The account's "Become a seller" section (/account/seller) in a real Chromium with the real server and database:
a customer applies through the form (a per-field error first), sees the application pending, and after an admin
approves it (REST) sees the studio linked and the session's user a seller, on the open page without a reload (the
decision's notification on the user's socket); another customer, refused with a note, reads the note and may apply
again, and sees that refusal arrive too; at 360 px nothing scrolls sideways; the accessibility scan at each state."""
from __future__ import annotations

import json

from tests.web.a11y import assert_accessible
from tests.web.helpers import page_as, watch_errors
from tests.web.test_web_account import NO_SCROLL, rest


async def test_a_customer_applies_is_approved_and_another_is_refused(live, browser):
    base = live.base
    _, admin = await live.user("web-sell-admin", "admin")
    cora_id, cora = await live.user("web-sell-cora")
    page = await page_as(browser, base, cora_id, "web-sell-cora", cora)
    errors = watch_errors(page, "status of 404", "status of 422")  # no application yet; the short name below
    await page.goto(f"{base}account/seller")
    form = page.get_by_role("form", name="Apply to sell")
    await form.wait_for()
    await assert_accessible(page)

    name = page.get_by_label("Shop name (2 to 80 characters)")
    await name.fill("C")
    await page.get_by_role("button", name="Send my application").click()
    error = page.locator("#seller-shop_name-error")
    await error.filter(has_text="2 characters").wait_for()
    assert await name.get_attribute("aria-invalid") == "true"
    await name.fill("Cora's candles")
    await page.get_by_label("About your shop (optional)").fill("Beeswax candles,\npoured by hand.")
    await page.get_by_role("button", name="Send my application").click()
    await page.get_by_text("Application sent.").wait_for()
    card = page.locator(".seller-application[data-status='pending']")
    assert "Cora's candles" in await card.inner_text() and "poured by hand" in await card.inner_text()
    mine = await rest(live, "GET", "/me/seller-application", cora)
    assert mine["status"] == "pending" and mine["about"] == "Beeswax candles,\npoured by hand."

    await page.get_by_role("button", name="Check for a decision").click()  # read again by hand: still pending
    await page.get_by_role("button", name="Check for a decision", disabled=False).wait_for()  # the redrawn one
    assert await page.locator(".seller-application[data-status='pending']").count() == 1

    # the admin approves: the decision's notification reaches the open page, which shows it without a click
    await rest(live, "POST", f"/admin/seller-applications/{mine['id']}/approve", admin, {"note": "Welcome!"})
    await page.get_by_text("Your application is approved: Cora's candles is open.").wait_for(timeout=15000)
    await page.get_by_role("status").get_by_text("Your application has a decision.").wait_for()
    studio = page.get_by_role("link", name="Open your studio")
    assert await studio.get_attribute("href") == "/studio"
    assert "Welcome!" in await page.locator(".seller-application[data-status='approved']").inner_text()
    stored = json.loads(await page.evaluate("localStorage.getItem('live.session')"))
    assert stored["user"]["role"] == "seller" and stored["token"] == cora  # the session's user read again
    assert await page.get_by_role("form").count() == 0
    assert errors == [], errors

    # refused with a note, at 360 px: the note, and the form to apply again
    dan_id, dan = await live.user("web-sell-dan")
    sent = await rest(live, "POST", "/me/seller-application", dan, {"shop_name": "Dan's dice"})
    await rest(live, "POST", f"/admin/seller-applications/{sent['id']}/refuse", admin,
               {"note": "Tell us where the dice are made."})
    small = await page_as(browser, base, dan_id, "web-sell-dan", dan, viewport={"width": 360, "height": 740})
    small_errors = watch_errors(small)
    await small.goto(f"{base}account/seller")
    refused = small.locator(".seller-application[data-status='refused']")
    await refused.wait_for()
    assert "Tell us where the dice are made." in await refused.inner_text()
    await small.get_by_role("form", name="Apply again").wait_for()
    assert await small.evaluate(NO_SCROLL)
    await assert_accessible(small)
    await small.get_by_label("Shop name (2 to 80 characters)").fill("Dan's dice, made in Leeds")
    await small.get_by_role("button", name="Apply again").click()
    await small.get_by_text("Application sent.").wait_for()
    again = await rest(live, "GET", "/me/seller-application", dan)
    assert again["shop_name"] == "Dan's dice, made in Leeds" and again["status"] == "pending"
    await rest(live, "POST", f"/admin/seller-applications/{again['id']}/refuse", admin, {"note": "Not dice."})
    refused = small.locator(".seller-application[data-status='refused']")
    await refused.filter(has_text="Not dice.").wait_for(timeout=15000)  # shown by the notification, no reload
    await small.get_by_role("form", name="Apply again").wait_for()
    assert small_errors == [], small_errors
