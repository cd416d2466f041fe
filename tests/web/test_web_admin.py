"""The admin pages (/admin/<section>) in a real Chromium, with the real server and database: an admin changes a
user's role and suspends and unsuspends them (each confirmed first; a refused action, suspending themself, says why
and changes nothing), requeues and discards dead jobs, opens a contact message and marks it answered, all at
360 px without sideways scrolling; resolves a flagged payment, retries a failed refund and marks another refunded
by hand (a note is required: the API's per-field message); a customer is told the pages are for admins only;
signed out, /admin sends to sign-in and back. Every section passes the accessibility scan."""
from __future__ import annotations

import re
import uuid

from live.auth.principal import SYSTEM
from tests.helpers import dead_jobs
from tests.web.a11y import assert_accessible
from tests.web.helpers import page_as, watch_errors

ADDRESS = {"name": "Al Admin", "line1": "5 Broadway", "city": "New York", "state": "NY", "postal_code": "10001",
           "country": "US"}
NO_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


async def looks_right(page) -> None:
    """The accessibility scan, nothing scrolls sideways, and no missing value printed as "null"/"undefined"."""
    await assert_accessible(page)
    assert await page.evaluate(NO_SCROLL)
    text = await page.locator("#panel").inner_text()
    assert "null" not in text and "undefined" not in text, text


async def api(live, method: str, path: str, token: str, body=None, **headers) -> dict:
    resp = await live.client.request(method, f"/api/v1{path}", json=body,
                                     headers={"Authorization": f"Bearer {token}", **headers})
    assert resp.status < 300, (method, path, resp.status, await resp.text())
    return await resp.json() if resp.status != 204 else {}


