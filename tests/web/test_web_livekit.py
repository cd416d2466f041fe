"""Publishing and playing through LiveKit from the pages (js/livekit.js), when the join ack names LiveKit
(`media.kind == "livekit"`). There is no LiveKit server here: LIVEKIT_URL points at a local fake of its signalling
endpoint only (an aiohttp websocket at `/rtc`, and the `validate` URL livekit-client asks after a refused
connection), which checks the access token as LiveKit would (tests/media/conftest.py's fake: HS256 with the API
secret, the grants) and then either refuses the connection (401) or holds it open without answering. What happens
after LiveKit's join answer (the media itself) is tested by hand against a real `livekit-server --dev` (docs/web.md,
Going live)."""
from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from livekit import api as lk

from live.errors import DomainError
from live.media import livekit as livekit_tokens
from live.web.assets import Assets
from live.web.livekit_csp import policy
from tests.helpers import until
from tests.rooms.harness import start_live
from tests.web.a11y import assert_accessible
from tests.web.helpers import watch_errors
from tests.web.test_web_budget import graph

CLIENT = "vendor/livekit-client.esm.min.js"
# what a refused LiveKit connection prints in the console: Chromium's websocket line and the validate request's 401
EXPECTED = ("WebSocket connection to", "status of 401")
CORS = {"Access-Control-Allow-Origin": "*"}  # as LiveKit answers: the validate request is cross-origin


class FakeSignal:
    """LiveKit's signalling endpoint as far as the pages reach it: every connection's path and verified claims
    are kept in `joins` (its token in `tokens`); `refuse` answers 401 (a token LiveKit does not accept), otherwise
    the websocket is accepted and held open, unanswered."""

    def __init__(self):
        self.verifier = lk.TokenVerifier("devkey", "secret")  # the tests' LiveKit settings (tests/helpers.py)
        self.joins: list[tuple[str, lk.Claims]] = []
        self.tokens: list[str] = []
        self.refuse = True
        self.sockets: list[web.WebSocketResponse] = []
        app = web.Application()
        app.router.add_get("/rtc", self.signal)
        app.router.add_get("/rtc/v1", self.signal)
        app.router.add_get("/rtc/validate", self.validate)
        app.router.add_get("/rtc/v1/validate", self.validate)
        self.server = TestServer(app, host="127.0.0.1")

    async def start(self) -> str:
        await self.server.start_server()
        return f"ws://127.0.0.1:{self.server.port}"

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()
        await self.server.close()

    async def signal(self, request: web.Request) -> web.StreamResponse:
        claims = self.verifier.verify(request.query["access_token"])  # raises (500) on a bad token: seen below
        self.joins.append((request.path, claims))
        self.tokens.append(request.query["access_token"])
        if self.refuse:
            return web.Response(status=401, text="invalid token: refused by the test", headers=CORS)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        async for _ in ws:
            pass
        return ws

    async def validate(self, request: web.Request) -> web.Response:
        if self.refuse:
            return web.Response(status=401, text="invalid token: refused by the test", headers=CORS)
        return web.Response(text="success", headers=CORS)


def test_the_video_pages_policy_names_the_livekit_origin():
    """http(s) URLs are LiveKit's too (livekit-client opens ws(s) to them); a path or a port is kept to the origin."""
    assert policy("") is None
    connect = re.search(r"connect-src ([^;]*)", policy("https://LK.example.com/base")).group(1)
    assert connect == "'self' wss://lk.example.com https://lk.example.com"
    connect = re.search(r"connect-src ([^;]*)", policy("ws://10.0.0.5:7880")).group(1)
    assert connect == "'self' ws://10.0.0.5:7880 http://10.0.0.5:7880"


