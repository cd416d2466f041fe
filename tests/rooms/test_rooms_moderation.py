"""Rooms acceptance: who may moderate and control a stream, what mute, ban and delete do, and the seller's
spotlight and stock updates; real Socket.IO clients over real sockets, real server, real PostgreSQL."""
from __future__ import annotations

from tests.rooms.harness import SELLER, err

SELLER_ONLY = ("moderator:add", "moderator:remove", "stream:start", "stream:end", "product:highlight",
               "product:unhighlight")
MODERATOR_OK = ("chat:delete", "user:mute", "user:ban", "chat:slowmode")


def payloads(target_user: str, message_id: int, product_id: str) -> dict[str, dict]:
    """A well-formed payload for every seller and moderator event (so only the permission can refuse it)."""
    base = {"stream_id": "demo"}
    return {
        "chat:delete": {**base, "message_id": message_id},
        "user:mute": {**base, "user_id": target_user, "seconds": 60},
        "user:ban": {**base, "user_id": target_user, "reason": "spam"},
        "chat:slowmode": {**base, "seconds": 30},
        "moderator:add": {**base, "user_id": target_user},
        "moderator:remove": {**base, "user_id": target_user},
        "stream:start": {**base},
        "stream:end": {**base},
        "product:highlight": {**base, "product_id": product_id},
        "product:unhighlight": {**base},
    }


async def test_seller_and_moderator_events_are_forbidden_to_others(live):
    target = await live.viewer("target")
    msg = (await target.say("a message to delete"))["message"]
    plain = await live.viewer("plain")
    rival = await live.viewer("rival", "seller")  # the seller of another stream
    _, rival_token = await live.user("rival", "seller")
    status, _ = await live.api("POST", "/livestreams", rival_token, {"title": "Rival show", "slug": "rival-show"})
    assert status == 201
    anon = await live.viewer()
    before = (await live.api("GET", "/livestreams/demo"))[1]
    products = (await live.api("GET", "/livestreams/demo/products"))[1]["items"]
    other_product = next(p["id"] for p in products if p["id"] != before["spotlight_product_id"])
    events = payloads(target.user_id, msg["id"], other_product)
    assert set(events) == set(SELLER_ONLY) | set(MODERATOR_OK)
    for who in (plain, rival):
        for event, data in events.items():
            assert err(await who.call(event, data)) == "forbidden", (who.name, event)
    for event, data in events.items():
        assert err(await anon.call(event, data)) == "unauthorized", event
    # nothing happened
    await live.barrier(target, plain)
    for v in (target, plain):
        for event in ("chat:deleted", "user:muted", "user:banned", "chat:slowmode", "moderator:added",
                      "moderator:removed", "stream:status", "product:highlighted", "product:unhighlighted"):
            assert v.events.get(event, []) == [], event
    after = (await live.api("GET", "/livestreams/demo"))[1]
    assert after["status"] == "live" and after["spotlight_product_id"] == before["spotlight_product_id"]
    assert after["slow_mode_seconds"] == 0
    assert (await target.say("still here, not muted"))["ok"]
    chat = (await live.api("GET", "/livestreams/demo/chat"))[1]["items"]
    assert msg["id"] in [m["id"] for m in chat]


