"""Rooms acceptance: recovery after a reconnect, slow consumers, bad input, and chat history that survives a
restart; real clients over real sockets (python-socketio, and a raw websocket client), real PostgreSQL."""
from __future__ import annotations

import asyncio

import pytest

import live.rooms.transport as transport
from tests.rooms.harness import RawWs, err, start_live

# ---------------------------------------------------------------- recovery


async def test_reconnect_recovers_exactly_the_missed_events(live):
    talkers = [await live.viewer(n) for n in ("t1", "t2", "t3")]
    r = await live.viewer("roamer")
    assert (await talkers[0].say("before"))["ok"]
    await live.barrier(r)
    epoch = r.joined["epoch"]
    last_seq = max([r.joined["seq"], *(d["seq"] for evs in r.events.values() for d in evs
                                       if isinstance(d, dict) and "seq" in d)])
    await r.close()
    missed = [(await t.say(f"missed {i}"))["message"] for i, t in enumerate(talkers)]
    back = await live.viewer("roamer", join=None)
    ack = await back.join(last_seq=last_seq, epoch=epoch)
    assert ack["ok"] and ack["recovered"] is True and ack["epoch"] == epoch
    assert "chat" not in ack and "stream" not in ack  # no snapshot when recovered
    events = ack["events"]
    assert all(isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) for e in events)
    assert {name for name, _ in events} <= {"chat:new", "viewer:count"}  # counts may change meanwhile
    chat = [data for name, data in events if name == "chat:new"]
    assert [m["id"] for m in chat] == [m["id"] for m in missed]
    assert [m["text"] for m in chat] == ["missed 0", "missed 1", "missed 2"]
    recovered_seqs = [data["seq"] for _, data in events]
    assert recovered_seqs == sorted(recovered_seqs) and min(recovered_seqs) > last_seq
    assert ack["seq"] == max(recovered_seqs)
    # then later messages arrive live, with no seq seen twice across the recovered and live events
    later = [(await t.say(f"later {i}"))["message"] for i, t in enumerate(talkers)]
    await live.barrier(back)
    live_chat = back.events["chat:new"]
    assert [m["id"] for m in live_chat] == [m["id"] for m in later]
    live_seqs = [d["seq"] for evs in back.events.values() for d in evs if isinstance(d, dict) and "seq" in d]
    assert min(live_seqs) > ack["seq"]
    assert len(set(recovered_seqs) | set(live_seqs)) == len(recovered_seqs) + len(live_seqs)


async def test_recovery_with_nothing_missed(live):
    r = await live.viewer("steady")
    ack = await r.join(last_seq=r.joined["seq"], epoch=r.joined["epoch"])
    assert ack["ok"] and ack["recovered"] is True and ack["events"] == [] and ack["seq"] == r.joined["seq"]


async def test_too_old_or_wrong_epoch_gets_a_snapshot(live):
    r = await live.viewer("gone-long")
    talker = await live.viewer("talker")
    assert (await talker.say("remember me"))["ok"]
    seq, epoch = r.joined["seq"], r.joined["epoch"]
    await r.close()
    state = await live.demo_state()
    for i in range(1100):  # more than the broker's history of 1000 events
        await live.services.rooms.publish(state, "test:filler", {"i": i})
    back = await live.viewer("gone-long", join=None)
    for extra in ({"last_seq": seq, "epoch": epoch},  # too old
                  {"last_seq": seq + 1100, "epoch": "0123456789ab"},  # another server's epoch
                  {"last_seq": 10 ** 9, "epoch": epoch},  # from the future
                  {"last_seq": seq + 1100}):  # no epoch
        ack = await back.join(**extra)
        assert ack["ok"] and ack["recovered"] is False, extra
        assert "events" not in ack
        assert ack["stream"]["slug"] == "demo" and ack["spotlight"] is not None
        assert "remember me" in [m["text"] for m in ack["chat"]]
        assert ack["epoch"] == epoch and ack["seq"] >= seq + 1100
    assert err(await back.join(last_seq=-1, epoch=epoch)) == "invalid"
    assert err(await back.join(last_seq="1", epoch=epoch)) == "invalid"