def test_watch_page_imports_livekit_client_only_dynamically():
    """The watch page's static import graph (what every viewer loads, tests/web/test_web_budget.py) leaves the
    LiveKit client out: js/livekit.js imports it with import() when the ack names LiveKit."""
    assets = Assets.load()
    files = graph(assets, ["js/watch.js", "js/studio.js"])
    assert "js/livekit.js" in files and CLIENT not in files, files
    source = assets.files["js/livekit.js"].body.decode()
    assert f"const CLIENT = '/static/{CLIENT}';" in source and "import(CLIENT)" in source


class MintingClock:
    """live.media.livekit's clock, at least a second later for each token it mints: two tokens minted within the
    same second differ, so a test tells a fresh token (`media:refresh`) from the one it had (a few seconds ahead
    at most: LiveKit, and the fake, allow 60 s)."""

    def __init__(self):
        self.last = 0.0

    def time(self) -> float:
        self.last = max(time.time(), self.last + 1)
        return self.last


@pytest.fixture
async def livekit_live(tmp_path, dsn, aiohttp_client, monkeypatch):
    """(the demo app with LIVEKIT_URL at the fake signalling endpoint, the fake, its URL); tokens minted apart."""
    monkeypatch.setattr(livekit_tokens, "time", MintingClock())
    fake = FakeSignal()
    url = await fake.start()
    live = await start_live(tmp_path, dsn, aiohttp_client, livekit_url=url)
    try:
        yield live, fake, url
    finally:
        await live.close_viewers()
        await fake.close()


async def test_studio_and_watch_page_connect_to_livekit(livekit_live, browser):
    live, fake, url = livekit_live
    await _studio_and_watch(live, fake, url, browser)