async def test_moderator_can_delete_mute_ban_but_not_run_the_stream(live):
    seller = await live.seller()
    mod = await live.viewer("mod")
    v1, v2, v3 = [await live.viewer(n) for n in ("v1", "v2", "v3")]
    assert (await seller.call("moderator:add", {"stream_id": "demo", "user_id": mod.user_id}))["ok"]
    assert (await v1.wait_for("moderator:added"))["user_id"] == mod.user_id
    # delete
    msg = (await v1.say("delete me"))["message"]
    assert (await mod.call("chat:delete", {"stream_id": "demo", "message_id": msg["id"]}))["ok"]
    assert (await v2.wait_for("chat:deleted"))["id"] == msg["id"]
    written = (await v1.say("delete me once written"))["message"]
    await live.services.chat_writer.flush()  # now in the database, where row-level security applies
    assert (await mod.call("chat:delete", {"stream_id": "demo", "message_id": written["id"]}))["ok"]
    history = (await live.api("GET", "/livestreams/demo/chat"))[1]["items"]
    assert {msg["id"], written["id"]}.isdisjoint(m["id"] for m in history)
    # mute
    ack = await mod.call("user:mute", {"stream_id": "demo", "user_id": v2.user_id, "seconds": 120})
    assert ack["ok"] and ack["until"] > 0
    assert err(await v2.say("hello?")) == "muted"
    # ban
    assert (await mod.call("user:ban", {"stream_id": "demo", "user_id": v3.user_id}))["ok"]
    assert err(await v3.say("hello?")) == "banned"
    # slow mode, from which moderators are exempt like the seller
    assert (await mod.call("chat:slowmode", {"stream_id": "demo", "seconds": 60}))["ok"]
    assert (await v1.wait_for("chat:slowmode"))["seconds"] == 60
    assert err(await v1.say("too soon")) == "rate_limited"
    assert (await live.api("GET", "/livestreams/demo"))[1]["slow_mode_seconds"] == 60
    assert (await mod.say("mod 1"))["ok"] and (await mod.say("mod 2"))["ok"]
    # but cannot run the stream, appoint moderators, or act on the seller
    products = (await live.api("GET", "/livestreams/demo/products"))[1]["items"]
    for event, data in payloads(v1.user_id, msg["id"], products[1]["id"]).items():
        if event in SELLER_ONLY:
            assert err(await mod.call(event, data)) == "forbidden", event
    mute_seller = {"stream_id": "demo", "user_id": seller.user_id, "seconds": 60}
    assert err(await mod.call("user:mute", mute_seller)) == "forbidden"
    assert err(await mod.call("user:ban", {"stream_id": "demo", "user_id": seller.user_id})) == "forbidden"
    assert (await live.api("GET", "/livestreams/demo"))[1]["status"] == "live"
    # a moderator of this stream is nobody on another stream
    _, token = await live.user(SELLER, "seller")
    assert (await live.api("POST", "/livestreams", token, {"title": "Second", "slug": "second"}))[0] == 201
    assert err(await mod.call("chat:slowmode", {"stream_id": "second", "seconds": 5})) == "forbidden"
    # removed: powers gone
    assert (await seller.call("moderator:remove", {"stream_id": "demo", "user_id": mod.user_id}))["ok"]
    assert (await v1.wait_for("moderator:removed"))["user_id"] == mod.user_id
    msg2 = (await seller.say("keep me"))["message"]
    assert err(await mod.call("chat:delete", {"stream_id": "demo", "message_id": msg2["id"]})) == "forbidden"


async def test_mute(live):
    seller = await live.seller()
    loud = await live.viewer("loud")
    other = await live.viewer("other")
    assert (await loud.say("before the mute"))["ok"]
    ack = await seller.call("user:mute", {"stream_id": "demo", "user_id": loud.user_id, "seconds": 300})
    assert ack["ok"]
    muted = await other.wait_for("user:muted")
    assert muted["user_id"] == loud.user_id and muted["seconds"] == 300
    refused = await loud.say("after the mute")
    assert err(refused) == "muted"
    assert (await other.say("others still talk"))["ok"]
    # still muted after leaving and joining again
    assert (await loud.join())["ok"]
    assert err(await loud.say("again")) == "muted"
    for bad in ({"user_id": loud.user_id, "seconds": 0}, {"user_id": "nope", "seconds": 5},
                {"user_id": loud.user_id}, {"user_id": loud.user_id, "seconds": "5"}):
        assert err(await seller.call("user:mute", {"stream_id": "demo", **bad})) == "invalid", bad


