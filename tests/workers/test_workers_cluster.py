"""Three real `live serve` processes (A, B, C) sharing one PostgreSQL and one real Redis, as on three machines,
with real Socket.IO viewers connected to chosen workers."""
from __future__ import annotations

import asyncio

import pytest

from tests.helpers import until
from tests.rooms.harness import SELLER, err
from tests.workers.cluster import redis_and_nodes, texts


@pytest.fixture(scope="module")
def cluster(module_dsn, tmp_path_factory):
    with redis_and_nodes(tmp_path_factory.mktemp("cluster"), module_dsn, "abc") as (_redis, nodes):
        yield nodes


@pytest.fixture
def dsn(module_dsn):
    """The viewers' users are made in the cluster's database (the module's, shared by its tests)."""
    return module_dsn


async def test_a_message_reaches_every_worker_once_and_in_order(cluster, viewers):
    a, b, c = cluster
    watchers = [await viewers.on(node) for node in (a, a, b, b, c, c)]
    seller = await viewers.on(a, SELLER, "seller")
    chatter = await viewers.on(b, "order-chatter")
    sends = [seller.say(f"order {i}") for i in range(15)] + [chatter.say(f"order b{i}") for i in range(4)]
    acks = await asyncio.gather(*sends)
    assert all(ack["ok"] for ack in acks), acks
    for v in watchers + [seller, chatter]:
        await v.wait_for("chat:new", lambda d: len(texts(v, "order")) == 19, timeout=15)
    seen = [texts(v, "order") for v in watchers]
    assert all(s == seen[0] for s in seen)  # the same events, in the same order, on every worker
    seqs = [seq for seq, _ in seen[0]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 19  # each once
    assert {t for _, t in seen[0]} == {f"order {i}" for i in range(15)} | {f"order b{i}" for i in range(4)}
    assert sorted((ack["message"]["seq"], ack["message"]["text"]) for ack in acks) == seen[0]  # acks carry the seq
    # a fresh join on any worker shows the same recent chat
    late = await viewers.on(c)
    assert [m["text"] for m in late.joined["chat"] if m["text"].startswith("order")][-19:] == [t for _, t in seen[0]]


async def test_recovery_on_another_worker(cluster, viewers):
    a, b, c = cluster
    seller = await viewers.on(c, SELLER, "seller")
    watcher = await viewers.on(b)
    v = await viewers.on(a)
    assert (await seller.say("before the move"))["ok"]
    await v.wait_for("chat:new", lambda d: d["text"] == "before the move")
    last_seq = max([v.joined["seq"]] + [d["seq"] for _, d in v.order if isinstance(d, dict) and "seq" in d])
    epoch = v.joined["epoch"]
    await v.close()
    missed = [f"while away {i}" for i in range(5)]
    for text in missed:
        assert (await seller.say(text))["ok"]
    await watcher.wait_for("chat:new", lambda d: d["text"] == missed[-1])
    back = await viewers.on(b, join=None)
    ack = await back.join(last_seq=last_seq, epoch=epoch)
    assert ack["ok"] and ack["recovered"] is True and ack["epoch"] == epoch
    events = ack["events"]
    assert [d["text"] for e, d in events if e == "chat:new"] == missed  # no gap, nothing twice
    seqs = [d["seq"] for _, d in events]
    assert seqs == sorted(seqs) and seqs[0] > last_seq and ack["seq"] == seqs[-1]
    assert (await seller.say("live again"))["ok"]
    await back.wait_for("chat:new", lambda d: d["text"] == "live again")
    await viewers.on(a)  # a barrier: anything else for `back` has arrived by the time this joins and chats
    assert [d["text"] for d in back.events["chat:new"]] == ["live again"]
    assert back.events["chat:new"][0]["seq"] > ack["seq"]


async def test_a_ban_on_one_worker_holds_on_the_others(cluster, viewers):
    a, b, c = cluster
    seller = await viewers.on(a, SELLER, "seller")
    good = await viewers.on(c, "good-neighbour")
    bad_b = await viewers.on(b, "cluster-bad")
    bad_c = await viewers.on(c, "cluster-bad")
    ack = await seller.call("user:ban", {"stream_id": "demo", "user_id": bad_b.user_id, "reason": "spam"})
    assert ack["ok"], ack
    for v in (bad_b, bad_c, good):  # the banned user's sockets on B and C are told
        assert (await v.wait_for("user:banned"))["user_id"] == bad_b.user_id
    assert err(await bad_c.say("let me in")) == "banned"
    assert err(await bad_b.join()) == "banned"
    again = await viewers.on(c, "cluster-bad", join=None)
    assert err(await again.join()) == "banned"
    # and they no longer receive the room
    assert (await good.say("after the ban"))["ok"]
    await good.wait_for("chat:new", lambda d: d["text"] == "after the ban")
    await seller.wait_for("chat:new", lambda d: d["text"] == "after the ban")
    await viewers.on(b)  # a round trip through B after the message went out
    await asyncio.sleep(0.3)
    assert all(d["text"] != "after the ban" for v in (bad_b, bad_c) for d in v.events.get("chat:new", []))


async def test_rate_limits_and_slow_mode_are_global(cluster, viewers):
    a, b, c = cluster
    on_a = await viewers.on(a, "rate-user")
    on_b = await viewers.on(b, "rate-user")
    on_c = await viewers.on(c, "rate-user", join=None)
    for i in range(5):
        assert (await (on_a if i % 2 else on_b).say(f"burst {i}"))["ok"]
    assert err(await on_c.say("one too many")) == "rate_limited"  # 5 per 10 s for the user, whichever worker
    assert err(await on_a.say("one too many")) == "rate_limited"
    seller = await viewers.on(a, SELLER, "seller")
    slow_b = await viewers.on(b, "slow-user")
    slow_c = await viewers.on(c, "slow-user")
    assert (await seller.call("chat:slowmode", {"stream_id": "demo", "seconds": 30}))["ok"]
    for v in (slow_b, slow_c):
        await v.wait_for("chat:slowmode", lambda d: d["seconds"] == 30)
    assert (await viewers.on(c)).joined["stream"]["slow_mode_seconds"] == 30
    assert (await slow_b.say("first"))["ok"]
    assert err(await slow_c.say("second, elsewhere")) == "rate_limited"
    assert (await seller.call("chat:slowmode", {"stream_id": "demo", "seconds": 0}))["ok"]
    await slow_c.wait_for("chat:slowmode", lambda d: d["seconds"] == 0)
    assert (await slow_c.say("second, later"))["ok"]


async def test_moderation_and_spotlight_reach_every_worker(cluster, viewers, module_dsn):
    a, b, c = cluster
    seller = await viewers.on(a, SELLER, "seller")
    muted = await viewers.on(b, "cluster-muted")
    ack = await seller.call("user:mute", {"stream_id": "demo", "user_id": muted.user_id, "seconds": 60})
    assert ack["ok"], ack
    await muted.wait_for("user:muted")
    assert err(await muted.say("hello?")) == "muted"
    # a moderator appointed on A can moderate on C
    mod = await viewers.on(c, "cluster-mod")
    assert (await seller.call("moderator:add", {"stream_id": "demo", "user_id": mod.user_id}))["ok"]
    await mod.wait_for("moderator:added")
    assert (await mod.call("chat:slowmode", {"stream_id": "demo", "seconds": 0}))["ok"]
    # the spotlight set on A is in a snapshot taken on C, and its stock updates everywhere
    product = seller.joined["spotlight"]
    others = [p for p in (await _products(a)) if p["id"] != (product or {}).get("id")]
    ack = await seller.call("product:highlight", {"stream_id": "demo", "product_id": others[0]["id"]})
    assert ack["ok"], ack
    await muted.wait_for("product:highlighted", lambda d: d["product"]["id"] == others[0]["id"])
    fresh = await viewers.on(c)
    assert fresh.joined["spotlight"]["id"] == others[0]["id"]
    # a row change over REST on A (blocked words) takes effect on B
    import aiohttp

    async with aiohttp.ClientSession() as http:
        resp = await http.patch(f"{a.url}/api/v1/livestreams/demo", json={"blocked_words": ["pineapple"]},
                                headers={"Authorization": f"Bearer {seller.token}"})
        assert resp.status == 200
    talker = await viewers.on(b, "cluster-talker")

    async def refused() -> bool:
        return err(await talker.say("I like pineapple")) == "invalid"

    await until(refused, 10, step=0.1, what="the blocked word on worker B")


async def _products(node) -> list[dict]:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.url}/api/v1/livestreams/demo/products") as resp:
            return (await resp.json())["items"]


async def test_viewer_counts_add_up_across_workers(cluster, viewers):
    a, b, c = cluster
    seller = await viewers.on(a, SELLER, "seller", join=None)
    import aiohttp

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {seller.token}"}) as http:
        resp = await http.post(f"{a.url}/api/v1/livestreams", json={"title": "Counts", "slug": "counts-room"})
        assert resp.status == 201, await resp.text()
        resp = await http.post(f"{b.url}/api/v1/livestreams/counts-room/start")
        assert resp.status == 200, await resp.text()
    observer = await viewers.on(c, join="counts-room")
    for node in (a, a, b, b, b):
        await viewers.on(node, join="counts-room")
    await observer.wait_for("viewer:count", lambda d: d["count"] == 6, timeout=15)
    leaving = viewers.viewers[-1]
    await leaving.close()
    await observer.wait_for("viewer:count", lambda d: d["count"] == 5, timeout=15)
