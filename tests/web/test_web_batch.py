"""The watch page opts into batched room events (js/room.js: CONNECT auth batch 1) and shows what a `batch` event
holds as if each event had come alone, in order: a real Chromium, the real server, a burst of chat. Chromium offers
permessage-deflate, so the batches it reads are compressed (RSV1) frames."""
from __future__ import annotations

import asyncio
import json
import re

from tests.helpers import until
from tests.web.helpers import page_as, watch_errors

SENDERS, EACH = 4, 10


async def test_the_watch_page_unpacks_batched_events_in_order(live, browser):
    uid, token = await live.user("web-batch")
    page = await page_as(browser, live.base, uid, "web-batch", token)
    errors = watch_errors(page, "status of 409")  # WHEP while nobody publishes
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f if isinstance(f, str) else "")))
    await page.goto(f"{live.base}live/demo")
    await page.get_by_label("Message", exact=True).wait_for()
    [conn] = [c for c in live.gateway.conns.values() if c.principal.user_id == uid]
    assert conn.sock.batched is True  # the page opted in
    assert conn.sock.deflate is True  # Chromium offered permessage-deflate: its batches come compressed

    # a burst from the seller's sockets (the seller has no chat limit), sent without waiting between messages
    senders = [await live.seller() for _ in range(SENDERS)]
    acks = await asyncio.gather(*(v.say(f"batch {i}-{j}") for j in range(EACH) for i, v in enumerate(senders)))
    assert all(a["ok"] for a in acks), acks
    in_order = [a["message"]["text"] for a in sorted(acks, key=lambda a: a["message"]["seq"])]

    async def shown() -> list[str]:
        texts = await page.locator("#chat-list li").all_inner_texts()
        return [m.group(0) for t in texts if (m := re.search(r"batch \d+-\d+$", t))]

    await until(lambda: _count(shown, len(in_order)), 15, what="the burst on the page")
    assert await shown() == in_order  # each once, in seq order
    batches = [json.loads(f[2:])[1] for f in frames if f.startswith('42["batch",')]
    assert batches, "no batch event reached the page"
    assert all(len(b) > 1 and all(isinstance(e, list) and len(e) == 2 for e in b) for b in batches)
    assert errors == [], errors


async def _count(shown, n: int) -> bool:
    return len(await shown()) >= n