async def test_ban_removes_the_viewer_from_the_room(live):
    seller = await live.seller()
    bad = await live.viewer("troll")
    second_tab = await live.viewer("troll")  # the same user on a second connection
    good = await live.viewer("good")
    assert (await bad.say("spam"))["ok"]
    await live.barrier(bad, second_tab, good)
    ack = await seller.call("user:ban", {"stream_id": "demo", "user_id": bad.user_id, "reason": "spam"})
    assert ack["ok"]
    assert (await good.wait_for("user:banned"))["user_id"] == bad.user_id
    # the banned user's own connections are told why they left the room
    for v in (bad, second_tab):
        told = await v.wait_for("user:banned")
        assert told == {"stream_id": good.joined["stream"]["id"], "user_id": bad.user_id}
    # the room goes on without the banned user's connections
    marks = {v: v.mark("chat:new") for v in (bad, second_tab)}
    assert (await good.say("after the ban"))["ok"]
    await live.barrier(good)
    for v in (bad, second_tab):
        await v.sync()
        assert v.events["chat:new"][marks[v]:] == []
        assert not [d for d in v.events.get("test:barrier", []) if d["n"] == 2]
    assert err(await bad.say("let me in")) == "banned"
    assert err(await bad.join()) == "banned"
    assert err(await second_tab.join()) == "banned"
    assert err(await bad.call("reaction", {"stream_id": "demo", "kind": "heart"})) == "invalid"  # not in the room
    # a new connection is refused as well (the ban is stored, not only in memory)
    fresh = await live.viewer("troll", join=None)
    assert err(await fresh.join()) == "banned"
    assert err(await fresh.join(last_seq=0, epoch=live.services.broker.epoch)) == "banned"
    # the seller cannot be banned; an unknown stream is not_found
    assert err(await seller.call("user:ban", {"stream_id": "demo", "user_id": seller.user_id})) == "forbidden"
    assert err(await seller.call("user:ban", {"stream_id": "no-such-stream", "user_id": bad.user_id})) == "not_found"


async def test_chat_delete(live):
    seller = await live.seller()
    v = await live.viewer("writer")
    watcher = await live.viewer("reader")
    doomed = (await v.say("a regrettable message"))["message"]
    kept = (await v.say("a fine message"))["message"]
    assert (await seller.call("chat:delete", {"stream_id": "demo", "message_id": doomed["id"]}))["ok"]
    deleted = await watcher.wait_for("chat:deleted")
    assert deleted["id"] == doomed["id"]
    history = (await live.api("GET", "/livestreams/demo/chat"))[1]["items"]
    assert [m["id"] for m in history] == [kept["id"]]
    late = await live.viewer("late-reader")
    assert [m["id"] for m in late.joined["chat"]] == [kept["id"]]
    # a message already written to the database is deleted there
    await live.services.chat_writer.flush()
    assert (await seller.call("chat:delete", {"stream_id": "demo", "message_id": kept["id"]}))["ok"]
    assert (await watcher.wait_for("chat:deleted", lambda d: d["id"] == kept["id"]))
    assert (await live.api("GET", "/livestreams/demo/chat"))[1]["items"] == []
    assert err(await seller.call("chat:delete", {"stream_id": "demo", "message_id": kept["id"]})) == "not_found"
    assert err(await seller.call("chat:delete", {"stream_id": "demo", "message_id": 987654321})) == "not_found"
    assert err(await seller.call("chat:delete", {"stream_id": "demo", "message_id": "1"})) == "invalid"


# ---------------------------------------------------------------- spotlight and stock