async def test_admin_users_jobs_and_contact_at_360px(live, browser, dsn):
    base = live.base
    admin_id, admin_token = await live.user("web-adm-root", "admin")
    cleo_id, _ = await live.user("web-adm-cleo")
    ids = await dead_jobs(dsn, 2, "t.webadmin")
    sent = await live.services.contact.submit(
        name="Dora Asker", email="dora@example.com", subject="Where is my parcel?", message="Hello,\norder 12 is late.",
        website=None, ip="192.0.2.7", user_agent="test")
    page = await page_as(browser, base, admin_id, "web-adm-root", admin_token, "admin",
                         viewport={"width": 360, "height": 740})
    errors = watch_errors(page, "status of 409")

    # Users: the admin finds Cleo, makes her a seller (confirmed first)
    await page.goto(f"{base}admin")
    assert await page.get_by_role("link", name="Admin", exact=True).is_visible()  # the header's link, for admins
    tabs = page.get_by_role("navigation", name="Admin sections")
    await tabs.get_by_role("link", name="Jobs 2 dead").wait_for()  # what needs action, on its tab
    await page.get_by_label("Email or name").fill("web-adm-cleo")
    await page.get_by_label("Email or name").press("Enter")
    users = page.get_by_role("list", name="Users")
    row = users.locator(f"li[data-user='{cleo_id}']")
    await row.wait_for()
    assert await users.locator("li").count() == 1
    await row.get_by_label("Role of web-adm-cleo").select_option("seller")
    await row.get_by_role("button", name="Change role").click()
    await row.get_by_text("Make web-adm-cleo").wait_for()
    assert (await api(live, "GET", f"/admin/users/{cleo_id}", admin_token))["role"] == "customer"  # not yet
    await row.get_by_role("button", name="Confirm: make seller").click()
    await page.get_by_role("status").filter(has_text="web-adm-cleo is now a seller.").wait_for()
    assert (await api(live, "GET", f"/admin/users/{cleo_id}", admin_token))["role"] == "seller"
    assert await row.get_by_label("Role of web-adm-cleo").input_value() == "seller"
    await looks_right(page)
    # suspended with a reason, then the suspension lifted
    await row.get_by_role("button", name="Suspend").click()
    await row.get_by_label("Reason (optional, kept in the audit log)").fill("chargeback fraud")
    await row.get_by_role("button", name="Confirm: suspend").click()
    await row.get_by_text("Reason: chargeback fraud").wait_for()
    await row.get_by_text("suspended", exact=True).wait_for()
    fetched = await api(live, "GET", f"/admin/users/{cleo_id}", admin_token)
    assert (fetched["suspended"], fetched["suspended_reason"]) == (True, "chargeback fraud")
    await row.get_by_role("button", name="Unsuspend").click()
    await row.get_by_role("button", name="Confirm: unsuspend").click()
    await page.get_by_role("status").filter(has_text="web-adm-cleo is no longer suspended.").wait_for()
    assert not (await api(live, "GET", f"/admin/users/{cleo_id}", admin_token))["suspended"]
    # a refused action says why in its form, and nothing else changes
    await page.get_by_label("Email or name").fill("web-adm-root")
    await page.get_by_role("button", name="Show").click()
    me = users.locator(f"li[data-user='{admin_id}']")
    await me.wait_for()
    await me.get_by_role("button", name="Suspend").click()
    await me.get_by_role("button", name="Confirm: suspend").click()
    await me.get_by_role("alert").filter(has_text="you cannot suspend yourself").wait_for()
    assert await me.get_by_role("button", name="Confirm: suspend").is_enabled()
    assert await me.get_by_text("suspended", exact=True).count() == 0
    await me.get_by_role("button", name="Cancel").click()
    assert await me.get_by_role("form").count() == 0
    await me.get_by_role("button", name="Suspend").focus()  # by keyboard: Enter opens, Esc closes, focus back
    await page.keyboard.press("Enter")
    await me.get_by_label("Reason (optional, kept in the audit log)").wait_for()
    await page.keyboard.press("Escape")
    await me.get_by_role("form").wait_for(state="detached")
    assert await me.get_by_role("button", name="Suspend").evaluate("b => b === document.activeElement")
    assert await page.evaluate(NO_SCROLL)

    # Jobs: dead ones first, with their error and attempts; one requeued, one discarded
    await tabs.get_by_role("link", name="Jobs").click()
    jobs = page.get_by_role("list", name="Jobs")
    first = jobs.locator(f"li[data-job='{ids[0]}']")
    await first.get_by_text("Permanent: refused 0").wait_for()
    assert await first.get_by_text("1 failed attempt;").count() == 1
    assert await page.get_by_label("State").input_value() == "dead"
    await looks_right(page)
    await first.get_by_role("button", name=f"Requeue job {ids[0]} (t.webadmin)").click()
    await first.get_by_role("button", name="Confirm: requeue").click()
    await page.get_by_role("status").filter(has_text=f"The job {ids[0]} (t.webadmin) is queued again.").wait_for()
    listed = {j["id"]: j for j in (await api(live, "GET", "/admin/jobs?kind=t.webadmin", admin_token))["items"]}
    assert listed[ids[0]]["state"] != "dead" or listed[ids[0]]["attempts"] == 0
    second = jobs.locator(f"li[data-job='{ids[1]}']")
    await second.get_by_role("button", name=f"Discard job {ids[1]} (t.webadmin)").click()
    await second.get_by_role("button", name="Confirm: discard").click()
    await second.get_by_text(f"Job {ids[1]} (t.webadmin) was discarded.").wait_for()
    left = (await api(live, "GET", "/admin/jobs?kind=t.webadmin", admin_token))["items"]
    assert ids[1] not in [j["id"] for j in left]
    await tabs.get_by_role("link", name="Jobs", exact=True).wait_for()  # no dead job left: no count

    # Contact: the message, opened whole (it becomes read), then answered
    await tabs.get_by_role("link", name="Contact").click()
    messages = page.get_by_role("list", name="Contact messages")
    msg = messages.locator(f"li[data-message='{sent['id']}']")
    await msg.get_by_text("From Dora Asker <dora@example.com>").wait_for()
    assert await msg.get_by_text("unread").count() == 1
    await msg.get_by_role("button", name="Open “Where is my parcel?”").click()
    await msg.locator(".full").filter(has_text="order 12 is late.").wait_for()
    assert await msg.get_by_role("link", name="Reply to dora@example.com by email").count() == 1
    await msg.get_by_text("read", exact=True).wait_for()
    await looks_right(page)
    await msg.get_by_role("button", name="Mark “Where is my parcel?” answered").click()
    # the row's "Answered <when> by <admin>." line (not the button's "answered", which is there before the click)
    await msg.locator("p.muted", has_text=re.compile(r"^Answered .+ by web-adm-root\.$")).wait_for()
    await page.get_by_role("status").filter(has_text="is marked answered").wait_for()
    assert (await api(live, "GET", f"/admin/contact/{sent['id']}", admin_token))["status"] == "answered"
    await page.get_by_label("Show").select_option("answered")
    await messages.locator(f"li[data-message='{sent['id']}']").wait_for()
    assert await messages.get_by_role("button", name="Mark “Where is my parcel?” answered").count() == 0
    # the support mail's link opens the message on top of the list
    await page.goto(f"{base}admin/contact/{sent['id']}")
    linked = page.get_by_role("list", name="The message from the link")
    await linked.locator(".full").filter(has_text="order 12 is late.").wait_for()
    await linked.get_by_text("by web-adm-root.").wait_for()
    await looks_right(page)
    assert errors == [], errors  # the refused suspension's 409 was expected


