"""`notification:new` reaches every socket of the user on every worker: two serving workers sharing a real Redis and
PostgreSQL, the user with a socket on each, the deliver job run by one of them or by a jobs-only process
(`live worker`, no sockets: it pushes over the control channel). The bulk control message carries hundreds of
users at once."""
from __future__ import annotations

import asyncio

from db import Database
from live.app import create_app
from live.appkeys import SERVICES
from live.auth.principal import SYSTEM
from live.container import Services
from live.notify import notify
from live.redis.link import RedisLink
from live.rooms.control import MAX_USERS_PER_MESSAGE, RedisControl
from tests.helpers import Viewer, make_settings, until
from tests.rooms.harness import make_user

ORDER = {"order_id": "00000000-0000-0000-0000-000000000042", "number": 42, "reason": "out of stock"}


async def serving(tmp_path, name, dsn, aiohttp_client, redis_url, **settings):
    app = create_app(make_settings(tmp_path / name, redis_url=redis_url, **settings), dsn, run_migrations=False)
    return await aiohttp_client(app)


async def users_and_tokens(services, *names):
    out = []
    async with services.db.tx(SYSTEM) as conn:
        for name in names:
            user = await make_user(conn, name)
            out.append((user["id"], services.token_for(user)))
    return out


async def connect(client, token) -> Viewer:
    return await Viewer(str(client.make_url("/")), token).connect()


async def test_the_job_on_one_worker_pushes_to_the_users_sockets_on_both(tmp_path, dsn, aiohttp_client, redis_url):
    one = await serving(tmp_path, "w1", dsn, aiohttp_client, redis_url)
    two = await serving(tmp_path, "w2", dsn, aiohttp_client, redis_url, jobs_in_process="false")
    services = one.app[SERVICES]
    (alice, a_token), (bob, b_token) = await users_and_tokens(services, "alice", "bob")
    viewers = [await connect(one, a_token), await connect(two, a_token), await connect(two, b_token)]
    try:
        async with services.db.tx(SYSTEM) as conn:
            await notify(conn, "order.canceled", [alice, bob], ORDER, "order.canceled:42")
        got = [await v.wait_for("notification:new") for v in viewers]
        for data in got:
            assert data["unread"] == 1
            assert (data["notification"]["kind"], data["notification"]["title"], data["notification"]["url"]) == (
                "order.canceled", "Order 42 was canceled", "/account/orders/00000000-0000-0000-0000-000000000042")
        assert got[0]["notification"]["id"] == got[1]["notification"]["id"] != got[2]["notification"]["id"]
        # a second event: the count has moved; nothing was pushed twice
        async with services.db.tx(SYSTEM) as conn:
            await notify(conn, "order.refunded", [alice], {**ORDER, "amount_minor": 500, "currency": "USD"},
                         "order.refunded:42")
        second = [await v.wait_after("notification:new", 1) for v in viewers[:2]]
        assert [d["unread"] for d in second] == [2, 2]
        await asyncio.sleep(0.3)
        assert [len(v.events["notification:new"]) for v in viewers] == [2, 2, 1]
    finally:
        for v in viewers:
            await v.close()


async def test_a_jobs_only_process_pushes_over_the_control_channel(tmp_path, dsn, aiohttp_client, redis_url):
    one = await serving(tmp_path, "w1", dsn, aiohttp_client, redis_url, jobs_in_process="false")
    two = await serving(tmp_path, "w2", dsn, aiohttp_client, redis_url, jobs_in_process="false")
    [(alice, token)] = await users_and_tokens(one.app[SERVICES], "alice")
    viewers = [await connect(one, token), await connect(two, token)]
    db = await Database.connect(dsn, min_size=1, max_size=4)
    worker = Services(make_settings(tmp_path / "worker", redis_url=redis_url, jobs_in_process="false"), db)
    try:
        await worker.redis.start()
        async with db.tx(SYSTEM) as conn:
            await notify(conn, "order.canceled", [alice], ORDER, "order.canceled:42")
        await worker.jobs.drain()
        got = [await v.wait_for("notification:new") for v in viewers]
        assert [d["notification"]["title"] for d in got] == ["Order 42 was canceled"] * 2
    finally:
        for v in viewers:
            await v.close()
        await worker.redis.stop()
        await db.close()


class Received:
    def __init__(self):
        self.pushes: list[tuple[str, bytes]] = []
        self.messages = 0

    def on_users_push(self, pushes):
        self.messages += 1
        self.pushes.extend(pushes)

    def on_user_push(self, user_id, packet):
        raise AssertionError("a bulk push came as single pushes")

    def on_reload(self, stream_id):
        pass


async def test_a_bulk_push_is_one_control_message_per_hundreds_of_users(redis_url):
    receiver, sender = RedisLink(redis_url, name="receiver"), RedisLink(redis_url, name="sender")
    got = Received()
    RedisControl(receiver).register(got)
    control = RedisControl(sender)
    await receiver.start()
    await sender.start()
    try:
        # packets are opaque bytes: newlines and digits inside them must not confuse the framing
        pushes = [(f"user-{i}", b'42["notification:new",{"n":"%d\n7\n"}]' % i) for i in range(1200)]
        control.push_users(pushes)
        await until(lambda: len(got.pushes) == 1200, what="every push")
        assert sorted(got.pushes) == sorted(pushes)  # messages of different users: their order is free
        assert got.messages == -(-1200 // MAX_USERS_PER_MESSAGE)
    finally:
        await sender.stop()
        await receiver.stop()


async def test_one_worker_pushes_to_the_connected_users_only(tmp_path, dsn, aiohttp_client):
    client = await aiohttp_client(create_app(make_settings(tmp_path), dsn, run_migrations=False))
    services = client.app[SERVICES]
    (alice, a_token), (bob, _) = await users_and_tokens(services, "alice", "bob")
    viewers = [await connect(client, a_token), await connect(client, a_token)]  # two tabs; bob is offline
    try:
        async with services.db.tx(SYSTEM) as conn:
            await notify(conn, "order.canceled", [alice, bob], ORDER, "order.canceled:42")
        got = [await v.wait_for("notification:new") for v in viewers]
        assert [d["notification"]["title"] for d in got] == ["Order 42 was canceled"] * 2
        async def delivered() -> bool:  # bob's is stored and delivered all the same, by the notify.deliver job,
            async with services.db.tx(SYSTEM) as conn:  # which runs apart from the sockets' push: waited for
                return await conn.fetchval(
                    "SELECT delivered_at IS NOT NULL FROM notifications WHERE user_id = $1::uuid", bob)

        await until(delivered, 10, what="bob's notification delivered by the job")
    finally:
        for v in viewers:
            await v.close()
