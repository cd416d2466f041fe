"""Web Push delivery against a fake push service that checks what a browser would (tests/notify/webpush_fake.py:
the VAPID JWT verified with the server's public key, the body decrypted with the browser's keys), real PostgreSQL
and the real job queue: a notification reaches every subscribed browser of its users once, as {title, url, kind};
preferences turn push off for optional kinds only; 404/410 drop the subscription; 429/5xx and timeouts are tried
again without pushing twice to a browser that got it; repeated refusals drop a subscription."""
from __future__ import annotations

import re

import orjson
import pytest

from live.app import create_app
from live.appkeys import SERVICES
from live.auth.principal import SYSTEM
from live.notify import webpush
from live.notify.kinds import KINDS
from tests.helpers import make_settings, owner_connection
from tests.notify.webpush_fake import FakePushService
from tests.rooms.harness import make_user

URL = "/api/v1/me/push-subscriptions"
ORDER = {"order_id": "7d1a6f1e-0000-4000-8000-000000000001", "number": "1001", "total_minor": 2500, "currency": "USD"}
LIVE = {"stream_id": "s1", "slug": "spring-drop", "title": "Spring drop", "seller_name": "Ola", "seller_slug": "ola",
        "cover_url": None}


class Harness:
    def __init__(self, client, fake: FakePushService):
        self.client, self.fake = client, fake
        self.services = client.app[SERVICES]

    async def user(self, name: str, *browsers: str) -> str:
        """A user with a subscription per browser name (subscribed over REST, as the web app does)."""
        async with self.services.db.tx(SYSTEM) as conn:
            user = await make_user(conn, name)
        headers = {"Authorization": f"Bearer {self.services.token_for(user)}"}
        for b in browsers:
            resp = await self.client.post(URL, json=self.fake.browser(b).subscription(self.fake.url), headers=headers)
            assert resp.status == 201, await resp.text()
        return str(user["id"])

    async def queue(self, kind: str, user_ids: list[str], data: dict, key: str) -> int:
        async with self.services.db.tx(SYSTEM) as conn:
            return await self.services.push.queue(conn, KINDS[kind], user_ids, data, key)

    async def subs(self) -> dict[str, tuple]:
        """browser name -> (failures, last_ok_at is set) of the stored subscriptions."""
        async with self.services.db.tx(SYSTEM) as conn:
            rows = await conn.fetch("SELECT endpoint, failures, last_ok_at FROM push_subscriptions")
        return {r["endpoint"].rsplit("/", 1)[1]: (r["failures"], r["last_ok_at"] is not None) for r in rows}

    async def push_jobs(self) -> list:
        async with owner_connection(self.services.db.dsn) as conn:
            return await conn.fetch("SELECT status, attempts, payload, execute_after > now() AS later FROM pgqueuer "
                                    "WHERE entrypoint = 'push.send' ORDER BY id")

    async def make_due(self) -> None:
        async with owner_connection(self.services.db.dsn) as conn:
            await conn.execute("UPDATE pgqueuer SET execute_after = now() WHERE entrypoint = 'push.send'")


@pytest.fixture
async def push(tmp_path, dsn, aiohttp_client):
    """make(**settings) -> Harness with the app and a running fake push service."""
    fakes: list[FakePushService] = []

    async def make(**overrides) -> Harness:
        settings = make_settings(tmp_path, jobs_in_process="false", **overrides)  # the test drains the jobs
        client = await aiohttp_client(create_app(settings, dsn, run_migrations=False))
        fake = await FakePushService(client.app[SERVICES].push.public_key()).start()
        fakes.append(fake)
        return Harness(client, fake)

    yield make
    for fake in fakes:
        await fake.close()


async def test_a_notification_reaches_every_browser_of_its_users_once_encrypted_and_signed(push):
    h = await push()
    ann = await h.user("ann", "ann-laptop", "ann-phone")
    bob = await h.user("bob", "bob-laptop")
    await h.user("cat", "cat-laptop")  # not notified
    assert await h.queue("order.confirmed", [ann, bob], ORDER, "order.confirmed:1") == 3
    await h.services.jobs.drain()
    assert sorted(p.browser for p in h.fake.pushes) == ["ann-laptop", "ann-phone", "bob-laptop"], h.fake.refused
    push_ = h.fake.to("ann-phone")[0]
    assert push_.payload == {"title": "Order 1001 is paid", "url": f"/account/orders/{ORDER['order_id']}",
                             "kind": "order.confirmed"}
    assert push_.claims["aud"] == h.fake.url and push_.claims["sub"] == "mailto:no-reply@localhost"
    assert push_.headers["TTL"] == "86400" and push_.headers["Urgency"] == "normal"
    assert len({p.headers["Topic"] for p in h.fake.pushes}) == 1 and len(push_.headers["Topic"]) == 32
    subs = await h.subs()
    assert subs["ann-phone"] == (0, True) and subs["cat-laptop"] == (0, False)
    assert await h.push_jobs() == []
    await h.services.jobs.drain()  # nothing left to send
    assert len(h.fake.pushes) == 3