def usd(minor: int) -> str:
    return f"${minor / 100:,.2f}"


async def flag(live, payment_id: str, **fields) -> None:
    sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(fields))
    async with live.services.db.tx(SYSTEM) as conn:
        await conn.execute(f"UPDATE payments SET {sets} WHERE id = $1::uuid", payment_id, *fields.values())


async def failed_refund(live, payment_id: str, order: dict, error: str) -> str:
    async with live.services.db.tx(SYSTEM) as conn:
        return await conn.fetchval(
            """INSERT INTO payment_refunds (payment_id, order_id, provider, amount_minor, currency, status, attempts,
                                            error, reason)
               VALUES ($1::uuid, $2::uuid, 'sandbox', $3, 'USD', 'failed', 5, $4, 'canceled') RETURNING id::text""",
            payment_id, order["id"], order["total_minor"], error)


async def test_admin_resolves_flagged_payments_and_failed_refunds(live, browser):
    base = live.base
    admin_id, admin_token = await live.user("web-adm-pay", "admin")
    _, buyer = await live.user("web-adm-buyer")
    await live.user("web-adm-shop2", "seller")
    checkouts = []
    for sellers in (["demo-seller"], ["demo-seller", "web-adm-shop2"]):
        for seller in sellers:
            product = await live.product(seller, title=f"Lamp of {seller}")
            await api(live, "POST", "/me/cart/items", buyer, {"variant_id": product["variant_id"], "qty": 1})
        checkouts.append(await api(live, "POST", "/checkout", buyer, {"address": ADDRESS, "provider": "sandbox"},
                                   **{"Idempotency-Key": uuid.uuid4().hex}))
    mismatch, refunds = checkouts
    total = mismatch["payment"]["amount_minor"]
    await flag(live, mismatch["payment"]["id"], issue="amount_mismatch", issue_details={
        "expected": {"amount_minor": total, "currency": "USD"}, "received": {"amount_minor": 1, "currency": "USD"}})
    pay_id = refunds["payment"]["id"]
    first, second = refunds["orders"]
    retried = await failed_refund(live, pay_id, first, "sandbox: connection refused")
    by_hand = await failed_refund(live, pay_id, second, "sandbox: card closed")
    await flag(live, pay_id, status="succeeded", issue="refund_due",
               refund_due_minor=first["total_minor"] + second["total_minor"])

    page = await page_as(browser, base, admin_id, "web-adm-pay", admin_token, "admin")
    errors = watch_errors(page, "status of 422")
    await page.goto(f"{base}admin/payments")
    tabs = page.get_by_role("navigation", name="Admin sections")
    await tabs.get_by_role("link", name="Payments 2 flagged").wait_for()
    payments = page.get_by_role("list", name="Flagged payments")
    odd = payments.locator(f"li[data-payment='{mismatch['payment']['id']}']")
    await odd.get_by_text(f"Expected {usd(total)}, received $0.01.").wait_for()
    assert await odd.get_by_text("amount mismatch", exact=True).count() == 1
    await looks_right(page)

    # resolve the mismatch: an empty note is refused by the API, said under the field; then with a note
    await odd.get_by_role("button", name=f"Resolve the amount mismatch of {usd(total)}").click()
    await odd.get_by_role("button", name="Confirm: resolve").click()
    note = odd.get_by_label("Note (required, kept in the audit log)")
    await odd.get_by_role("alert").filter(has_text="Note (required, kept in the audit log):").wait_for()
    assert await note.get_attribute("aria-invalid") == "true"
    await note.fill("customer paid the rest by bank transfer")
    await odd.get_by_role("button", name="Confirm: resolve").click()
    resolved = f"The amount mismatch flag of the {usd(total)} payment is resolved."
    await page.get_by_role("status").filter(has_text=resolved).wait_for()
    await odd.get_by_text("flag cleared").wait_for()
    assert await odd.get_by_role("button", name=f"Resolve the amount mismatch of {usd(total)}").count() == 0
    await tabs.get_by_role("link", name="Payments 1 flagged").wait_for()

    # the failed refunds: one sent again, the other settled by hand
    one, two = usd(first["total_minor"]), usd(second["total_minor"])
    both = payments.locator(f"li[data-payment='{pay_id}']")
    await both.get_by_text("Last error: sandbox: connection refused").wait_for()
    await both.get_by_role("button", name=f"Retry the refund of {one}").first.click()
    await both.get_by_label("Note (required, kept in the audit log)").fill("sandbox is back")
    await both.get_by_role("button", name="Confirm: retry the refund").click()
    await page.get_by_role("status").filter(has_text=f"The refund of {one} is sent to sandbox again.").wait_for()
    await both.get_by_role("button", name=f"Mark the refund of {two} refunded").click()
    await both.get_by_label("Note (required, kept in the audit log)").fill("paid back by bank transfer, ticket 7")
    await both.get_by_role("button", name="Confirm: mark refunded").click()
    await page.get_by_role("status").filter(has_text=f"The refund of {two} is marked refunded.").wait_for()
    assert await both.get_by_role("button", name=f"Mark the refund of {two} refunded").count() == 0
    await tabs.get_by_role("link", name="Payments", exact=True).wait_for()  # nothing flagged any more
    audit = (await api(live, "GET", "/admin/audit?action=refund.", admin_token))["items"]
    assert {(a["action"], a["entity_id"]) for a in audit} >= {("refund.retry", retried),
                                                              ("refund.mark_refunded", by_hand)}
    await looks_right(page)
    assert errors == [], errors  # the empty note's 422 was expected