# ---------------------------------------------------------------- slow consumers


async def test_a_client_that_never_reads_is_dropped(live, monkeypatch, fast_counts):
    monkeypatch.setattr(transport, "MAX_PENDING_BYTES", 64 * 1024)
    normal = await live.viewer("normal")
    host, port = live.client.server.host, live.client.server.port
    raw = await RawWs.connect(host, port, rcvbuf=4096)
    try:
        await raw.open_namespace()
        ack = await raw.call(1, "join", {"stream_id": "demo"})
        assert ack["ok"] is True and ack["stream"]["slug"] == "demo"
        await normal.wait_for("viewer:count", lambda d: d["count"] == 2)
        mark = normal.mark("viewer:count")
        conns = len(live.gateway.conns)
        # from now on the raw client reads nothing; the room gets a flood of large events
        state = await live.demo_state()
        blob = "x" * 8000
        sent = 0
        while live.services.hub.stats["dropped"] == 0 and sent < 6000:
            for _ in range(6):  # ~48 KB a round, less than the limit: only a client that stopped reading lags
                await live.services.rooms.publish(state, "test:blob", {"i": sent, "blob": blob})
                sent += 1
            await normal.wait_for("test:blob", lambda d, last=sent - 1: d["i"] == last)
        assert live.services.hub.stats["dropped"] == 1, f"not dropped after {sent} events"
        # the server cut it off: its connection is closed and it left the room
        assert await raw.drained_to_eof()
        await normal.wait_after("viewer:count", mark, lambda d: d["count"] == 1)
        assert len(live.gateway.conns) == conns - 1
        # the normal viewer received every event, in order
        await live.barrier(normal)
        got = [d["i"] for d in normal.events["test:blob"]]
        assert got == list(range(sent))
        assert (await normal.say("still fine"))["ok"]
    finally:
        raw.close()


# ---------------------------------------------------------------- bad input


@pytest.fixture
async def unlimited(tmp_path, dsn, aiohttp_client):
    """The live app without the per-socket event limit to speak of (for tests sending many events in a row)."""
    lv = await start_live(tmp_path, dsn, aiohttp_client, socket_event_rate=10_000, socket_event_burst=10_000)
    yield lv
    await lv.close_viewers()


