"""Undoing a ban: the socket event `user:unban`, REST `GET /livestreams/{id}/bans` and
`DELETE /livestreams/{id}/bans/{user_id}`; the audit row `stream.unban`, the stateful room event `user:unbanned`
(room state, recovery, a second worker sharing Redis). Real Socket.IO clients and REST over real sockets, real
PostgreSQL, real Redis."""
from __future__ import annotations

from tests.rooms.harness import BAD_VALUES, CODES, SELLER, err, start_live

NOBODY = "00000000-0000-4000-8000-00000000abcd"
NIL = "00000000-0000-4000-8000-000000000000"


async def audit_rows(live, action: str) -> list[dict]:
    from live.auth.principal import SYSTEM

    async with live.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("""SELECT actor_id::text AS actor_id, entity, entity_id, data FROM audit_log
                                   WHERE action = $1 ORDER BY id""", action)
    return [dict(r) for r in rows]


async def ban_row(live, stream_id: str, user_id: str):
    from live.auth.principal import SYSTEM

    async with live.services.db.tx(SYSTEM) as conn:
        return await conn.fetchrow("SELECT * FROM stream_bans WHERE livestream_id = $1::uuid AND user_id = $2::uuid",
                                   stream_id, user_id)


async def test_unban_lets_the_user_join_and_chat_again(live):
    seller = await live.seller()
    troll = await live.viewer("reformed-troll")
    watcher = await live.viewer("unban-watcher")
    stream_id = seller.joined["stream"]["id"]
    ban = {"stream_id": "demo", "user_id": troll.user_id, "reason": "spam"}
    assert (await seller.call("user:ban", ban))["ok"]
    await troll.wait_for("user:banned")
    assert err(await troll.join()) == "banned"
    assert err(await troll.say("let me in")) == "banned"
    mark = watcher.mark("user:unbanned")
    ack = await seller.call("user:unban", {"stream_id": "demo", "user_id": troll.user_id})
    assert ack == {"ok": True}
    told = await watcher.wait_after("user:unbanned", mark)
    assert told == {"stream_id": stream_id, "user_id": troll.user_id, "seq": told["seq"]}
    assert troll.user_id not in (await live.demo_state()).bans
    assert await ban_row(live, stream_id, troll.user_id) is None  # stored: a restart does not bring it back
    joined = await troll.join()
    assert joined["ok"], joined
    sent = await troll.say("sorry about that")
    assert sent["ok"], sent
    said = await watcher.wait_for("chat:new", lambda d: d["text"] == "sorry about that")
    assert said["user"]["id"] == troll.user_id
    # one audit row for the ban and one for the unban, by the seller, in the same shape
    assert [r["data"]["after"] for r in await audit_rows(live, "stream.ban")] == [{"banned": True, "reason": "spam"}]
    unbans = await audit_rows(live, "stream.unban")
    assert unbans == [{"actor_id": seller.user_id, "entity": "livestream", "entity_id": stream_id,
                       "data": {"user_id": troll.user_id, "before": {"banned": True}, "after": {"banned": False}}}]
    # unbanning again (or a user never banned, or unknown) is a success that changes nothing: no row, no event
    for target in (troll.user_id, watcher.user_id, NOBODY):
        assert (await seller.call("user:unban", {"stream_id": "demo", "user_id": target})) == {"ok": True}
    await live.barrier(watcher)
    assert len(watcher.events["user:unbanned"][mark:]) == 1
    assert len(await audit_rows(live, "stream.unban")) == 1
    # a fresh connection of the user joins too (the stored ban is gone, not only the room state's)
    fresh = await live.viewer("reformed-troll", join=None)
    assert (await fresh.join())["ok"]


