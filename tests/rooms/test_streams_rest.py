"""Livestreams over REST against the real server and PostgreSQL: lists by status, and a seller's whole
stream lifecycle (create, schedule, patch, start, end, attach products) with the permission checks."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.rooms.harness import SELLER, err


def slugs(body: dict) -> list[str]:
    return [s["slug"] for s in body["items"]]


async def test_lists_by_status(live):
    _, token = await live.user(SELLER, "seller")
    soon = datetime.now(timezone.utc) + timedelta(days=1)
    later = soon + timedelta(days=1)
    for slug, when in (("tomorrow", soon), ("day-after", later), ("unscheduled", None)):
        body = {"title": slug.title(), "slug": slug, **({"scheduled_at": when.isoformat()} if when else {})}
        assert (await live.api("POST", "/livestreams", token, body))[0] == 201
    assert (await live.api("POST", "/livestreams", token, {"title": "Done", "slug": "done"}))[0] == 201
    assert (await live.api("POST", "/livestreams/done/start", token))[0] == 200
    assert (await live.api("POST", "/livestreams/done/end", token))[0] == 200

    status, body = await live.api("GET", "/livestreams")  # live by default, no sign-in needed
    assert status == 200 and slugs(body) == ["demo"]
    demo = body["items"][0]
    assert demo["status"] == "live" and demo["seller"]["name"] == "Demo Seller" and demo["started_at"]
    assert demo["viewers"] == 0
    await live.viewer()  # joins the demo room: the list counts it, like GET /livestreams/demo
    await live.services.rooms.publish_counts()
    assert (await live.api("GET", "/livestreams"))[1]["items"][0]["viewers"] == 1
    status, body = await live.api("GET", "/livestreams?status=scheduled")
    assert status == 200 and slugs(body) == ["tomorrow", "day-after", "unscheduled"]  # soonest first
    assert all(s["status"] == "scheduled" for s in body["items"])
    status, body = await live.api("GET", "/livestreams?status=ended")
    assert status == 200 and slugs(body) == ["done"] and body["items"][0]["ended_at"]
    status, body = await live.api("GET", "/livestreams?status=scheduled&limit=1")
    assert slugs(body) == ["tomorrow"]
    seller_id = demo["seller"]["id"]
    assert slugs((await live.api("GET", f"/livestreams?status=scheduled&seller_id={seller_id}"))[1]) == [
        "tomorrow", "day-after", "unscheduled"]
    other_seller = "00000000-0000-4000-8000-000000000000"
    assert (await live.api("GET", f"/livestreams?status=scheduled&seller_id={other_seller}"))[1]["items"] == []
    for bad in ("status=paused", "limit=0", "limit=101", "seller_id=abc"):
        status, body = await live.api("GET", f"/livestreams?{bad}")
        assert status == 400 and body["error"]["code"] == "invalid", bad
    status, body = await live.api("GET", "/livestreams/demo")
    assert status == 200 and body["slug"] == "demo" and body["spotlight_product_id"]
    assert (await live.api("GET", f"/livestreams/{body['id']}"))[1]["slug"] == "demo"  # by id too
    assert (await live.api("GET", "/livestreams/nope"))[0] == 404
    assert (await live.api("GET", f"/livestreams/{other_seller}"))[0] == 404


async def test_seller_stream_lifecycle(live):
    uid, token = await live.user("maker", "seller")
    own = [await live.product("maker", f"Maker thing {i}") for i in range(3)]
    foreign = await live.product(SELLER, "Not yours")
    when = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(microsecond=0)
    # create, scheduled, with own products
    status, s = await live.api("POST", "/livestreams", token, {
        "title": "  Maker show  ", "slug": "maker-show", "description": "All things made",
        "scheduled_at": when.isoformat(), "product_ids": [own[0]["id"]], "blocked_words": ["spoiler"]})
    assert status == 201, s
    assert s["status"] == "scheduled" and s["title"] == "Maker show" and s["seller"]["slug"] == "maker"
    assert datetime.fromisoformat(s["scheduled_at"]) == when and s["started_at"] is None
    status, products = await live.api("GET", "/livestreams/maker-show/products")
    assert status == 200 and [p["id"] for p in products["items"]] == [own[0]["id"]]
    assert products["items"][0]["variants"][0]["available"] == 5
    # the same slug again
    status, body = await live.api("POST", "/livestreams", token, {"title": "Again", "slug": "maker-show"})
    assert status == 409 and body["error"]["code"] == "conflict"
    # reschedule and patch
    when2 = when + timedelta(days=2)
    status, s = await live.api("PATCH", "/livestreams/maker-show", token, {
        "title": "Maker show, extended", "scheduled_at": when2.isoformat(), "slow_mode_seconds": 5,
        "thumbnail_url": "https://example.com/t.png"})
    assert status == 200, s
    assert s["title"] == "Maker show, extended" and datetime.fromisoformat(s["scheduled_at"]) == when2
    assert s["slow_mode_seconds"] == 5 and s["thumbnail_url"] == "https://example.com/t.png"
    assert s["description"] == "All things made"  # untouched
    for bad in ({"title": ""}, {"slow_mode_seconds": -1}, {"thumbnail_url": "javascript:alert(1)"},
                {"status": "live"}, {"seller_id": uid}):
        status, body = await live.api("PATCH", "/livestreams/maker-show", token, bad)
        assert status in (400, 422), (bad, status, body)
    # attach products: own ones yes, someone else's no (nothing attached then)
    status, body = await live.api("POST", "/livestreams/maker-show/products", token,
                                  {"product_ids": [own[1]["id"], own[2]["id"]]})
    assert status == 200 and set(body["product_ids"]) == {p["id"] for p in own}
    status, body = await live.api("POST", "/livestreams/maker-show/products", token,
                                  {"product_ids": [own[1]["id"], foreign["id"]]})
    assert status == 400 and body["error"]["code"] == "invalid"
    status, body = await live.api("POST", "/livestreams/maker-show/products", token, {"product_ids": ["nope"]})
    assert status == 400
    ids = [p["id"] for p in (await live.api("GET", "/livestreams/maker-show/products"))[1]["items"]]
    assert set(ids) == {p["id"] for p in own} and foreign["id"] not in ids
    # creating with a foreign product creates nothing
    status, body = await live.api("POST", "/livestreams", token, {
        "title": "Sneaky", "slug": "sneaky", "product_ids": [foreign["id"]]})
    assert status == 400 and body["error"]["code"] == "invalid"
    assert (await live.api("GET", "/livestreams/sneaky"))[0] == 404
    # start: live, and the room knows it
    v = await live.viewer("early-bird", join="maker-show")
    assert err(await v.say("hi", stream="maker-show")) == "stream_not_live"
    status, body = await live.api("POST", "/livestreams/maker-show/start", token)
    assert status == 200 and body["status"] == "live"
    assert (await v.wait_for("stream:status"))["status"] == "live"
    assert (await v.say("hi", stream="maker-show"))["ok"]
    assert err(await v.say("no spoiler please", stream="maker-show")) == "invalid"  # its blocked words
    assert "maker-show" in slugs((await live.api("GET", "/livestreams"))[1])
    status, s = await live.api("GET", "/livestreams/maker-show")
    assert s["status"] == "live" and s["started_at"] and s["scheduled_at"]
    # starting twice is harmless
    assert (await live.api("POST", "/livestreams/maker-show/start", token))[0] == 200
    # end
    status, body = await live.api("POST", "/livestreams/maker-show/end", token)
    assert status == 200 and body["status"] == "ended"
    assert (await v.wait_for("stream:status", lambda d: d["status"] == "ended"))
    assert err(await v.say("bye", stream="maker-show")) == "stream_not_live"
    status, s = await live.api("GET", "/livestreams/maker-show")
    assert s["status"] == "ended" and s["ended_at"] and s["ended_at"] >= s["started_at"]
    assert "maker-show" in slugs((await live.api("GET", "/livestreams?status=ended"))[1])
    assert "maker-show" not in slugs((await live.api("GET", "/livestreams"))[1])
    status, body = await live.api("POST", "/livestreams/maker-show/start", token)
    assert status == 409 and body["error"]["code"] == "conflict"


async def test_who_may_change_streams(live):
    _, maker = await live.user("maker", "seller")
    _, rival = await live.user("rival", "seller")
    _, customer = await live.user("just-a-customer")
    own = await live.product("maker")
    assert (await live.api("POST", "/livestreams", maker, {"title": "Mine", "slug": "mine"}))[0] == 201
    create = {"title": "Nope", "slug": "nope"}
    attach = {"product_ids": [own["id"]]}
    cases = [("POST", "/livestreams", create), ("PATCH", "/livestreams/mine", {"title": "Taken"}),
             ("POST", "/livestreams/mine/start", None), ("POST", "/livestreams/mine/end", None),
             ("POST", "/livestreams/mine/products", attach)]
    for method, path, body in cases:
        status, out = await live.api(method, path, None, body)
        assert status == 401 and out["error"]["code"] == "unauthorized", (method, path)
        status, out = await live.api(method, path, customer, body)
        assert status == 403 and out["error"]["code"] == "forbidden", (method, path)
        status, out = await live.api(method, path, "not-a-token", body)
        assert status == 401, (method, path)
    for method, path, body in cases[1:]:  # another seller, on someone else's stream
        status, out = await live.api(method, path, rival, body)
        assert status == 403 and out["error"]["code"] == "forbidden", (method, path, out)
    # a user with the seller role but no seller profile
    from db import users as users_db
    from live.auth.principal import SYSTEM

    async with live.services.db.tx(SYSTEM) as conn:
        bare = await users_db.find_or_create_by_name(conn, "bare-seller", "seller")
    status, out = await live.api("POST", "/livestreams", live.services.token_for(bare), create)
    assert status == 403
    # nothing changed
    status, s = await live.api("GET", "/livestreams/mine")
    assert s["title"] == "Mine" and s["status"] == "scheduled"
    assert (await live.api("GET", "/livestreams/mine/products"))[1]["items"] == []
    assert (await live.api("GET", "/livestreams/nope"))[0] == 404
    # bodies are checked
    for bad in ({"title": "x"}, {"slug": "x"}, {"title": "x", "slug": "Bad Slug"},
                {"title": "x", "slug": "x", "extra": 1}, {"title": "x" * 201, "slug": "x"}):
        status, _ = await live.api("POST", "/livestreams", maker, bad)
        assert status in (400, 422), bad
    assert (await live.api("PATCH", "/livestreams/no-such", maker, {"title": "x"}))[0] == 404
    assert (await live.api("POST", "/livestreams/no-such/start", maker))[0] == 404