async def test_the_notify_flow_pushes_through_the_deliver_job(push):
    from live.notify import notify

    h = await push()
    ann = await h.user("ann", "ann-laptop")
    async with h.services.db.tx(SYSTEM) as conn:
        assert await notify(conn, "order.shipped", [ann], {**ORDER, "carrier": "usps", "tracking_number": "9400",
                                                           "tracking_url": None}, "order.shipped:1") == 1
    await h.services.jobs.drain()
    assert [p.payload["kind"] for p in h.fake.pushes] == ["order.shipped"], h.fake.refused
    async with h.services.db.tx(SYSTEM) as conn:  # the event replayed adds nothing, pushes nothing
        assert await notify(conn, "order.shipped", [ann], ORDER, "order.shipped:1") == 0
    await h.services.jobs.drain()
    assert len(h.fake.pushes) == 1


async def test_follow_alerts_are_urgent_short_lived_and_preferences_turn_optional_kinds_off(push):
    h = await push(push_ttl_seconds=7200)
    ann = await h.user("ann", "ann-laptop")
    bob = await h.user("bob", "bob-laptop")
    cat = await h.user("cat", "cat-laptop")
    async with h.services.db.tx(SYSTEM) as conn:
        await conn.execute("""INSERT INTO notification_prefs (user_id, kind, email, push)
                              VALUES ($1::uuid, 'follow.live_now', NULL, false), ($2::uuid, '*', true, false)""",
                           bob, cat)
    assert await h.queue("follow.live_now", [ann, bob, cat], LIVE, "follow.live_now:s1") == 1
    assert await h.queue("order.confirmed", [ann, bob, cat], ORDER, "order.confirmed:1") == 3  # transactional
    await h.services.jobs.drain()
    live = [p for p in h.fake.pushes if p.payload["kind"] == "follow.live_now"]
    assert [p.browser for p in live] == ["ann-laptop"]
    assert live[0].payload == {"title": "Ola is live: Spring drop", "url": "/live/spring-drop",
                               "kind": "follow.live_now"}
    assert live[0].headers["Urgency"] == "high" and live[0].headers["TTL"] == "3600"
    assert {p.headers["TTL"] for p in h.fake.pushes if p.payload["kind"] == "order.confirmed"} == {"7200"}


async def test_a_browser_that_signed_in_as_someone_else_gets_no_push_queued_for_the_first_user(push):
    h = await push()
    ann = await h.user("ann", "shared-laptop")
    await h.queue("order.confirmed", [ann], ORDER, "order.confirmed:1")  # queued for ann's subscription
    async with h.services.db.tx(SYSTEM) as conn:
        bob = str((await make_user(conn, "bob"))["id"])
        bob_token = h.services.token_for(await conn.fetchrow("SELECT * FROM users WHERE id = $1::uuid", bob))
    resp = await h.client.post(URL, json=h.fake.browsers["shared-laptop"].subscription(h.fake.url),
                               headers={"Authorization": f"Bearer {bob_token}"})
    assert resp.status == 201
    await h.services.jobs.drain()
    assert h.fake.pushes == [] and h.fake.requests == 0  # ann's order is not shown on bob's browser
    await h.queue("order.confirmed", [bob], ORDER, "order.confirmed:2")
    await h.services.jobs.drain()
    assert [p.browser for p in h.fake.pushes] == ["shared-laptop"]


