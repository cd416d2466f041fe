"""With LiveKit configured the join ack names LiveKit (`media.kind == "livekit"`): the studio says publishing from
the page comes later and offers no "Go live"; the watch page says it cannot play it yet, and sends no WHEP."""
from __future__ import annotations

import json

from tests.rooms.harness import start_live
from tests.web.helpers import watch_errors


async def test_pages_say_livekit_is_not_played_yet(tmp_path, dsn, aiohttp_client, browser):
    live = await start_live(tmp_path, dsn, aiohttp_client, livekit_url="ws://livekit.test:7880")
    try:
        base = live.base
        seller_id, token = await live.user("demo-seller", "seller")
        context = await browser.new_context()
        studio = await context.new_page()
        errors = watch_errors(studio)
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        await studio.goto(f"{base}signin")
        await studio.evaluate("s => localStorage.setItem('live.session', s)",
                              json.dumps({"token": token, "user": {"id": seller_id, "name": "demo-seller"}}))
        await studio.goto(f"{base}studio/live/demo")
        await studio.get_by_text("This server sends video through LiveKit").wait_for()
        assert not await studio.get_by_role("button", name="Go live").is_visible()

        watcher = await context.new_page()
        errors += watch_errors(watcher)
        await watcher.goto(f"{base}live/demo")
        await watcher.get_by_text("served by LiveKit, which this page cannot play yet").wait_for()
        assert not [u for u in requests if "/whep" in u or "/whip" in u], requests
        assert errors == [], errors
    finally:
        await live.close_viewers()