async def test_who_may_unban(live):
    seller = await live.seller()
    mod = await live.viewer("unban-mod")
    plain = await live.viewer("unban-plain")
    rival = await live.viewer("unban-rival", "seller")
    anon = await live.viewer()
    admin = await live.viewer("unban-admin", "admin")
    targets = [await live.viewer(f"unban-target-{i}") for i in range(3)]
    stream_id = seller.joined["stream"]["id"]
    for t in targets:
        assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": t.user_id}))["ok"]
    assert (await seller.call("moderator:add", {"stream_id": "demo", "user_id": mod.user_id}))["ok"]
    await plain.wait_for("moderator:added")
    payload = {"stream_id": "demo", "user_id": targets[0].user_id}
    for who in (plain, rival):
        assert err(await who.call("user:unban", payload)) == "forbidden", who.name
    assert err(await anon.call("user:unban", payload)) == "unauthorized"
    assert await ban_row(live, stream_id, targets[0].user_id) is not None  # refused: still banned
    assert err(await targets[0].join()) == "banned"
    # bad payloads and an unknown stream
    for bad in ({"stream_id": "demo"}, {"stream_id": "demo", "user_id": "nope"},
                {"stream_id": "demo", "user_id": 5}, {"stream_id": "demo", "user_id": targets[0].user_id + "\x00"}):
        assert err(await seller.call("user:unban", bad)) == "invalid", bad
    assert err(await seller.call("user:unban", {"stream_id": "no-such-stream", "user_id": targets[0].user_id})) \
        == "not_found"
    assert await audit_rows(live, "stream.unban") == []
    # the seller, a moderator of the stream, an admin; stream_id may be left out when in one stream
    assert (await mod.call("user:unban", {"user_id": targets[0].user_id}))["ok"]
    assert (await admin.call("user:unban", {"stream_id": "demo", "user_id": targets[1].user_id.upper()}))["ok"]
    assert (await seller.call("user:unban", {"stream_id": stream_id, "user_id": targets[2].user_id}))["ok"]
    rows = await audit_rows(live, "stream.unban")
    assert [(r["actor_id"], r["data"]["user_id"]) for r in rows] == [
        (mod.user_id, targets[0].user_id), (admin.user_id, targets[1].user_id), (seller.user_id, targets[2].user_id)]
    for t in targets:
        assert (await t.join())["ok"]


async def test_unban_with_bad_values(live, errors_logged):
    """Each field of a well-formed user:unban replaced by each bad value, and payloads that are not objects, by the
    seller (who may unban: the payloads reach the service): an error ack from the protocol's list, nothing logged."""
    seller = await live.seller()
    target = await live.viewer("bad-values-target")
    assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": target.user_id}))["ok"]
    good = {"stream_id": "demo", "user_id": target.user_id}
    codes, accepted = set(), []
    for name in ("user_id", "stream_id"):
        for value in BAD_VALUES:
            ack = await seller.call("user:unban", {**good, name: value})
            codes.add(code := err(ack))
            assert code is None or code in CODES, (name, value, ack)
            if code is None:
                accepted.append((name, value))
                if name == "user_id":
                    assert err(await target.join()) == "banned"  # it lifted nothing
    for payload in (None, [], "x", 5):
        assert err(await seller.sio.call("user:unban", payload, timeout=10)) == "invalid"
    assert {"invalid", "not_found"} <= codes
    # a uuid nobody has is a no-op success; a null stream_id is one left out (the seller's one stream): it lifts it
    assert accepted == [("user_id", NIL), ("stream_id", None)]
    assert (await target.join())["ok"]
    assert errors_logged() == []


async def test_recovery_replays_the_unban(live):
    v = await live.viewer("unban-recoverer")
    seller = await live.seller()
    target = await live.viewer("unban-recovery-target")
    last_seq, epoch = v.joined["seq"], v.joined["epoch"]
    await v.close()
    assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": target.user_id}))["ok"]
    assert (await seller.call("user:unban", {"stream_id": "demo", "user_id": target.user_id}))["ok"]
    back = await live.viewer("unban-recoverer", last_seq=last_seq, epoch=epoch)
    assert back.joined["recovered"] is True
    names = [e for e, _ in back.joined["events"]]
    assert names.index("user:banned") < names.index("user:unbanned")
    assert dict(back.joined["events"])["user:unbanned"]["user_id"] == target.user_id


# ---------------------------------------------------------------- REST


