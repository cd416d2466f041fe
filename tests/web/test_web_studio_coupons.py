"""A coupon's window and number of uses edited in place on the studio's coupons page, in a real Chromium at a phone's
360 px, in a seller's time zone 5 h 30 min from UTC (Asia/Kolkata): the form shows the stored times in local time and
sends them with that offset; a change cancelled (Escape, Cancel) leaves the coupon as it was; a window ending before
it starts is refused on its field, and so is a limit the API refuses (its 422 details); a saved window and limit are
listed and read back from the API, then cleared (no dates, no limit). The page passes the accessibility scan."""
from __future__ import annotations

import json
from datetime import datetime

from tests.web.a11y import assert_accessible
from tests.web.helpers import watch_errors
from tests.web.test_web_account import rest
from tests.web.test_web_studio import PHONE, no_sideways_scroll

ZONE = "Asia/Kolkata"  # UTC+05:30 all year (no daylight saving): every local time below is 5 h 30 min ahead


async def seller_page(browser, live, token: str, user: dict):
    """signed_in_page (test_web_studio.py) in the seller's time zone and an en-US locale (the dates as listed)."""
    context = await browser.new_context(viewport=PHONE, timezone_id=ZONE, locale="en-US")
    page = await context.new_page()
    await page.goto(f"{live.base}signin")
    await page.evaluate("s => localStorage.setItem('live.session', s)", json.dumps({"token": token, "user": user}))
    return page


async def stored(live, token: str, code: str) -> dict:
    [coupon] = [c for c in (await rest(live, "GET", "/me/coupons", token))["items"] if c["code"] == code]
    return coupon


def utc(text: str | None) -> str | None:
    return None if text is None else datetime.fromisoformat(text).isoformat()


async def test_coupon_window_and_limit_edited(live, browser):
    seller_id, token = await live.user("demo-seller", "seller")
    made = await rest(live, "POST", "/coupons", token, {"code": "EDITME", "kind": "percent", "value": 15,
                                                        "usage_limit": 10, "ends_at": "2030-06-01T12:00:00Z"})
    page = await seller_page(browser, live, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(page, "status of 422")  # the limit the API refuses, shown on its field
    patches: list[dict] = []
    page.on("request", lambda r: patches.append(r.post_data_json) if r.method == "PATCH" else None)
    await page.goto(f"{live.base}studio/coupons")
    row = page.locator("#coupons li[data-code='EDITME']")
    await row.get_by_text("15 % off · used 0 of 10 · until Jun 1, 2030, 5:30 PM").wait_for()
    edit = row.get_by_role("button", name="Edit EDITME")
    form = row.get_by_role("form", name="Edit EDITME")
    starts = form.get_by_label("Starts (empty: no start date)")
    ends = form.get_by_label("Ends (empty: no end date)")
    limit = form.get_by_label("Number of uses (empty: no limit)")
    save = form.get_by_role("button", name="Save")
    is_focused = "el => el === document.activeElement"

    # opened in place with the stored values, in local time; Escape cancels, focus back on Edit
    await edit.click()
    assert await edit.get_attribute("aria-expanded") == "true"
    assert await starts.evaluate(is_focused)
    assert (await starts.input_value(), await ends.input_value(), await limit.input_value()) == (
        "", "2030-06-01T17:30", "10")
    await no_sideways_scroll(page)
    await assert_accessible(page)
    await limit.fill("3")
    await limit.press("Escape")
    await form.wait_for(state="detached")
    assert await edit.evaluate(is_focused) and await edit.get_attribute("aria-expanded") == "false"
    # Cancel: the form opens again with the stored values (not what was typed), and closes unchanged
    await edit.click()
    assert await limit.input_value() == "10"
    await ends.fill("2031-01-01T09:00")
    await form.get_by_role("button", name="Cancel").click()
    await form.wait_for(state="detached")
    assert await edit.evaluate(is_focused)
    assert patches == []
    kept = await stored(live, token, "EDITME")
    assert (kept["usage_limit"], utc(kept["ends_at"])) == (10, utc(made["ends_at"]))

    # a start after the end is refused on its field, by the page (nothing sent)
    await edit.click()
    await starts.fill("2030-07-01T09:00")
    await save.click()
    await form.get_by_text("The start must come before the end (Jun 1, 2030, 5:30 PM).").wait_for()
    assert await starts.get_attribute("aria-invalid") == "true" and await starts.evaluate(is_focused)
    await ends.fill("2030-06-30T09:00")  # both changed: the end is the one said to be wrong
    await save.click()
    await form.get_by_text("The end must come after the start.").wait_for()
    assert await ends.get_attribute("aria-invalid") == "true" and await starts.get_attribute("aria-invalid") is None
    assert patches == []
    # a limit over the API's 1,000,000,000: the API's 422 details on the field
    await ends.fill("2030-09-30T18:00")
    await limit.fill("2000000000")
    await save.click()
    await page.locator(f"#ec-{made['id']}-limit-error:not(:empty)").wait_for()
    assert await limit.get_attribute("aria-invalid") == "true" and await limit.evaluate(is_focused)
    assert await ends.get_attribute("aria-invalid") is None
    assert len(patches) == 1
    await no_sideways_scroll(page)
    await assert_accessible(page)

    # saved: sent with the seller's offset, the row redrawn with the answer, focus on its Edit button
    await starts.fill("2030-03-01T10:00")
    await limit.fill("25")
    await save.click()
    await page.get_by_role("status").get_by_text("EDITME is saved.").wait_for()
    await form.wait_for(state="detached")
    assert patches[-1] == {"starts_at": "2030-03-01T10:00:00+05:30", "ends_at": "2030-09-30T18:00:00+05:30",
                           "usage_limit": 25}
    await row.get_by_text("15 % off · used 0 of 25 · from Mar 1, 2030, 10:00 AM · until Sep 30, 2030, 6:00 PM")\
        .wait_for()
    assert await edit.evaluate(is_focused)
    now = await stored(live, token, "EDITME")
    assert (utc(now["starts_at"]), utc(now["ends_at"]), now["usage_limit"]) == (
        "2030-03-01T04:30:00+00:00", "2030-09-30T12:30:00+00:00", 25)

    # cleared: no start, no limit (null); the end, untouched, is not sent and stays
    await edit.click()
    assert (await starts.input_value(), await limit.input_value()) == ("2030-03-01T10:00", "25")
    await starts.fill("")
    await limit.fill("")
    await save.click()
    await row.get_by_text("15 % off · used 0 times (no limit) · until Sep 30, 2030, 6:00 PM").wait_for()
    assert patches[-1] == {"starts_at": None, "usage_limit": None}
    now = await stored(live, token, "EDITME")
    assert (now["starts_at"], utc(now["ends_at"]), now["usage_limit"]) == (None, "2030-09-30T12:30:00+00:00", None)
    assert await edit.evaluate(is_focused)
    await no_sideways_scroll(page)
    await assert_accessible(page)
    assert errors == [], errors