async def _studio_and_watch(live, fake, url, browser):
    base = live.base
    room = (await live.demo_state()).livekit_room
    port = url.rsplit(":", 1)[1]
    # the two video pages may open this LiveKit server's websocket and HTTP origin, and no other outside origin
    for path in ("/live/demo", "/studio/live/demo"):
        csp = (await live.client.get(path)).headers["Content-Security-Policy"]
        connect = re.search(r"connect-src ([^;]*)", csp).group(1).split()
        assert connect == ["'self'", f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"], csp
        assert "script-src 'self';" in csp
    assert "ws:" in (await live.client.get("/signin")).headers["Content-Security-Policy"]  # others: the app's

    # the seller's "Go live" asks for the camera and connects with a token that may publish; refused: said so
    seller_id, token = await live.user("demo-seller", "seller")
    seller = await browser.new_context()
    requests: list[str] = []
    seller.on("request", lambda r: requests.append(r.url))
    studio = await seller.new_page()
    studio_errors = watch_errors(studio, *EXPECTED)
    await studio.goto(f"{base}signin")
    await studio.evaluate("s => localStorage.setItem('live.session', s)",
                          json.dumps({"token": token, "user": {"id": seller_id, "name": "demo-seller"}}))
    await studio.goto(f"{base}studio/live/demo")
    await studio.get_by_text("This server sends video through LiveKit: “Go live” publishes your camera").wait_for()
    assert not await studio.get_by_role("heading", name="Publish from OBS instead").is_visible()
    assert not [u for u in requests if CLIENT in u], "livekit-client is loaded when going live, not before"
    await studio.get_by_role("button", name="Go live").click()
    await studio.get_by_role("alert").get_by_text(
        "Could not go live: the video server refused the connection (401).").wait_for()
    path, claims = fake.joins[-1]
    assert path.startswith("/rtc") and claims.identity == seller_id and claims.video.room == room
    assert claims.video.room_join and claims.video.can_publish is True
    assert await studio.evaluate("document.getElementById('preview').srcObject.getVideoTracks().length") == 1
    assert [u for u in requests if CLIENT in u]
    assert await studio.get_by_role("button", name="Go live").is_enabled()  # may try again
    assert await studio.locator("#publish-state").inner_text() == "Not publishing"
    await assert_accessible(studio, exclude=("#preview",))
    assert studio_errors == [], studio_errors

    # a viewer: connects with its own viewer token (no publishing), a refusal is shown with "Try again", which
    # connects again with a fresh token (media:refresh)
    viewer_id, viewer_token = await live.user("lk-viewer")
    watcher_ctx = await browser.new_context()
    watcher = await watcher_ctx.new_page()
    errors = watch_errors(watcher, *EXPECTED)
    await watcher.clock.install()  # time flows, and is run past the first automatic retry's delay below
    await watcher.goto(f"{base}signin")
    await watcher.evaluate("s => localStorage.setItem('live.session', s)",
                           json.dumps({"token": viewer_token, "user": {"id": viewer_id, "name": "lk-viewer"}}))
    joins = len(fake.joins)
    await watcher.goto(f"{base}live/demo")
    state = watcher.locator("#video-state")
    refused = "The video could not connect: the video server refused the connection (401)."
    await state.get_by_text(refused).wait_for()
    assert await state.inner_text() == refused  # not "… Trying again…"
    retry = watcher.get_by_role("button", name="Try again")
    assert await retry.is_visible()
    # a refused token is not tried again by itself: run past the first automatic retry (RETRY_MS[0], 1 s), which
    # would at once say "Connecting to the video…", hide "Try again" and connect again
    await watcher.clock.run_for(1500)
    assert await state.inner_text() == refused and await retry.is_visible()
    path, claims = fake.joins[joins]
    assert len(fake.joins) == joins + 1
    assert path.startswith("/rtc") and claims.identity == viewer_id and claims.video.room == room
    assert claims.video.room_join and claims.video.can_subscribe is True and claims.video.can_publish is False
    # the reaction buttons are left to the watch page's own scan (their names lack their emoji: reported)
    await assert_accessible(watcher, exclude=("#video", "#reactions"))

    fake.refuse = False
    await retry.click()
    await until(lambda: len(fake.joins) == joins + 2, 10, what="the viewer's second LiveKit connection")
    claims = fake.joins[-1][1]
    assert claims.identity == viewer_id and claims.video.can_publish is False
    assert fake.tokens[-1] != fake.tokens[joins]  # a fresh token (media:refresh), not the refused one again
    await until(lambda: len(fake.sockets) == 1, 10, what="the fake's websocket held open")
    await state.get_by_text("Connecting to the video…").wait_for()
    assert not await retry.is_visible()
    assert errors == [], errors


# livekit-client as far as js/livekit.js uses it, served in its place by the renewal test: a Room "connects" by
# opening the fake's signalling websocket with its token and is connected once it opens; the fake closing it is a
# connection livekit-client gave up on (a Disconnected event). It holds no timer: the page's clock is the test's.
FAKE_CLIENT = """
export function setLogLevel() {}
export class ConnectionError extends Error {}
export const ConnectionErrorReason = { NotAllowed: 'not allowed' };
export const DisconnectReason = { PARTICIPANT_REMOVED: 'removed', ROOM_DELETED: 'deleted' };
export const Track = { Source: { Camera: 'camera', Microphone: 'microphone' } };
export const RoomEvent = { Reconnecting: 'reconnecting', Reconnected: 'reconnected', Connected: 'connected',
  Disconnected: 'disconnected', TrackSubscribed: 'trackSubscribed', TrackUnsubscribed: 'trackUnsubscribed' };
export class Room {
  constructor() { this.handlers = {}; }
  on(event, fn) { (this.handlers[event] ??= []).push(fn); return this; }
  emit(event, ...args) { for (const fn of this.handlers[event] ?? []) fn(...args); }
  removeAllListeners() { this.handlers = {}; }
  connect(url, token) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url}/rtc?access_token=${encodeURIComponent(token)}`);
      this.ws = ws;
      ws.onopen = () => { this.open = true; resolve(); this.emit(RoomEvent.Connected); };
      ws.onerror = () => { if (!this.open) reject(new ConnectionError('could not connect')); };
      ws.onclose = () => { if (this.open && !this.left) this.emit(RoomEvent.Disconnected, 'lost'); };
    });
  }
  async disconnect() { this.left = true; this.ws?.close(); }
}
"""


async def test_a_viewer_token_is_renewed_and_a_new_attempt_starts_from_it(livekit_live, browser, monkeypatch):
    """A viewer's token living 65 s is renewed 5 s in (never sooner); the server refusing that renewal, it is
    asked again 30 s later (not 30 s plus another wait: with a 15-minute token that was after it expired); the
    connection then lost and the new attempt's own renewal refused, it connects with the renewed token, not with
    the join ack's. The page's clock is run forward; livekit-client is FAKE_CLIENT."""
    monkeypatch.setattr(livekit_tokens, "TOKEN_TTL", timedelta(seconds=65))
    live, fake, _url = livekit_live
    fake.refuse = False
    await _renewal(live, fake, browser, monkeypatch)


async def _renewal(live, fake, browser, monkeypatch):
    renewals: list[str | None] = []  # each media:refresh the server answered: its token, None when refused
    refuse = [True]
    rooms = live.services.rooms
    original = rooms.media_refresh

    def media_refresh(*args, **kwargs):
        if refuse[0]:
            renewals.append(None)
            raise DomainError("invalid", "no new token now (refused by the test)")
        media = original(*args, **kwargs)
        renewals.append(media["token"])
        return media

    monkeypatch.setattr(rooms, "media_refresh", media_refresh)
    viewer_id, token = await live.user("lk-renewed")
    page = await (await browser.new_context()).new_page()
    errors = watch_errors(page)
    answers: list[str] = []  # the refusals of a renewal, as the page's socket received them
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: answers.append(frame)
                                          if "refused by the test" in str(frame) else None))
    await page.route(f"**/static/{CLIENT}", lambda route: route.fulfill(body=FAKE_CLIENT,
                                                                         content_type="text/javascript"))
    await page.clock.install()
    await page.goto(f"{live.base}signin")
    await page.evaluate("s => localStorage.setItem('live.session', s)",
                        json.dumps({"token": token, "user": {"id": viewer_id, "name": "lk-renewed"}}))
    await page.goto(f"{live.base}live/demo")
    state = page.locator("#video-state")
    await until(lambda: len(fake.tokens) == 1, 10, what="the viewer's LiveKit connection")
    await state.get_by_text("Waiting for the seller to go live…").wait_for()  # connected, nobody publishing
    joined = fake.tokens[0]  # the join ack's
    # the page's time stands still from here, and moves only as run forward
    await page.clock.pause_at((await page.evaluate("Date.now()") + 100) / 1000)

    await page.clock.run_for(5000)
    await until(lambda: len(answers) == 1, 5, what="the token's renewal, 5 s into its 65, refused")
    assert await page.evaluate("1") and renewals == [None]  # the page has its answer: the time of the refusal
    refuse[0] = False
    await page.clock.run_for(29000)
    assert len(renewals) == 1  # the next try is 30 s after the refusal
    await page.clock.run_for(1500)
    await until(lambda: len(renewals) == 2, 5, what="the renewal asked again 30 s after it was refused")
    renewed = renewals[1]
    assert renewed and renewed != joined

    # livekit-client gives up on the connection: the page connects again after 1 s; that attempt's own renewal is
    # refused, so it connects with the newest token it had (the renewed one), not the join ack's
    refuse[0] = True
    await fake.sockets[0].close()
    await state.get_by_text("The video connection was lost. Trying again…").wait_for()
    await page.clock.run_for(1000)
    await until(lambda: len(fake.tokens) == 2, 10, what="the second LiveKit connection")
    assert renewals[2:] == [None]
    assert fake.tokens[1] == renewed
    await state.get_by_text("Waiting for the seller to go live…").wait_for()
    assert errors == [], errors
