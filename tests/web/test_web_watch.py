"""The watch page's own failures, in a real Chromium: a refused token (expired, or voided while the page was open
and the connection then dropped) leaves the viewer watching as a guest, told they were signed out; a browser that
refuses to autoplay (iPhone Low Power Mode) gets a "Tap to play" button instead of 'Connecting…' forever."""
from __future__ import annotations

from datetime import datetime, timedelta

import jwt
import pytest

from live.errors import DomainError
from tests.helpers import until
from tests.web.helpers import frames_advance, page_as, watch_errors

STATE = "document.getElementById('connection').dataset.state"
LIFE = 60  # seconds: the short-lived token's


async def go_live(browser, live):
    """The demo seller live from the studio (Chromium's fake camera)."""
    seller_id, token = await live.user("demo-seller", "seller")
    studio = await page_as(browser, live.base, seller_id, "demo-seller", token)
    await studio.goto(f"{live.base}studio/live/demo")
    await studio.get_by_role("button", name="Go live").click()
    await studio.get_by_text("Live: your video is on air").wait_for(timeout=15000)
    return studio


async def test_a_refused_token_goes_on_as_a_guest(live, browser, monkeypatch):
    base = live.base
    # an expired token at load
    uid, _ = await live.user("web-stale")
    expired = live.services.tokens.issue(uid, "customer", "web-stale", ttl=-60)
    stale = await page_as(browser, base, uid, "web-stale", expired)
    stale_errors = watch_errors(stale, "status of 409", "status of 401")  # WHEP: nobody publishes; the cart: 401
    await stale.goto(f"{base}live/demo")
    await stale.get_by_text("You were signed out").wait_for()
    await stale.get_by_text("Waiting for the seller to go live").wait_for()
    assert await stale.evaluate(STATE) == "live"
    assert await stale.evaluate("localStorage.getItem('live.session')") is None
    assert await stale.get_by_role("link", name="Sign in again").get_attribute("href") == "/signin?next=%2Flive%2Fdemo"
    assert await stale.get_by_role("link", name="Sign in", exact=True).is_visible()

    # a token voided (signed out everywhere) while the page is open, then the connection drops
    uid2, token2 = await live.user("web-voided")
    voided = await page_as(browser, base, uid2, "web-voided", token2)
    voided_errors = watch_errors(voided, "status of 409", "status of 401")  # GET /me after the cut: 401
    await voided.goto(f"{base}live/demo")
    await voided.get_by_text("Waiting for the seller to go live").wait_for()
    await voided.get_by_text("Signed in as web-voided").wait_for()
    status, _ = await live.api("POST", "/auth/sign-out", token2)  # the server cuts the user's sockets
    assert status == 204, status
    await voided.get_by_text("You were signed out").wait_for(timeout=10000)
    await until(lambda: state_is(voided, "live"), 10, what="the voided viewer joined again as a guest")
    assert not await voided.get_by_text("Signed in as").is_visible()

    # a token that expires while the page is open, then the network drops: the reconnect is refused. Once the page
    # has joined and asked for the video with it, the server's clock (as the JWT library reads it) moves past the
    # token's life: a real 3 s life raced the page's load on a loaded machine (its WHEP request came after the
    # expiry: a 401, which is not this case)
    uid3, _ = await live.user("web-short")
    short = live.services.tokens.issue(uid3, "customer", "web-short", ttl=LIFE)
    dropped = await page_as(browser, base, uid3, "web-short", short)
    dropped_errors = watch_errors(dropped, "status of 409")
    await dropped.goto(f"{base}live/demo")
    await until(lambda: state_is(dropped, "live"), 10, what="the short-lived viewer joined")
    await dropped.get_by_text("Waiting for the seller to go live").wait_for()  # WHEP: 409, nobody publishes
    assert not await dropped.get_by_text("You were signed out").is_visible()  # it joined with its token
    monkeypatch.setattr(jwt.api_jwt, "datetime", _clock_ahead(LIFE + 1))
    with pytest.raises(DomainError, match="token expired"):
        live.services.tokens.decode(short)
    for conn in list(live.gateway.conns.values()):  # every connection's network drops
        if conn.sock.transport is not None:
            conn.sock.transport.abort()
    await dropped.get_by_text("You were signed out").wait_for(timeout=15000)
    await until(lambda: state_is(dropped, "live"), 10, what="the expired viewer joined again as a guest")
    for page in (stale, voided):  # the others reconnected too (guests now)
        await until(lambda: state_is(page, "live"), 10, what="a guest reconnected")
    assert not await stale.get_by_text("Could not connect").is_visible()
    assert stale_errors == [] and dropped_errors == [], (stale_errors, dropped_errors)
    assert voided_errors == [], voided_errors



async def test_a_token_expiring_while_watching_plays_on_as_a_guest(live, browser, monkeypatch):
    """The socket stays joined past the token's life (a token is checked at connect), but the next video request
    (the seller going live) is refused 401: the page goes on as a guest and plays, rather than retrying the dead
    token forever."""
    uid, _ = await live.user("web-later")
    token = live.services.tokens.issue(uid, "customer", "web-later", ttl=LIFE)
    page = await page_as(browser, live.base, uid, "web-later", token)
    errors = watch_errors(page, "status of 409", "status of 401")  # WHEP: nobody publishes yet, then the expiry
    await page.goto(f"{live.base}live/demo")
    await until(lambda: state_is(page, "live"), 10, what="the viewer joined")
    await page.get_by_text("Waiting for the seller to go live").wait_for()
    await page.get_by_text("Signed in as web-later").wait_for()
    monkeypatch.setattr(jwt.api_jwt, "datetime", _clock_ahead(LIFE + 1))
    await go_live(browser, live)
    await page.get_by_text("You were signed out").wait_for(timeout=15000)
    await frames_advance(page, "the viewer, now a guest")
    assert await page.evaluate("localStorage.getItem('live.session')") is None
    assert errors == [], errors

def _clock_ahead(seconds: int) -> type:
    """A datetime class whose now() is `seconds` ahead (the tokens' validation reads the time through it)."""
    class Ahead(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(seconds=seconds)
    return Ahead


async def state_is(page, value: str) -> bool:
    return await page.evaluate(STATE) == value


# play() refused until the person clicks (taps) something on the page, as iOS does in Low Power Mode; added before
# the page's own scripts (over the DevTools protocol: not subject to the page's CSP)
NO_AUTOPLAY = """
let tapped = false;
addEventListener('click', () => { tapped = true; }, true);
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  if (tapped) return play.call(this);
  return Promise.reject(new DOMException('autoplay refused', 'NotAllowedError'));
};
"""


async def test_autoplay_refused_shows_tap_to_play(live, browser):
    studio = await go_live(browser, live)
    page = await (await browser.new_context()).new_page()
    errors = watch_errors(page)
    await page.add_init_script(NO_AUTOPLAY)
    await page.goto(f"{live.base}live/demo")
    tap = page.get_by_role("button", name="Tap to play")
    await tap.wait_for(timeout=15000)
    assert "did not start the video" in await page.locator("#video-state").inner_text()
    assert await page.evaluate("document.getElementById('video').paused")
    await tap.click()
    await frames_advance(page, "the tapped video")
    assert not await tap.is_visible() and not await page.locator("#video-state").is_visible()
    assert errors == [], errors
    await studio.close()
