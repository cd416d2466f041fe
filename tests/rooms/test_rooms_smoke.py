from tests.helpers import Viewer


async def test_join_chat_flow(live):
    base = live.base
    services = live.services
    _, t1 = await live.user("alice")
    _, t2 = await live.user("bob")
    a = await Viewer(base, t1).connect()
    b = await Viewer(base, t2).connect()
    anon = await Viewer(base).connect()
    try:
        ack = await a.call("join", {"stream_id": "demo"})
        assert ack["ok"] and ack["stream"]["slug"] == "demo" and ack["recovered"] is False
        assert ack["spotlight"]["variants"][0]["available"] > 0
        assert ack["media"]["can_publish"] is False
        assert (await b.call("join", {"stream_id": "demo"}))["ok"]
        assert (await anon.call("join", {"stream_id": "demo"}))["ok"]
        sent = await a.call("chat:send", {"stream_id": "demo", "text": "  hello room  "})
        assert sent["ok"] and sent["message"]["text"] == "hello room"
        got = await b.wait_for("chat:new")
        assert got["text"] == "hello room" and got["user"]["name"] == "alice" and got["seq"] >= 1
        assert (await anon.wait_for("chat:new"))["id"] == sent["message"]["id"]
        refused = await anon.call("chat:send", {"stream_id": "demo", "text": "hi"})
        assert refused == {"ok": False, "error": {"code": "unauthorized", "message": "sign in to chat"}}
        assert (await b.call("nope", {}))["error"]["code"] == "invalid"
        assert (await b.call("chat:send", {"stream_id": "demo", "text": 5}))["error"]["code"] == "invalid"
        count = await b.wait_for("viewer:count", lambda d: d["count"] == 3)
        assert count["stream_id"] == ack["stream"]["id"]
    finally:
        for v in (a, b, anon):
            await v.close()
    await services.chat_writer.flush()