async def test_rest_list_and_delete_bans(live):
    seller_id, seller_token = await live.user(SELLER, "seller")
    seller = await live.seller()
    stream_id = seller.joined["stream"]["id"]
    users = [await live.user(f"listed-ban-{i}") for i in range(3)]
    for i, (uid, _) in enumerate(users):
        ack = await seller.call("user:ban", {"stream_id": "demo", "user_id": uid, "reason": f"reason {i}"})
        assert ack["ok"], ack
    # newest first, two a page
    status, page = await live.api("GET", "/livestreams/demo/bans?limit=2", seller_token)
    assert status == 200, page
    assert [b["user"]["id"] for b in page["items"]] == [users[2][0], users[1][0]]
    first = page["items"][0]
    assert first["user"] == {"id": users[2][0], "name": "listed-ban-2"}
    assert first["reason"] == "reason 2"
    assert first["banned_by"] == {"id": seller_id, "name": SELLER}
    assert isinstance(first["created_at"], str) and first["created_at"][:2] == "20"
    assert page["next_cursor"]
    status, rest = await live.api("GET", f"/livestreams/{stream_id}/bans?limit=2&cursor={page['next_cursor']}",
                                  seller_token)
    assert status == 200 and [b["user"]["id"] for b in rest["items"]] == [users[0][0]]
    assert rest["next_cursor"] is None
    # delete through REST: the same service (audit row, room event, the user may join again)
    watcher = await live.viewer("rest-unban-watcher")
    mark = watcher.mark("user:unbanned")
    status, body = await live.api("DELETE", f"/livestreams/demo/bans/{users[1][0]}", seller_token)
    assert status == 204, body
    assert (await watcher.wait_after("user:unbanned", mark))["user_id"] == users[1][0]
    status, page = await live.api("GET", "/livestreams/demo/bans", seller_token)
    assert [b["user"]["id"] for b in page["items"]] == [users[2][0], users[0][0]] and page["next_cursor"] is None
    rows = await audit_rows(live, "stream.unban")
    assert [(r["actor_id"], r["entity_id"], r["data"]) for r in rows] == [
        (seller_id, stream_id, {"user_id": users[1][0], "before": {"banned": True}, "after": {"banned": False}})]
    again = await live.viewer("listed-ban-1", join=None)
    assert (await again.join())["ok"]
    # a second delete is a no-op success: no row, no event
    assert (await live.api("DELETE", f"/livestreams/demo/bans/{users[1][0]}", seller_token))[0] == 204
    assert len(await audit_rows(live, "stream.unban")) == 1


async def test_rest_bans_permissions_and_bad_input(live):
    seller = await live.seller()
    _, seller_token = await live.user(SELLER, "seller")
    target_id, _ = await live.user("rest-banned")
    assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": target_id}))["ok"]
    _, customer = await live.user("rest-customer")
    _, banned_token = await live.user("rest-banned")
    _, rival = await live.user("rest-rival", "seller")
    _, admin = await live.user("rest-admin", "admin")
    mod_id, mod = await live.user("rest-mod")
    lst, one = "/livestreams/demo/bans", f"/livestreams/demo/bans/{target_id}"
    for token in (customer, banned_token, rival):  # a customer, the banned user, another stream's seller
        for method, path in (("GET", lst), ("DELETE", one)):
            status, body = await live.api(method, path, token)
            assert status == 403 and body["error"]["code"] == "forbidden", (method, status, body)
    for method, path in (("GET", lst), ("DELETE", one)):
        status, body = await live.api(method, path)
        assert status == 401 and body["error"]["code"] == "unauthorized"
    assert await audit_rows(live, "stream.unban") == []
    # unknown stream, a user id that cannot exist, bad page parameters, a cursor this server did not give
    status, body = await live.api("GET", "/livestreams/no-such-stream/bans", seller_token)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await live.api("DELETE", f"/livestreams/no-such-stream/bans/{target_id}", seller_token)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await live.api("DELETE", "/livestreams/demo/bans/not-a-uuid", seller_token)
    assert status == 404 and body["error"]["code"] == "not_found"
    for query in ("limit=0", "limit=101", "limit=x", "cursor=bm9wZQ", "cursor=" + "a" * 501):
        status, body = await live.api("GET", f"{lst}?{query}", seller_token)
        assert status == 400 and body["error"]["code"] == "invalid", (query, body)
    # a moderator of the stream and an admin may list and unban
    assert (await seller.call("moderator:add", {"stream_id": "demo", "user_id": mod_id}))["ok"]
    for token in (mod, admin):
        status, body = await live.api("GET", lst, token)
        assert status == 200 and [b["user"]["id"] for b in body["items"]] == [target_id], body
    assert (await live.api("DELETE", one, mod))[0] == 204
    assert (await live.api("GET", lst, admin))[1]["items"] == []
    assert [r["actor_id"] for r in await audit_rows(live, "stream.unban")] == [mod_id]