async def test_gone_subscriptions_are_deleted(push):
    h = await push()
    ann = await h.user("ann", "ann-laptop", "ann-phone", "ann-tablet")
    h.fake.answer("ann-phone", 410)
    h.fake.answer("ann-tablet", 404)
    await h.queue("order.confirmed", [ann], ORDER, "order.confirmed:1")
    await h.services.jobs.drain()
    assert [p.browser for p in h.fake.pushes] == ["ann-laptop"]
    assert set(await h.subs()) == {"ann-laptop"}
    assert await h.push_jobs() == []
    text = await (await h.client.get("/metrics")).text()  # this worker's pushes by outcome
    counts = dict(re.findall(r'live_push_sends_total\{outcome="(\w+)",worker="\d+"\} (\S+)', text))
    assert counts == {"ok": "1.0", "gone": "2.0", "retry": "0.0", "refused": "0.0"}, text[:300]


async def test_a_failing_push_service_is_tried_again_without_pushing_twice(push):
    h = await push()
    ann = await h.user("ann", "ann-laptop", "ann-phone")
    h.fake.answer("ann-phone", 503)
    await h.queue("order.confirmed", [ann], ORDER, "order.confirmed:1")
    await h.services.jobs.drain()
    assert [p.browser for p in h.fake.pushes] == ["ann-laptop"]
    jobs = await h.push_jobs()  # a new job for the failed one only, later
    assert len(jobs) == 1 and jobs[0]["later"] and jobs[0]["status"] == "queued"
    ids = orjson.loads(jobs[0]["payload"])["ids"]
    async with h.services.db.tx(SYSTEM) as conn:
        phone = await conn.fetchval("SELECT id FROM push_subscriptions WHERE endpoint LIKE '%/ann-phone'")
    assert ids == [phone]
    # now every push of the job fails (429): the job itself is retried by the queue with its backoff
    h.fake.answer("ann-phone", 429)
    await h.make_due()
    await h.services.jobs.drain()
    jobs = await h.push_jobs()
    assert [(j["status"], j["attempts"], j["later"]) for j in jobs] == [("queued", 1, True)]
    await h.make_due()
    await h.services.jobs.drain()
    assert sorted(p.browser for p in h.fake.pushes) == ["ann-laptop", "ann-phone"]
    assert await h.push_jobs() == []
    assert (await h.subs())["ann-phone"] == (0, True)


async def test_a_push_service_that_does_not_answer_in_time_is_tried_again(push):
    h = await push(push_timeout_seconds=0.5)
    ann = await h.user("ann", "ann-laptop")
    h.fake.delay = 2.0
    await h.queue("order.confirmed", [ann], ORDER, "order.confirmed:1")
    await h.services.jobs.drain()
    assert h.fake.pushes == [] and h.fake.requests == 1
    assert [(j["status"], j["attempts"]) for j in await h.push_jobs()] == [("queued", 1)]
    h.fake.delay = 0
    await h.make_due()
    await h.services.jobs.drain()
    assert [p.browser for p in h.fake.pushes] == ["ann-laptop"]


async def test_a_subscription_refused_again_and_again_is_dropped(push):
    h = await push()
    ann = await h.user("ann", "ann-laptop", "ann-phone")
    h.fake.answer("ann-phone", *[400] * webpush.MAX_FAILURES)
    for i in range(webpush.MAX_FAILURES):
        await h.queue("order.confirmed", [ann], ORDER, f"order.confirmed:{i}")
        await h.services.jobs.drain()
        if i < webpush.MAX_FAILURES - 1:
            assert (await h.subs())["ann-phone"] == (i + 1, False)
    assert set(await h.subs()) == {"ann-laptop"}
    assert len(h.fake.to("ann-laptop")) == webpush.MAX_FAILURES and await h.push_jobs() == []


async def test_a_bad_payload_is_dead_at_once_and_push_off_queues_nothing(push, tmp_path):
    h = await push()
    for bad in ({"ids": "x"}, {"ids": [1], "message": "x", "key": "k"}, {"ids": [1], "message": {}, "key": "k"}):
        with pytest.raises(webpush.Permanent):
            await h.services.push.send(bad)
    prod = make_settings(tmp_path / "prod", live_env="production", livekit_api_key="lk-production",
                         livekit_api_secret="lk-secret-" + "y" * 30)
    off = webpush.WebPush(prod, h.services.db, type(h.services.jobs)(h.services.db.dsn))
    ann = await h.user("ann", "ann-laptop")
    async with h.services.db.tx(SYSTEM) as conn:
        assert await off.queue(conn, KINDS["order.confirmed"], [ann], ORDER, "order.confirmed:1") == 0
    assert await h.push_jobs() == []
