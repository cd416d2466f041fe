"""The watch page's socket is cut by the network (the server's side of every connection aborted): the page says
it is reconnecting, socket.io-client reconnects by itself, the page joins again with its seq and epoch (recovered:
nothing missed) and room events reach it again: the seller going live then starts its video."""
from __future__ import annotations

import json

from tests.helpers import until
from tests.web.helpers import frames_advance, watch_errors

STATE = "document.getElementById('connection').dataset.state"


async def test_watch_page_reconnects_after_the_connection_drops(live, browser):
    base = live.base
    watcher = await (await browser.new_context()).new_page()
    errors = watch_errors(watcher, "status of 409")  # WHEP while nobody publishes
    await watcher.goto(f"{base}live/demo")
    await watcher.get_by_text("Waiting for the seller to go live").wait_for()
    assert await watcher.evaluate(STATE) == "live"
    await until(lambda: live.gateway.conns, 5, what="the page's socket")

    joins = {"recovered": 0}
    original = live.services.rooms.join

    async def counting_join(*args, **kwargs):
        ack = await original(*args, **kwargs)
        joins["recovered"] += bool(ack.get("recovered"))
        return ack

    live.services.rooms.join = counting_join
    for conn in list(live.gateway.conns.values()):  # the network drops every connection
        if conn.sock.transport is not None:
            conn.sock.transport.abort()
    async def state_is(value: str) -> bool:  # polled over the DevTools protocol (the page's CSP forbids eval)
        return await watcher.evaluate(STATE) == value

    await until(lambda: state_is("reconnecting"), 5, step=0.01, what="the page saying it reconnects")
    assert "Reconnecting" in await watcher.locator("#connection").inner_text()
    await until(lambda: state_is("live"), 10, what="the page joined again")
    assert joins["recovered"] == 1, joins  # joined again with its last seq and epoch

    # the room reaches it again: the seller goes live, the page plays
    seller_id, token = await live.user("demo-seller", "seller")
    studio = await (await browser.new_context()).new_page()
    await studio.goto(f"{base}signin")
    await studio.evaluate("s => localStorage.setItem('live.session', s)",
                          json.dumps({"token": token, "user": {"id": seller_id, "name": "demo-seller"}}))
    await studio.goto(f"{base}studio/live/demo")
    await studio.get_by_role("button", name="Go live").click()
    await frames_advance(watcher, "the reconnected watcher")
    assert errors == [], errors