async def test_unban_is_in_the_openapi_document(live):
    status, doc = await live.api("GET", "/openapi.json")
    assert status == 200
    bans = doc["paths"]["/api/v1/livestreams/{id}/bans"]["get"]
    assert {p["name"] for p in bans["parameters"]} == {"id", "limit", "cursor"}
    assert {"401", "403", "404"} <= set(bans["responses"])
    delete = doc["paths"]["/api/v1/livestreams/{id}/bans/{user_id}"]["delete"]
    assert "204" in delete["responses"] and {"401", "403", "404"} <= set(delete["responses"])


# ---------------------------------------------------------------- two workers sharing Redis


async def test_an_unban_on_one_worker_holds_on_the_other(tmp_path, dsn, aiohttp_client, redis_url):
    one = await start_live(tmp_path / "w1", dsn, aiohttp_client, redis_url=redis_url)
    two = await start_live(tmp_path / "w2", dsn, aiohttp_client, redis_url=redis_url)
    try:
        seller = await one.seller()
        watcher = await two.viewer("two-watcher")  # worker two follows the room: its state is kept by events
        troll = await two.viewer("two-troll")
        assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": troll.user_id}))["ok"]
        await troll.wait_for("user:banned")
        assert err(await troll.join()) == "banned"
        state_two = two.services.rooms.streams.cached(seller.joined["stream"]["id"])
        assert troll.user_id in state_two.bans
        _, token = await one.user(SELLER, "seller")
        assert (await one.api("DELETE", f"/livestreams/demo/bans/{troll.user_id}", token))[0] == 204
        await watcher.wait_for("user:unbanned")
        assert troll.user_id not in state_two.bans  # the event, not a reload, dropped it on worker two
        assert (await troll.join())["ok"]
        assert (await troll.say("back on worker two"))["ok"]
        await seller.wait_for("chat:new", lambda d: d["text"] == "back on worker two")
    finally:
        await one.close_viewers()
        await two.close_viewers()


async def test_a_user_id_in_capitals_is_the_same_user(live):
    """A uuid's hex digits may come in either case: ban, mute and unban all act on the one user."""
    seller = await live.seller()
    loud = await live.viewer("capital-case")
    user = {"stream_id": "demo", "user_id": loud.user_id.upper()}
    assert (await seller.call("user:mute", {**user, "seconds": 60}))["ok"]
    assert err(await loud.say("muted?")) == "muted"
    assert (await seller.call("user:ban", user))["ok"]
    await loud.wait_for("user:banned")  # kicked
    assert err(await loud.join()) == "banned"
    assert (await seller.call("user:unban", user))["ok"]
    assert (await loud.join())["ok"]


async def test_an_unban_clears_a_ban_only_the_room_state_holds(live):
    """A ban and an unban racing on two workers can publish their events in the other order than they were
    stored: the room states hold a ban the database does not. Unbanning again clears it everywhere (the event is
    published), still without an audit row."""
    watcher = await live.viewer("race-watcher")
    ghost = await live.viewer("race-ghost", join=None)
    seller = await live.seller()
    state = await live.demo_state()
    state.bans.add(ghost.user_id)  # as if user:banned had been applied after user:unbanned
    assert err(await ghost.join()) == "banned"
    mark = watcher.mark("user:unbanned")
    assert (await seller.call("user:unban", {"stream_id": "demo", "user_id": ghost.user_id}))["ok"]
    assert (await watcher.wait_after("user:unbanned", mark))["user_id"] == ghost.user_id
    assert (await ghost.join())["ok"]
    assert await audit_rows(live, "stream.unban") == []
