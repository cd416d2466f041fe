"""Rooms acceptance: chat, reactions and viewer counts, through real Socket.IO clients over real sockets
against the real server and a real PostgreSQL (the demo seed: stream 'demo', seller 'demo-seller')."""
from __future__ import annotations

import asyncio

from tests.rooms.harness import SELLER, err

# ---------------------------------------------------------------- chat


async def test_several_viewers_see_every_message_once_in_seq_order(live):
    alice, bob, carol = [await live.viewer(n) for n in ("alice", "bob", "carol")]
    anon = await live.viewer()
    talkers = (alice, bob, carol)
    # everyone talks at once: 3 x 3 messages, concurrently
    acks = await asyncio.gather(*[v.say(f"{v.name} #{i}") for i in range(3) for v in talkers])
    assert all(a["ok"] for a in acks), acks
    sent = {a["message"]["id"]: a["message"] for a in acks}
    assert len(sent) == 9
    await live.barrier(*talkers, anon)
    for v in (*talkers, anon):
        got = v.events["chat:new"]
        assert len(got) == 9, [g["text"] for g in got]
        assert sorted(g["id"] for g in got) == sorted(sent)  # each message exactly once
        seqs = [g["seq"] for g in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == 9  # in seq order
        for g in got:
            assert g["text"] == sent[g["id"]]["text"] and g["seq"] == sent[g["id"]]["seq"]
            assert g["user"]["name"] == g["text"].split(" ")[0]
    # per sender, the order of sending is the order of seq
    for v in talkers:
        mine = [g["text"] for g in anon.events["chat:new"] if g["user"]["name"] == v.name]
        assert mine == [f"{v.name} #{i}" for i in range(3)]


async def test_anonymous_viewer_is_refused_chat_and_reactions(live):
    anon = await live.viewer()
    assert anon.joined["ok"] and anon.joined["stream"]["slug"] == "demo"
    assert err(await anon.say("hello")) == "unauthorized"
    assert err(await anon.call("reaction", {"stream_id": "demo", "kind": "heart"})) == "unauthorized"
    # a reaction without joining first is refused too
    loner = await live.viewer("loner", join=None)
    assert err(await loner.call("reaction", {"stream_id": "demo", "kind": "heart"})) == "invalid"


async def test_text_is_trimmed_and_length_checked(live):
    v = await live.viewer("trimmer")
    watcher = await live.viewer("watcher")
    ack = await v.say("\n\t  spaced out  \t")
    assert ack["ok"] and ack["message"]["text"] == "spaced out"
    assert (await watcher.wait_for("chat:new"))["text"] == "spaced out"
    for bad in ("", "   ", "\n\t", "x" * 501, " " + "y" * 501 + " ", "z" * 2001):
        assert err(await v.say(bad)) == "invalid", len(bad)
    ack = await v.say("  " + "w" * 500 + "  ")  # 500 after trimming: fine
    assert ack["ok"] and len(ack["message"]["text"]) == 500
    await live.barrier(watcher)
    assert [len(m["text"]) for m in watcher.events["chat:new"]] == [10, 500]


async def test_blocked_words_default_and_sellers_own(live):
    v = await live.viewer("potty")
    seller = await live.seller()
    _, seller_token = await live.user(SELLER, "seller")
    for text in ("oh shit", "SHIT happens", "well, Shit!", "kys"):
        assert err(await v.say(text)) == "invalid", text
    assert (await v.say("shitake mushrooms are fine"))["ok"]  # whole words only
    # the seller's own list, set over REST, applies at once to the live room
    status, body = await live.api("PATCH", "/livestreams/demo", seller_token, {"blocked_words": ["Banana", "kiwi"]})
    assert status == 200, body
    assert err(await v.say("I like banana")) == "invalid"
    assert err(await v.say("KIWI!")) == "invalid"
    assert err(await seller.say("banana for scale")) == "invalid"  # the seller too
    assert (await v.say("apples are fine"))["ok"]
    # nobody else can change the list
    _, other = await live.user("rival", "seller")
    _, customer = await live.user("someone")
    assert (await live.api("PATCH", "/livestreams/demo", other, {"blocked_words": []}))[0] == 403
    assert (await live.api("PATCH", "/livestreams/demo", customer, {"blocked_words": []}))[0] == 403
    assert (await live.api("PATCH", "/livestreams/demo", None, {"blocked_words": []}))[0] == 401
    assert err(await v.say("banana again")) == "invalid"
    # clearing the list lifts it (the defaults stay)
    assert (await live.api("PATCH", "/livestreams/demo", seller_token, {"blocked_words": []}))[0] == 200
    assert (await v.say("banana at last"))["ok"]
    assert err(await v.say("shit")) == "invalid"


async def test_per_user_rate_limit(live):
    chatty = await live.viewer("chatty")
    calm = await live.viewer("calm")
    for i in range(5):
        assert (await chatty.say(f"msg {i}"))["ok"], i
    assert err(await chatty.say("one too many")) == "rate_limited"
    assert err(await chatty.say("still too many")) == "rate_limited"
    assert (await calm.say("others are not affected"))["ok"]
    await calm.wait_for("chat:new", lambda d: d["text"] == "others are not affected")
    await live.barrier(calm)
    assert "one too many" not in [m["text"] for m in calm.events["chat:new"]]


async def test_slow_mode(live):
    seller = await live.seller()
    v = await live.viewer("slowpoke")
    w = await live.viewer("other-viewer")
    assert (await seller.call("chat:slowmode", {"stream_id": "demo", "seconds": 30}))["ok"]
    announced = await v.wait_for("chat:slowmode")
    assert announced["seconds"] == 30
    assert (await v.say("first"))["ok"]
    assert err(await v.say("second")) == "rate_limited"
    assert (await w.say("first of mine"))["ok"]  # per user
    for i in range(3):  # the seller is exempt
        assert (await seller.say(f"seller {i}"))["ok"]
    # a join snapshot shows the slow mode
    late = await live.viewer("late")
    assert late.joined["stream"]["slow_mode_seconds"] == 30
    # switching it off lets the viewer talk again
    assert (await seller.call("chat:slowmode", {"stream_id": "demo", "seconds": 0}))["ok"]
    await v.wait_for("chat:slowmode", lambda d: d["seconds"] == 0)
    assert (await v.say("second, later"))["ok"]
    assert err(await seller.call("chat:slowmode", {"stream_id": "demo", "seconds": -1})) == "invalid"
    assert err(await seller.call("chat:slowmode", {"stream_id": "demo", "seconds": 3601})) == "invalid"


async def test_slow_mode_set_over_rest_is_announced_to_the_room(live):
    seller = await live.seller()
    v = await live.viewer("rest-slowpoke")
    status, body = await live.api("PATCH", "/livestreams/demo", seller.token, {"slow_mode_seconds": 20})
    assert status == 200 and body["slow_mode_seconds"] == 20
    assert (await v.wait_for("chat:slowmode"))["seconds"] == 20
    assert (await v.say("one"))["ok"]
    assert err(await v.say("two")) == "rate_limited"
    # a PATCH that leaves the slow mode as it is announces nothing more
    assert (await live.api("PATCH", "/livestreams/demo", seller.token, {"title": "Same slow mode"}))[0] == 200
    await live.barrier(v)
    assert [d["seconds"] for d in v.events["chat:slowmode"]] == [20]


async def test_chat_on_an_ended_or_scheduled_stream(live):
    seller = await live.seller()
    v = await live.viewer("late-talker")
    assert (await v.say("before the end"))["ok"]
    ack = await seller.call("stream:end", {"stream_id": "demo"})
    assert ack["ok"] and ack["status"] == "ended"
    status = await v.wait_for("stream:status")
    assert status["status"] == "ended"
    assert err(await v.say("after the end")) == "stream_not_live"
    assert err(await seller.say("after the end")) == "stream_not_live"
    assert err(await seller.call("stream:start", {"stream_id": "demo"})) == "conflict"  # no restart
    # a scheduled (not yet live) stream refuses chat as well
    _, token = await live.user(SELLER, "seller")
    status, created = await live.api("POST", "/livestreams", token, {"title": "Later", "slug": "later"})
    assert status == 201, created
    assert (await v.join("later"))["ok"]
    assert err(await v.say("too early", stream="later")) == "stream_not_live"


# ---------------------------------------------------------------- reactions


async def test_reactions_are_coalesced(live):
    fan = await live.viewer("fan")
    watchers = [await live.viewer(f"watcher{i}") for i in range(2)] + [await live.viewer()]
    acks = await asyncio.gather(*[fan.call("reaction", {"stream_id": "demo", "kind": "heart"}) for _ in range(8)])
    assert all(a == {"ok": True} for a in acks), acks
    for w in (*watchers, fan):
        await w.wait_for("reactions", lambda d: d["totals"]["heart"] >= 8)
        got = w.events["reactions"]
        assert sum(e["counts"].get("heart", 0) for e in got) == 8
        assert 1 <= len(got) < 8  # coalesced: far fewer events than reactions
        assert got[-1]["totals"]["heart"] == 8
        assert all(set(e["counts"]) <= {"heart"} for e in got)
    # totals are part of a later join's snapshot
    late = await live.viewer("late-fan")
    assert late.joined["reactions"]["heart"] == 8 and late.joined["reactions"]["fire"] == 0
    # kinds are checked (by another user: the fan has used up most of this second's reactions)
    checker = await live.viewer("kind-checker")
    for kind in ("poop", "", "HEART", "heart " * 5, 1, None):
        assert err(await checker.call("reaction", {"stream_id": "demo", "kind": kind})) == "invalid", kind
    assert err(await checker.call("reaction", {"stream_id": "demo"})) == "invalid"


async def test_reaction_rate_limit(live):
    fan = await live.viewer("eager-fan")
    acks = await asyncio.gather(*[fan.call("reaction", {"stream_id": "demo", "kind": "fire"}) for _ in range(15)])
    codes = [err(a) for a in acks]
    assert codes.count(None) <= 10 and "rate_limited" in codes, codes
    assert set(codes) <= {None, "rate_limited"}


# ---------------------------------------------------------------- viewer counts


async def test_viewer_counts_follow_joins_leaves_and_drops(live, fast_counts):
    observer = await live.viewer("observer")
    await observer.wait_for("viewer:count", lambda d: d["count"] == 1)
    a = await live.viewer("va")
    b = await live.viewer("vb")
    c = await live.viewer()  # anonymous viewers count too
    d = await live.viewer("vd")
    await observer.wait_for("viewer:count", lambda e: e["count"] == 5)
    # a leave
    mark = observer.mark("viewer:count")
    assert (await b.call("leave", {"stream_id": "demo"}))["ok"]
    await observer.wait_after("viewer:count", mark, lambda e: e["count"] == 4)
    # a clean disconnect
    mark = observer.mark("viewer:count")
    await c.close()
    await observer.wait_after("viewer:count", mark, lambda e: e["count"] == 3)
    # a dropped connection: the client's TCP connection is cut without any close handshake
    mark = observer.mark("viewer:count")
    d.sio.eio.ws._conn.transport.abort()
    await observer.wait_after("viewer:count", mark, lambda e: e["count"] == 2)
    # joining twice from one socket is one viewer
    mark = observer.mark("viewer:count")
    assert (await a.join())["ok"]
    e = await live.viewer("ve")
    await observer.wait_after("viewer:count", mark, lambda x: x["count"] == 3)
    status, body = await live.api("GET", "/livestreams/demo")
    assert status == 200 and body["peak_viewers"] >= 5 and body["viewers"] == 3
    state = await live.demo_state()
    assert all(x["stream_id"] == state.id for x in observer.events["viewer:count"])
    # a join snapshot carries the current count
    assert e.joined["viewers"] >= 2


async def test_viewer_count_drops_to_zero_when_everyone_leaves(live):
    a = await live.viewer("first")
    b = await live.viewer()
    await live.services.rooms.publish_counts()
    assert (await live.api("GET", "/livestreams/demo"))[1]["viewers"] == 2
    for v in (a, b):
        assert (await v.call("leave", {"stream_id": "demo"}))["ok"]
    await live.services.rooms.publish_counts()
    status, body = await live.api("GET", "/livestreams/demo")
    assert body["viewers"] == 0 and body["peak_viewers"] >= 2