async def test_seller_applications_and_admins_only(live, browser):
    base = live.base
    admin_id, admin_token = await live.user("web-adm-desk", "admin")
    user_id, token = await live.user("web-adm-cust")
    _, other = await live.user("web-adm-other")
    mine = await api(live, "POST", "/me/seller-application", token, {"shop_name": "Cust Candles", "about": "Soy wax"})
    theirs = await api(live, "POST", "/me/seller-application", other, {"shop_name": "Odd Shop"})

    # a customer is told the pages are for admins only
    page = await page_as(browser, base, user_id, "web-adm-cust", token, "customer")
    await page.goto(f"{base}admin/jobs")
    await page.get_by_role("heading", name="Admins only").wait_for()
    await page.get_by_text("You are signed in as web-adm-cust, who is not an admin").wait_for()
    assert not await page.locator("#desk").is_visible()
    assert not await page.get_by_role("link", name="Admin", exact=True).is_visible()
    await assert_accessible(page)
    # who is signed in cannot be checked (the server unreachable): said, not a page loading forever
    await page.route("**/api/v1/me", lambda route: route.abort())
    await page.goto(f"{base}admin")
    await page.get_by_role("alert").filter(has_text="Could not check who you are: The server could not be reached.") \
        .wait_for()
    assert not await page.locator("#desk").is_visible() and not await page.locator("#denied").is_visible()

    # the admin approves one application with a note and refuses the other (a reason is required)
    desk = await page_as(browser, base, admin_id, "web-adm-desk", admin_token, "admin")
    errors = watch_errors(desk, "status of 422")
    await desk.goto(f"{base}admin/sellers")
    tabs = desk.get_by_role("navigation", name="Admin sections")
    await tabs.get_by_role("link", name="Seller applications 2 pending").wait_for()
    apps = desk.get_by_role("list", name="Seller applications")
    candles = apps.locator(f"li[data-application='{mine['id']}']")
    await candles.get_by_text("Soy wax").wait_for()
    await looks_right(desk)
    await candles.get_by_role("button", name="Approve Cust Candles").click()
    await candles.get_by_label("Note to the applicant (optional)").fill("Welcome aboard")
    await candles.get_by_role("button", name="Confirm: approve").click()
    await desk.get_by_role("status").filter(has_text="Cust Candles is approved: web-adm-cust is a seller now.") \
        .wait_for()
    await candles.get_by_text("approved", exact=True).wait_for()
    assert (await api(live, "GET", f"/admin/users/{user_id}", admin_token))["role"] == "seller"
    odd = apps.locator(f"li[data-application='{theirs['id']}']")
    await odd.get_by_role("button", name="Refuse Odd Shop").click()
    await odd.get_by_role("button", name="Confirm: refuse").click()
    await odd.get_by_role("alert").filter(has_text="Why (required, told to the applicant):").wait_for()
    assert (await api(live, "GET", "/me/seller-application", other))["status"] == "pending"
    await odd.get_by_label("Why (required, told to the applicant)").fill("Nothing to sell yet")
    await odd.get_by_role("button", name="Confirm: refuse").click()
    await odd.get_by_text("Nothing to sell yet").wait_for()
    assert await odd.get_by_role("button", name="Refuse Odd Shop").count() == 0
    assert (await api(live, "GET", "/me/seller-application", other))["status"] == "refused"
    await looks_right(desk)
    await tabs.get_by_role("link", name="Seller applications", exact=True).wait_for()  # none pending
    assert errors == [], errors

    # signed out: to sign in, and back here after
    other_page = await (await browser.new_context()).new_page()
    await other_page.goto(f"{base}admin/contact")
    await other_page.wait_for_url(f"{base}signin?next=%2Fadmin%2Fcontact")