async def test_bad_input_never_breaks_the_room(unlimited, errors_logged):
    live = unlimited
    v = await live.viewer("fuzzer")
    watcher = await live.viewer("bystander")
    # unknown events and non-object payloads
    assert err(await v.call("no:such:event", {})) == "invalid"
    assert err(await v.call("__proto__", {})) == "invalid"
    for event in ("join", "leave", "chat:send", "chat:delete", "user:mute", "user:ban", "chat:slowmode",
                  "moderator:add", "moderator:remove", "reaction", "stream:start", "stream:end",
                  "product:highlight", "product:unhighlight"):
        for payload in ("demo", 42, [1, 2], None, True, 1.5):
            ack = await v.sio.call(event, payload, timeout=10)
            assert err(ack) == "invalid", (event, payload, ack)
    # wrong types and values
    for event, payload in (
            ("join", {"stream_id": 5}), ("join", {"stream_id": ""}), ("join", {"stream_id": "x" * 500}),
            ("join", {"stream_id": "demo", "last_seq": "3", "epoch": "e"}),
            ("join", {"stream_id": "demo", "last_seq": 1, "epoch": 7}),
            ("chat:send", {"stream_id": "demo", "text": ["a"]}), ("chat:send", {"stream_id": "demo", "text": None}),
            ("chat:send", {"stream_id": "demo", "text": {"$gt": ""}}), ("chat:send", {"stream_id": "demo"}),
            ("chat:send", {"stream_id": ["demo"], "text": "hi"}),
            ("chat:delete", {"stream_id": "demo", "message_id": 0}), ("chat:delete", {"stream_id": "demo"}),
            ("user:mute", {"stream_id": "demo", "user_id": "'; DROP TABLE users; --", "seconds": 5}),
            ("user:mute", {"stream_id": "demo", "user_id": None, "seconds": True}),
            ("chat:slowmode", {"stream_id": "demo", "seconds": "10"}),
            ("reaction", {"stream_id": "demo", "kind": {"k": 1}}),
            ("product:highlight", {"stream_id": "demo", "product_id": 12}),
    ):
        assert err(await v.call(event, payload)) == "invalid", (event, payload)
    # unknown streams
    assert err(await v.join("no-such-stream")) == "not_found"
    assert err(await v.join("00000000-0000-4000-8000-000000000000")) == "not_found"
    assert err(await v.say("hi", stream="no-such-stream")) == "not_found"
    # bytes where text is expected: python-socketio sends a binary packet with an attachment
    assert err(await v.call("chat:send", {"stream_id": "demo", "text": b"hello bytes"})) == "invalid"
    assert err(await v.call("join", {"stream_id": b"demo"})) == "invalid"
    assert err(await v.call("no:such:event", b"\x00\x01")) == "invalid"
    assert (await v.say("text after bytes"))["ok"]  # the connection still works
    # 50 joins in a row from one (fresh) socket: refused after 10
    joiner = await live.viewer("joiner", join=None)
    codes = [err(await joiner.join()) for _ in range(50)]
    assert codes == [None] * 10 + ["rate_limited"] * 40, codes
    assert (await joiner.say("joined all the same"))["ok"]
    # no handler failed, nothing was logged as an error, and the room works
    await live.barrier(v, watcher)
    assert (await watcher.say("the room still works"))["ok"]
    assert (await v.wait_for("chat:new", lambda d: d["text"] == "the room still works"))
    assert errors_logged() == []


