"""A process with no sockets (`live worker`: the label and tracking jobs) pushes `order:update` to the serving
workers over the control channel (real Redis), where the user's sockets are."""
from __future__ import annotations

from db import Database
from live.container import Services
from live.redis.link import RedisLink
from live.rooms.control import RedisControl
from live.rooms.packets import encode_event
from tests.helpers import make_settings, until
from tests.workers.test_workers_broker import Pushes


async def test_an_order_push_from_a_jobs_only_process_reaches_the_serving_workers(tmp_path, dsn, redis_server):
    got: list = []
    serving = RedisLink(redis_server.url, name="serving")
    RedisControl(serving).register(Pushes(got))
    await serving.start()
    db = await Database.connect(dsn, min_size=1, max_size=3)
    jobs_only = Services(make_settings(tmp_path, redis_url=redis_server.url, jobs_in_process="false"), db)
    try:
        await jobs_only.redis.start()
        data = {"order": {"id": "o-1", "status": "label_created"}}
        assert jobs_only.commerce.orders.push("user-7", "order:update", data) == 0  # no socket in this process
        await until(lambda: got, what="the push on the serving worker")
        assert got == [("user-7", encode_event("order:update", data))]
    finally:
        await jobs_only.redis.stop()
        await db.close()
        await serving.stop()
