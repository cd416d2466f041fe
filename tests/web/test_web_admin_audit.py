"""The admin's audit-log viewer (/admin/audit) in a real Chromium, with the real server and database, at 360 px: an
admin's changes to a user (role, suspension with a reason holding markup) are listed newest first with who, what,
on which entity and what changed (as text, never as HTML); filtered by action (exact, then a prefix) and by actor
(a row's "Only changes by ..."); 51 entries in two pages ("Load more" with the cursor); a filter the API refuses is
said under its field; an empty result says so (an unknown entity id, a "From" after everything); the accessibility
scan passes; a customer is told the page is for admins only."""
from __future__ import annotations

import uuid

from db import audit
from live.auth.principal import SYSTEM
from tests.web.a11y import assert_accessible
from tests.web.helpers import page_as, watch_errors
from tests.web.test_web_admin import api, looks_right


async def test_admin_audit_log_at_360px(live, browser):
    base = live.base
    admin_id, admin_token = await live.user("web-aud-root", "admin")
    cleo_id, _ = await live.user("web-aud-cleo")
    cust_id, cust_token = await live.user("web-aud-cust")
    await api(live, "PUT", f"/admin/users/{cleo_id}/role", admin_token, {"role": "seller"})
    await api(live, "POST", f"/admin/users/{cleo_id}/suspend", admin_token, {"reason": "<b>chargeback</b>"})

    page = await page_as(browser, base, admin_id, "web-aud-root", admin_token, "admin",
                         viewport={"width": 360, "height": 740})
    errors = watch_errors(page, "status of 400")
    await page.goto(f"{base}admin/audit")
    tabs = page.get_by_role("navigation", name="Admin sections")
    assert await tabs.get_by_role("link", name="Audit log").get_attribute("aria-current") == "page"
    log = page.get_by_role("list", name="Audit log")
    rows = log.locator("li")
    # newest first: the suspension, then the role change, each with who, the entity and what changed
    await rows.first.get_by_text("user.suspend", exact=True).wait_for()
    first, second = rows.nth(0), rows.nth(1)
    assert await first.get_by_text(f"By web-aud-root, on user {cleo_id}").count() == 1
    said = "suspended: false → true; reason: none → <b>chargeback</b>"
    assert await first.get_by_text(said).count() == 1 and await log.locator("b").count() == 0  # text, not markup
    assert await second.locator(".audit-action").inner_text() == "user.role"
    assert await second.get_by_text("role: customer → seller").count() == 1
    await second.get_by_text("Data", exact=True).click()
    assert '"after":{"role":"seller"}' in await second.locator("pre").inner_text()
    await looks_right(page)

    # by action, applied on Enter: only user.role rows
    await page.get_by_label("Action").fill("user.role")
    await page.get_by_label("Action").press("Enter")
    await log.locator("li", has_text="user.suspend").first.wait_for(state="detached")
    await rows.first.wait_for()
    actions = await log.locator(".audit-action").all_inner_texts()
    assert actions and set(actions) == {"user.role"}, actions
    # a prefix, on one entity: both changes to Cleo
    await page.get_by_label("Action").fill("user.")
    await page.get_by_label("Entity id").fill(cleo_id)
    await page.get_by_role("button", name="Show").click()
    await log.locator("li", has_text="user.suspend").wait_for()
    assert await log.locator(".audit-action").all_inner_texts() == ["user.suspend", "user.role"]
    # "Load more" with the API's cursor: the 51st and oldest, then no more
    async with live.services.db.tx(SYSTEM) as conn:  # a page and one more (50 a page)
        for i in range(51):
            await audit.record(conn, None, "web_audit.bulk", "thing", i, after={"n": i})
    await page.get_by_label("Action").fill("web_audit.bulk")
    await page.get_by_label("Entity id").fill("")
    await page.get_by_role("button", name="Show").click()
    more = page.get_by_role("button", name="Load more")
    await more.wait_for()
    assert await rows.count() == 50 and await rows.first.get_by_text("By the system, on thing 50").count() == 1
    await more.click()
    await log.get_by_text("By the system, on thing 0", exact=True).wait_for()
    assert await rows.count() == 51 and not await more.is_visible()
    # a row's "Only changes by ..." filters by its actor
    await page.get_by_label("Action").fill("user.suspend")
    await page.get_by_label("Action").press("Enter")
    await log.locator("li", has_text="web_audit.bulk").first.wait_for(state="detached")
    await first.get_by_role("button", name="Only changes by web-aud-root").click()
    assert await page.get_by_label("Actor (user id)").input_value() == admin_id
    await page.get_by_label("Action").fill("")  # every action, by that actor only: not the system's 51
    await page.get_by_role("button", name="Show").click()
    await log.locator("li", has_text="user.role").wait_for()
    by = await log.locator(".meta").all_inner_texts()
    assert by and all(t.startswith("By web-aud-root,") for t in by), by

    # a filter the API refuses is said under its field; nothing matching says so
    await page.get_by_label("Actor (user id)").fill("not-a-user")
    await page.get_by_role("button", name="Show").click()
    await page.get_by_text("Actor (user id): must be a user's id").wait_for()
    assert await page.get_by_label("Actor (user id)").get_attribute("aria-invalid") == "true"
    await page.get_by_role("alert").filter(has_text="A filter was refused").wait_for()
    assert await rows.count() == 0
    await page.get_by_label("Actor (user id)").fill("")
    await page.get_by_label("Entity id").fill(str(uuid.uuid4()))
    await page.get_by_role("button", name="Show").click()
    await page.get_by_text("No change matches these filters.").wait_for()
    await page.get_by_label("Entity id").fill("")
    await page.get_by_label("From").fill("2099-01-01T00:00")  # after everything: none either
    await page.get_by_role("button", name="Show").click()
    await page.get_by_text("No change matches these filters.").wait_for()
    assert await rows.count() == 0
    assert await page.get_by_label("Actor (user id)").get_attribute("aria-invalid") is None
    await looks_right(page)
    assert errors == [], errors  # the refused filter's 400 was expected

    # a customer is told the page is for admins only
    other = await page_as(browser, base, cust_id, "web-aud-cust", cust_token, "customer")
    await other.goto(f"{base}admin/audit")
    await other.get_by_role("heading", name="Admins only").wait_for()
    assert not await other.locator("#desk").is_visible()
    await assert_accessible(other)