async def test_highlight_unhighlight_and_stock_updates(live):
    seller = await live.seller()
    v = await live.viewer("shopper")
    products = (await live.api("GET", "/livestreams/demo/products"))[1]["items"]
    target = products[2]
    ack = await seller.call("product:highlight", {"stream_id": "demo", "product_id": target["id"]})
    assert ack["ok"] and ack["product"]["id"] == target["id"]
    got = await v.wait_for("product:highlighted")
    assert got["product"]["id"] == target["id"] and got["product"]["title"] == target["title"]
    assert got["product"]["variants"] and all(isinstance(x["available"], int) and x["available"] > 0
                                              for x in got["product"]["variants"])
    assert (await live.api("GET", "/livestreams/demo"))[1]["spotlight_product_id"] == target["id"]
    # stock changes of the spotlighted product reach the room
    variant = got["product"]["variants"][0]
    await live.services.rooms.stock_changed(variant["id"], 3)
    update = await v.wait_for("stock:update")
    assert update == {"stream_id": got["stream_id"], "product_id": target["id"], "variant_id": variant["id"],
                      "available": 3, "seq": update["seq"]}
    late = await live.viewer("late-shopper")
    assert late.joined["spotlight"]["id"] == target["id"]
    assert next(x for x in late.joined["spotlight"]["variants"] if x["id"] == variant["id"])["available"] == 3
    # a variant that is not in the spotlight says nothing
    mark = v.mark("stock:update")
    await live.services.rooms.stock_changed(products[3]["variants"][0]["id"], 1)
    await live.barrier(v)
    assert v.events["stock:update"][mark:] == []
    # unhighlight
    assert (await seller.call("product:unhighlight", {"stream_id": "demo"}))["ok"]
    assert (await v.wait_for("product:unhighlighted"))["stream_id"] == got["stream_id"]
    assert (await live.api("GET", "/livestreams/demo"))[1]["spotlight_product_id"] is None
    later = await live.viewer("later-shopper")
    assert later.joined["spotlight"] is None
    # another seller's product, an unknown one, a malformed id
    await live.user("rival-seller", "seller")
    foreign = await live.product("rival-seller")
    ack = await seller.call("product:highlight", {"stream_id": "demo", "product_id": foreign["id"]})
    assert err(ack) == "not_found"
    unknown = "00000000-0000-4000-8000-000000000000"
    assert err(await seller.call("product:highlight", {"stream_id": "demo", "product_id": unknown})) == "not_found"
    assert err(await seller.call("product:highlight", {"stream_id": "demo", "product_id": "x"})) == "invalid"
    await live.barrier(v)
    assert len(v.events["product:highlighted"]) == 1
    # highlighting an own product not yet in the stream attaches it
    own = await live.product(SELLER, "Brand new thing")
    ack = await seller.call("product:highlight", {"stream_id": "demo", "product_id": own["id"]})
    assert ack["ok"] and ack["product"]["variants"][0]["available"] == 5
    listed = (await live.api("GET", "/livestreams/demo/products"))[1]
    assert own["id"] in [p["id"] for p in listed["items"]] and listed["spotlight_product_id"] == own["id"]


async def test_moderation_of_an_unknown_user_is_not_found(live, caplog):
    seller = await live.seller()
    nobody = "00000000-0000-4000-8000-000000000001"
    for event, extra in (("user:mute", {"seconds": 30}), ("user:ban", {}), ("moderator:add", {})):
        ack = await seller.call(event, {"stream_id": "demo", "user_id": nobody, **extra})
        assert err(ack) == "not_found", (event, ack)
    assert (await seller.call("moderator:remove", {"stream_id": "demo", "user_id": nobody}))["ok"]
    state = await live.demo_state()
    assert nobody not in state.bans and nobody not in state.mutes and nobody not in state.moderators


async def test_a_seller_cannot_delete_another_streams_message(live):
    """Even while the message still waits in the chat writer's buffer (not yet in the database)."""
    writer_task = next(t for t in live.services._tasks if t.get_name() == "chat-writer")
    writer_task.cancel()  # the buffer is now written only when asked to (GET /chat does)
    v = await live.viewer("innocent")
    rival = await live.viewer("rival", "seller")
    _, rival_token = await live.user("rival", "seller")
    assert (await live.api("POST", "/livestreams", rival_token, {"title": "Rival", "slug": "rival-show"}))[0] == 201
    assert (await live.api("POST", "/livestreams/rival-show/start", rival_token))[0] == 200
    msg = (await v.say("a message in demo"))["message"]
    assert msg["id"] in live.services.chat_writer._by_id  # still buffered
    ack = await rival.call("chat:delete", {"stream_id": "rival-show", "message_id": msg["id"]})
    assert err(ack) == "not_found"
    late = await live.viewer("late")
    assert msg["id"] in [m["id"] for m in late.joined["chat"]]
    history = (await live.api("GET", "/livestreams/demo/chat"))[1]["items"]
    assert msg["id"] in [m["id"] for m in history]
    # and once written, the same
    assert err(await rival.call("chat:delete", {"stream_id": "rival-show", "message_id": msg["id"]})) == "not_found"
    assert msg["id"] in [m["id"] for m in (await live.api("GET", "/livestreams/demo/chat"))[1]["items"]]


async def test_stock_changes_reach_the_snapshot_of_an_empty_room(live):
    v = await live.viewer("passer-by")
    variant = v.joined["spotlight"]["variants"][0]
    assert (await v.call("leave", {"stream_id": "demo"}))["ok"]  # nobody is watching now
    await live.services.rooms.stock_changed(variant["id"], 1)
    later = await live.viewer("later")
    assert next(x for x in later.joined["spotlight"]["variants"] if x["id"] == variant["id"])["available"] == 1
