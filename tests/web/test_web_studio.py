"""The studio page's other paths in a real Chromium, at a phone's 360 px: a scheduled stream is started by "Go live"
(and its watch page goes from "not started" to playing), a buyer is told the studio is the seller's, a signed-out
visitor is sent to sign in and back; no page is wider than the screen."""
from __future__ import annotations

import json

from tests.web.helpers import frames_advance, watch_errors

PHONE = {"width": 360, "height": 740}


async def signed_in_page(browser, base: str, token: str, user: dict):
    """A page of a new context whose browser holds this session (as the sign-in page leaves it: api.js)."""
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    await page.goto(f"{base}signin")
    await page.evaluate("s => localStorage.setItem('live.session', s)", json.dumps({"token": token, "user": user}))
    return page


async def no_sideways_scroll(page) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url


async def test_go_live_starts_a_scheduled_stream(live, browser):
    base = live.base
    seller_id, token = await live.user("demo-seller", "seller")
    status, created = await live.api("POST", "/livestreams", token, {
        "title": "Evening drop", "slug": "evening-drop", "scheduled_at": "2030-01-01T18:00:00Z"})
    assert status == 201 and created["status"] == "scheduled", created
    studio = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    errors = watch_errors(studio)
    await studio.goto(f"{base}studio/live/evening-drop")
    await studio.locator("#stream-status").get_by_text("scheduled").wait_for()
    watcher = await (await browser.new_context(viewport=PHONE)).new_page()
    await watcher.goto(f"{base}live/evening-drop")
    await watcher.get_by_text("This stream has not started yet").wait_for()

    await studio.get_by_role("button", name="Go live").focus()
    await studio.keyboard.press("Enter")  # keyboard only
    await studio.get_by_text("Live: your video is on air").wait_for(timeout=15000)
    assert await studio.locator("#stream-status").inner_text() == "live"
    assert (await live.api("GET", "/livestreams/evening-drop"))[1]["status"] == "live"
    await frames_advance(watcher, "the watcher")
    for page in (studio, watcher):
        await no_sideways_scroll(page)
    assert errors == [], errors


async def test_studio_is_the_sellers_only(live, browser):
    base = live.base
    buyer_id, token = await live.user("web-buyer")
    page = await signed_in_page(browser, base, token, {"id": buyer_id, "name": "web-buyer"})
    await page.goto(f"{base}studio/live/demo")
    await page.get_by_text("Only this stream’s seller can go live here.").wait_for()
    assert await page.get_by_role("button", name="Go live").is_disabled()
    await no_sideways_scroll(page)

    anonymous = await (await browser.new_context(viewport=PHONE)).new_page()
    await anonymous.goto(f"{base}studio/live/demo")
    await anonymous.wait_for_url(f"{base}signin?next=%2Fstudio%2Flive%2Fdemo")
    await anonymous.get_by_label("Email address").wait_for()
    await no_sideways_scroll(anonymous)


# the pages' own RTCPeerConnections, for a test to reach into (instrumentation only: the pages do not know it)
RECORD_PCS = """
window.__pcs = [];
const Native = window.RTCPeerConnection;
window.RTCPeerConnection = class extends Native {
  constructor(...args) { super(...args); window.__pcs.push(this); }
};
"""


async def test_watch_page_restarts_a_stalled_video(live, browser):
    """The publisher keeps its connection but sends no video (its sender's track removed): the viewer's frames
    stop, the page says so and starts a new WHEP session; once video flows again the new session plays."""
    base = live.base
    seller_id, token = await live.user("demo-seller", "seller")
    studio = await signed_in_page(browser, base, token, {"id": seller_id, "name": "demo-seller"})
    await studio.add_init_script(RECORD_PCS)
    await studio.goto(f"{base}studio/live/demo")
    await studio.get_by_role("button", name="Go live").click()
    await studio.get_by_text("Live: your video is on air").wait_for(timeout=15000)
    viewer = await (await browser.new_context(viewport=PHONE)).new_page()
    errors = watch_errors(viewer)
    await viewer.goto(f"{base}live/demo")
    await frames_advance(viewer, "the viewer")
    sessions = set(live.services.embedded.sessions)

    await studio.evaluate("""() => {
        const sender = window.__pcs[0].getSenders().find(s => s.track && s.track.kind === 'video');
        window.__video = sender.track;
        return sender.replaceTrack(null);
    }""")
    await viewer.get_by_text("The video stalled. Reconnecting…").wait_for(timeout=15000)
    await studio.evaluate("""() => window.__pcs[0].getSenders().find(s => s.track === null)
                                 .replaceTrack(window.__video)""")
    await frames_advance(viewer, "the viewer after the stall")
    assert set(live.services.embedded.sessions) - sessions, "a new WHEP session"
    assert errors == [], errors
