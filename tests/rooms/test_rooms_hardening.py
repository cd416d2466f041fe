"""Rooms hardening (issue 11): text the database cannot store is refused at the edge, the chat writer never lets
one bad row block the others, nobody below admin mutes or bans an admin, and every socket event is rate limited
per socket. Real Socket.IO clients over real sockets, real server, real PostgreSQL."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone

from tests.helpers import until
from tests.rooms.harness import RawWs, err, start_live


def _hostport(live) -> tuple[str, int]:
    url = live.client.make_url("/")
    return url.host, url.port


async def _stored_texts(live, stream: str = "demo") -> list[str]:
    status, body = await live.api("GET", f"/livestreams/{stream}/chat?limit=200")
    assert status == 200, body
    return [m["text"] for m in body["items"]]


# ---------------------------------------------------------------- item 3: text the database cannot store


async def test_nul_and_control_characters_are_refused_invalid(live):
    v = await live.viewer("nul-sender")
    watcher = await live.viewer("nul-watcher")
    seller = await live.seller()
    for bad in ("a\x00b", "\x00", "bell\x07", "esc\x1b[31m red", "vt\x0b"):
        ack = await v.say(bad)
        assert err(ack) == "invalid", (bad, ack)
        assert "text" in ack["error"]["message"]
    # other text fields that reach the database or a lookup are held to the same rule
    ban = {"stream_id": "demo", "user_id": v.user_id, "reason": "spam\x00"}
    assert err(await seller.call("user:ban", ban)) == "invalid"
    assert err(await v.call("join", {"stream_id": "de\x00mo"})) == "invalid"
    assert err(await v.call("leave", {"stream_id": "demo\x00"})) == "invalid"
    # every event's payload, the cart's included
    variant = v.joined["spotlight"]["variants"][0]["id"]
    for bad in ({"stream_id": "de\x00mo"}, {"idempotency_key": "k\x00"}, {"idempotency_key": "\ud83d"}):
        ack = await v.call("cart:add", {"variant_id": variant, **bad})
        assert err(ack) == "invalid", (bad, ack)
    # ordinary text with tabs, newlines and emoji is fine
    ok = await v.say("two\tcolumns\nand a line 😀")
    assert ok["ok"], ok
    await live.barrier(watcher)
    assert [m["text"] for m in watcher.events["chat:new"]] == ["two\tcolumns\nand a line 😀"]
    # nothing blocked the writer: the good message is stored
    await live.services.chat_writer.flush()
    assert await _stored_texts(live) == ["two\tcolumns\nand a line 😀"]
    assert not live.services.chat_writer._rows


async def test_a_lone_surrogate_gets_invalid_and_the_connection_stays(live):
    """A client that cut an emoji in half (JSON `\\ud83d` alone) gets `invalid`, not a closed connection."""
    host, port = _hostport(live)
    _, token = await live.user("half-emoji")
    ws = await RawWs.connect(host, port)
    try:
        ws.send("40" + '{"token":"%s"}' % token)
        await ws.recv_until(lambda t: t.startswith("40"))
        assert (await ws.call(1, "join", {"stream_id": "demo"}))["ok"] is True
        ws.send('421["chat:send",{"stream_id":"demo","text":"cut \\ud83d"}]')
        text = await ws.recv_until(lambda t: t.startswith("431["))
        assert '"code":"invalid"' in text, text
        ws.send('422["join",{"stream_id":"\\udc00"}]')
        text = await ws.recv_until(lambda t: t.startswith("432["))
        assert '"code":"invalid"' in text, text
        ack = await ws.call(3, "chat:send", {"stream_id": "demo", "text": "still connected 😀"})
        assert ack["ok"] is True, ack
    finally:
        ws.close()


async def test_writer_sets_aside_rows_that_cannot_be_written(live):
    """A batch with rows PostgreSQL refuses is split until each bad row fails alone; bad rows are set aside
    (logged, counted in /metrics), every other row of every stream is stored, and later messages too."""
    services = live.services
    writer = services.chat_writer
    next(t for t in services._tasks if t.get_name() == "chat-writer").cancel()  # flush only when asked
    v = await live.viewer("steady")
    state = await live.demo_state()
    _, token = await live.user("demo-seller", "seller")
    assert (await live.api("POST", "/livestreams", token, {"title": "Other", "slug": "other-show"}))[0] == 201
    other = await services.rooms.streams.get("other-show")
    now = datetime.now(timezone.utc)
    good, bad = [], []
    for i in range(40):
        stream = state if i % 2 else other
        msg_id = await writer.next_id()
        if i in (7, 23):
            text = f"bad \x00 {i}"  # PostgreSQL text cannot hold NUL
            bad.append(msg_id)
        elif i == 31:
            text = "for a stream that does not exist"
            stream = None
            bad.append(msg_id)
        else:
            text = f"good {i}"
            good.append((stream.slug, text))
        writer.add(msg_id, stream.id if stream else str(uuid.uuid4()), v.user_id, text, i + 1, now)
    await writer.flush()
    assert not writer._rows and not writer._by_id  # nothing left waiting for a retry
    for slug in ("demo", "other-show"):
        assert sorted(await _stored_texts(live, slug)) == sorted(t for s, t in good if s == slug)
    assert writer.set_aside == 3
    # later messages are stored at once, the writer is not stuck on the bad rows
    assert (await v.say("after the bad rows"))["ok"]
    await writer.flush()
    assert "after the bad rows" in await _stored_texts(live)
    resp = await live.client.get("/metrics")
    body = await resp.text()
    line = next(ln for ln in body.splitlines() if ln.startswith("live_chat_rows_set_aside_total"))
    assert float(line.rsplit(" ", 1)[1]) == 3.0


async def test_writer_keeps_rows_while_the_database_is_away(live):
    """A write that fails because the database cannot be reached sets nothing aside: the rows wait, in order."""
    from db import Database
    from live.chat.writer import ChatWriter

    db = await Database.connect(live.services.db.dsn, min_size=1, max_size=2)
    writer = ChatWriter(db)
    state = await live.demo_state()
    user_id, _ = await live.user("patient")
    now = datetime.now(timezone.utc)
    for i in range(3):
        writer.add(await writer.next_id(), state.id, user_id, f"kept {i}", i + 1, now)
    await db.close()  # the pool is gone: every write fails before reaching PostgreSQL
    await writer.flush()
    assert [r[3] for r in writer._rows] == ["kept 0", "kept 1", "kept 2"] and writer.set_aside == 0
    back = await Database.connect(live.services.db.dsn, min_size=1, max_size=2)
    try:
        db.pool = back.pool  # the database is reachable again
        await writer.flush()
        assert writer._rows == [] and writer.set_aside == 0
        assert (await _stored_texts(live))[-3:] == ["kept 0", "kept 1", "kept 2"]
    finally:
        await back.close()


async def test_a_full_writer_buffer_is_counted(live, monkeypatch):
    """Past MAX_BUFFER rows waiting (the database away for long), messages are still broadcast but not kept for
    storing: each one is counted (live_chat_rows_dropped_total), not silently lost."""
    import live.chat.writer as writer_module

    next(t for t in live.services._tasks if t.get_name() == "chat-writer").cancel()
    monkeypatch.setattr(writer_module, "MAX_BUFFER", 2)
    v = await live.viewer("chatty")
    for i in range(4):
        assert (await v.say(f"message {i}"))["ok"]
    assert live.services.chat_writer.dropped == 2
    body = await (await live.client.get("/metrics")).text()
    line = next(ln for ln in body.splitlines() if ln.startswith("live_chat_rows_dropped_total"))
    assert float(line.rsplit(" ", 1)[1]) == 2.0
    await live.services.chat_writer.flush()
    assert await _stored_texts(live) == ["message 0", "message 1"]


# ---------------------------------------------------------------- item 15: admins are out of reach of moderators


async def test_nobody_below_admin_can_mute_or_ban_an_admin(live):
    seller = await live.seller()
    mod = await live.viewer("the-mod")
    admin = await live.viewer("site-admin", "admin")
    other_admin = await live.viewer("other-admin", "admin")
    target = await live.viewer("plain-target")
    assert (await seller.call("moderator:add", {"stream_id": "demo", "user_id": mod.user_id}))["ok"]
    for actor in (mod, seller):
        ack = await actor.call("user:mute", {"stream_id": "demo", "user_id": admin.user_id, "seconds": 60})
        assert err(ack) == "forbidden", ack
        ack = await actor.call("user:ban", {"stream_id": "demo", "user_id": admin.user_id})
        assert err(ack) == "forbidden", ack
    state = await live.demo_state()
    assert admin.user_id not in state.bans and admin.user_id not in state.mutes
    assert (await admin.say("still talking"))["ok"]
    # an admin may, and moderators still act on everyone else
    assert (await other_admin.call("user:mute", {"stream_id": "demo", "user_id": admin.user_id, "seconds": 5}))["ok"]
    assert (await mod.call("user:mute", {"stream_id": "demo", "user_id": target.user_id, "seconds": 5}))["ok"]
    assert (await mod.call("user:ban", {"stream_id": "demo", "user_id": target.user_id}))["ok"]


# ---------------------------------------------------------------- item 9: every event, per socket


async def test_every_event_is_rate_limited_per_socket(tmp_path, dsn, aiohttp_client):
    lv = await start_live(tmp_path, dsn, aiohttp_client, socket_event_rate=5, socket_event_burst=10,
                          socket_flood_disconnect=30)
    try:
        flooder = await lv.viewer(join=None)
        bystander = await lv.viewer(join=None)
        unknown = {"stream_id": "no-such-stream"}  # each would cost a database look-up
        acks = await asyncio.gather(*[flooder.call("leave", unknown) for _ in range(20)])
        codes = [err(a) for a in acks]
        assert codes.count("not_found") <= 11 and codes.count("rate_limited") >= 9, codes
        limited = next(a for a in acks if a["error"]["code"] == "rate_limited")
        assert set(limited["error"]) == {"code", "message", "retry_after"}
        assert 0 < limited["error"]["retry_after"] <= 1.0
        # the other socket is not affected; unknown events and bad payloads count as events too
        assert err(await bystander.call("leave", unknown)) == "not_found"
        assert err(await flooder.call("no:such:event", {})) == "rate_limited"
        assert err(await flooder.sio.call("join", "not an object", timeout=10)) == "rate_limited"
        # waiting as told lets it through again
        await asyncio.sleep(limited["error"]["retry_after"] + 0.25)
        assert err(await flooder.call("leave", unknown)) == "not_found"
        # a socket that keeps flooding is disconnected by the server (a Socket.IO disconnect: no reconnect)
        started = time.monotonic()
        for _ in range(60):
            flooder.sio.start_background_task(flooder.sio.emit, "leave", unknown)
        await asyncio.wait_for(flooder.disconnected.wait(), 10)
        assert flooder.disconnect_reason == flooder.sio.reason.SERVER_DISCONNECT  # not a transport close
        assert time.monotonic() - started < 10
        await until(lambda: len(lv.gateway.conns) == 1, 2.5, step=0.05)
        assert len(lv.gateway.conns) == 1
        assert err(await bystander.call("leave", unknown)) == "not_found"
        joined = await bystander.call("join", {"stream_id": "demo"})
        assert joined["ok"], joined
    finally:
        await lv.close_viewers()


async def test_ordinary_use_is_not_limited(live):
    """Chatting at the chat limit, reacting and joining stay well under the per-socket limit."""
    v = await live.viewer("regular")
    for i in range(5):
        assert (await v.say(f"hello {i}"))["ok"]
    for _ in range(10):
        assert (await v.call("reaction", {"stream_id": "demo", "kind": "heart"}))["ok"]
    for _ in range(5):
        assert (await v.sync()) is None


async def test_a_delete_or_a_read_during_a_write_in_flight_is_not_lost(live, monkeypatch):
    """The writer's batch is on its way to PostgreSQL (its values already sent) when a moderator deletes one of its
    messages and a reader asks for the history: the delete waits for that write and then deletes the stored row,
    and the reader's flush waits for it too, so neither sees the batch half-done."""
    from db import chat as chat_db

    writer = live.services.chat_writer
    seller = await live.seller()
    v = await live.viewer("hasty")
    gate, entered = asyncio.Event(), asyncio.Event()
    real_insert = chat_db.insert_many

    async def slow_insert(conn, rows):
        entered.set()
        await gate.wait()
        await real_insert(conn, rows)

    monkeypatch.setattr(chat_db, "insert_many", slow_insert)
    doomed = (await v.say("oops, wrong price"))["message"]
    kept = (await v.say("the right price is 12"))["message"]
    flushing = asyncio.create_task(writer.flush())
    await asyncio.wait_for(entered.wait(), 5)  # the batch is in flight, held before PostgreSQL has it
    deleting = asyncio.create_task(seller.call("chat:delete", {"stream_id": "demo", "message_id": doomed["id"]}))
    reading = asyncio.create_task(live.api("GET", "/livestreams/demo/chat"))
    await asyncio.sleep(0.3)
    assert not deleting.done() and not reading.done()  # both wait for the write in flight
    gate.set()
    await flushing
    assert (await asyncio.wait_for(deleting, 5))["ok"]
    status, body = await asyncio.wait_for(reading, 5)
    assert status == 200 and kept["id"] in [m["id"] for m in body["items"]]  # said before the read: it is there
    assert "oops, wrong price" not in await _stored_texts(live)  # and the delete reached the stored row