async def test_an_unexpected_failure_is_an_internal_ack(live, monkeypatch, errors_logged):
    v = await live.viewer("unlucky")

    async def broken(*_args, **_kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(live.services.chat, "send", broken)
    ack = await v.say("hello")
    assert err(ack) == "internal" and "boom" not in ack["error"]["message"]
    assert [e[0][0] for e in errors_logged()] == ["event_failed"]  # logged once, with its traceback
    monkeypatch.setattr(live.services.chat, "send", type(live.services.chat).send.__get__(live.services.chat))
    assert (await v.say("hello again"))["ok"]


async def test_connection_limits_and_bad_tokens(live):
    import socketio

    from tests.rooms.harness import RoomViewer

    with pytest.raises(socketio.exceptions.ConnectionError):
        await RoomViewer(live.base, "not-a-valid-token").connect()
    _, token = await live.user("demo-seller", "seller")
    for slug in ("s1", "s2", "s3"):
        assert (await live.api("POST", "/livestreams", token, {"title": slug, "slug": slug}))[0] == 201
    v = await live.viewer("hopper", join=None)
    assert [err(await v.join(s)) for s in ("demo", "s1", "s2", "s3")] == [None, None, None, "invalid"]
    assert (await v.call("leave", {"stream_id": "s1"}))["ok"]
    assert err(await v.join("s3")) is None
    assert err(await v.say("naming the stream")) is None
    assert err(await v.call("chat:send", {"text": "no stream id with three rooms"})) == "invalid"


async def test_oversized_payload_disconnects_only_that_client(live, errors_logged):
    v = await live.viewer("oversharer")
    watcher = await live.viewer("watcher")
    await v.sio.emit("chat:send", {"stream_id": "demo", "text": "x" * 17 * 1024})
    await asyncio.wait_for(v.disconnected.wait(), 10)
    assert (await watcher.say("still here"))["ok"]
    await live.barrier(watcher)
    again = await live.viewer("oversharer")
    assert (await again.say("back with a short one"))["ok"]
    assert errors_logged() == []


async def test_garbage_frames_from_a_raw_client(live, errors_logged):
    """Frames that are not valid Socket.IO close that client's connection; harmless oddities are ignored."""
    watcher = await live.viewer("watcher")
    host, port = live.client.server.host, live.client.server.port
    fatal = ["42", "42[", '42["join"', "42{}", "42[]", "42[1,2]", '42"join"', "42null", "4", "4garbage", "49",
             "4{}", '4"x"', "9", "x", "", "b!!!", "\u0000\u0001", "451-[1]", "4599-[\"join\",{}]",
             b"\x00\xff binary without a header", '451-["join",{"_placeholder":true,"num":0}]']
    harmless = ["6", "3", "41/nope,", '42/admin,["join",{}]', '42["join",{"stream_id":"demo"},1,2,3]']
    for junk in fatal + harmless:
        raw = await RawWs.connect(host, port)
        try:
            await raw.open_namespace()
            if isinstance(junk, bytes):
                raw.send(junk, binary=True)
            else:
                raw.send(junk)
            if junk.startswith('451-["join"') if isinstance(junk, str) else False:
                raw.send("4not the attachment")  # text where the attachment was expected
            if junk in fatal:
                assert await raw.drained_to_eof(), junk
            else:
                ack = await raw.call(7, "join", {"stream_id": "demo"})
                assert ack["ok"] is True, (junk, ack)
        finally:
            raw.close()
    assert (await watcher.say("unbothered"))["ok"]
    await live.barrier(watcher)
    assert errors_logged() == []


# ---------------------------------------------------------------- persistence across a restart


async def test_chat_history_survives_a_restart(tmp_path, dsn, aiohttp_client):
    first = await start_live(tmp_path, dsn, aiohttp_client)
    talkers = [await first.viewer(n) for n in ("p1", "p2", "p3")]
    sent = []
    for round_ in range(3):
        for t in talkers:
            sent.append((await t.say(f"{t.name} says {round_}"))["message"])
    deleted = sent.pop(4)
    seller = await first.seller()
    assert (await seller.call("chat:delete", {"stream_id": "demo", "message_id": deleted["id"]}))["ok"]
    old_epoch, old_seq = talkers[0].joined["epoch"], max(m["seq"] for m in sent)
    await first.close_viewers()
    await first.client.close()  # stops the app: pending chat is written

    second = await start_live(tmp_path, dsn, aiohttp_client)
    try:
        v = await second.viewer("returning", last_seq=old_seq, epoch=old_epoch)  # the old server's position
        snap = v.joined
        assert snap["recovered"] is False and snap["epoch"] != old_epoch
        assert [m["id"] for m in snap["chat"]] == [m["id"] for m in sent]
        assert [m["text"] for m in snap["chat"]] == [m["text"] for m in sent]
        assert [m["user"]["name"] for m in snap["chat"]] == [m["user"]["name"] for m in sent]
        status, body = await second.api("GET", "/livestreams/demo/chat")
        assert status == 200 and [m["id"] for m in body["items"]] == [m["id"] for m in sent]
        assert body["next_before"] is None
        # paging backwards with ?before=
        ids = [m["id"] for m in sent]
        pages, before = [], None
        while True:
            query = "?limit=3" + (f"&before={before}" if before else "")
            status, page = await second.api("GET", f"/livestreams/demo/chat{query}")
            assert status == 200 and len(page["items"]) <= 3
            pages.insert(0, [m["id"] for m in page["items"]])
            before = page["next_before"]
            if before is None:
                break
            assert before == page["items"][0]["id"]
        assert [i for p in pages for i in p] == ids
        assert (await second.api("GET", "/livestreams/demo/chat?before=0"))[0] == 400
        assert (await second.api("GET", "/livestreams/demo/chat?limit=500"))[0] == 400
        assert (await second.api("GET", "/livestreams/nope/chat"))[0] == 404
        # a new message after the restart joins the history
        assert (await v.say("after the restart"))["ok"]
        status, body = await second.api("GET", "/livestreams/demo/chat")
        assert [m["text"] for m in body["items"]][-2:] == [sent[-1]["text"], "after the restart"]
    finally:
        await second.close_viewers()
