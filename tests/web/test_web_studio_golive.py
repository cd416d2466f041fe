"""Going live safely, in a real Chromium: the camera is asked for before the stream is started (starting is
irreversible: the stream becomes live and followers are told), so a page with no camera (a phone on a plain-http
LAN address has no navigator.mediaDevices at all) says why and leaves a scheduled stream scheduled; and the OBS
token's Copy fallback (no async clipboard off a secure origin) never leaves the token readable on screen."""
from __future__ import annotations

from tests.helpers import until
from tests.web.helpers import watch_errors
from tests.web.test_web_studio import signed_in_page

NO_CAMERA = """
Object.defineProperty(Navigator.prototype, 'mediaDevices', { get: () => undefined, configurable: true });
Object.defineProperty(window, 'isSecureContext', { get: () => false, configurable: true });
"""

NO_CLIPBOARD = """
Object.defineProperty(Navigator.prototype, 'clipboard', { get: () => undefined, configurable: true });
window.__copied = [];
document.addEventListener('copy', () => window.__copied.push(document.activeElement && document.activeElement.type));
"""


async def test_no_camera_does_not_start_the_stream(live, browser):
    seller_id, token = await live.user("demo-seller", "seller")
    status, created = await live.api("POST", "/livestreams", token, {
        "title": "Phone show", "slug": "phone-show", "scheduled_at": "2030-01-01T18:00:00Z"})
    assert status == 201, created
    page = await signed_in_page(browser, live.base, token, {"id": seller_id, "name": "demo-seller"})
    await page.add_init_script(NO_CAMERA)
    errors = watch_errors(page)
    await page.goto(f"{live.base}studio/live/phone-show")
    await page.locator("#stream-status").get_by_text("scheduled").wait_for()
    await page.get_by_role("button", name="Go live").click()
    await page.get_by_role("alert").get_by_text("The camera works only on a secure page").wait_for()
    assert "https" in await page.locator("#studio-error").inner_text()
    assert (await live.api("GET", "/livestreams/phone-show"))[1]["status"] == "scheduled"
    assert await page.locator("#stream-status").inner_text() == "scheduled"
    assert await page.get_by_role("button", name="Go live").is_enabled()  # may try again
    assert not live.services.embedded.sessions
    assert errors == [], errors


async def test_copy_fallback_hides_the_token_again(live, browser):
    seller_id, token = await live.user("demo-seller", "seller")
    page = await signed_in_page(browser, live.base, token, {"id": seller_id, "name": "demo-seller"})
    await page.add_init_script(NO_CLIPBOARD)
    errors = watch_errors(page)
    await page.goto(f"{live.base}studio/live/demo")
    field = page.get_by_label("Bearer token")
    await until(field.input_value, 10, what="the token in the OBS box")
    await page.get_by_role("button", name="Copy token").click()
    await page.get_by_role("button", name="Copy token").get_by_text("Copied").wait_for()
    assert await page.evaluate("window.__copied") == ["text"]  # copied from the field, shown for that moment only
    assert await field.get_attribute("type") == "password"
    assert await field.input_value() == token
    assert errors == [], errors
