"""LiveKit ingress over real HTTP against the fake LiveKit server (tests/media/fake_livekit.py: every Twirp call's
JWT verified with the API secret and the `ingressAdmin` grant): the seller creates, reads and deletes the stream's
ingress; one per stream; only the seller or an admin; LiveKit failing is a 502 JSON error and stores nothing;
without LiveKit it is 409 livekit_not_configured."""
from __future__ import annotations

import asyncio
import json

import pytest

from live.auth.principal import SYSTEM, Principal
from tests.helpers import make_settings, until
from tests.media.fake_livekit import KEY, SECRET
from tests.rooms.harness import make_user


@pytest.fixture
def settings(tmp_path, fake):
    return make_settings(tmp_path, livekit_url=fake.url, livekit_api_key=KEY, livekit_api_secret=SECRET)


@pytest.fixture
async def stream(services):
    async with services.db.tx(SYSTEM) as conn:
        seller = await make_user(conn, "Sam", "seller")
        other = await make_user(conn, "Oli", "seller")
        viewer = await make_user(conn, "Vic")
        admin = await make_user(conn, "Ada", "admin")
        sid = await conn.fetchval(
            """INSERT INTO livestreams (seller_id, slug, title, livekit_room)
               SELECT id, 't1', 'T1', 'live-t1' FROM sellers WHERE user_id = $1 RETURNING id::text""", seller["id"])
    auth = {name: {"Authorization": "Bearer " + services.token_for(u)}
            for name, u in (("seller", seller), ("other", other), ("viewer", viewer), ("admin", admin))}
    return {"id": sid, "seller_id": str(seller["id"]), "auth": auth, "path": f"/api/v1/livestreams/{sid}/ingress"}


async def call(client, method: str, path: str, headers: dict, body=None):
    resp = await client.request(method, path, json=body, headers=headers)
    return resp.status, (await resp.json() if resp.content_type == "application/json" else None)


async def stored(services) -> int:
    async with services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT count(*) FROM livekit_ingresses")


async def test_the_seller_creates_reads_and_deletes_the_stream_ingress(client, services, stream, fake):
    path, seller = stream["path"], stream["auth"]["seller"]
    status, made = await call(client, "POST", path, seller, {"input": "rtmp"})
    assert status == 201, made
    assert made == {"ingress_id": "IN_1", "input": "rtmp", "url": "rtmp://lk.test/x", "stream_key": "key-IN_1",
                    "status": None, "error": None, "created": True}
    # made for the stream's room, publishing as the seller (so the webhooks count it as the seller)
    assert fake.calls == [("CreateIngress", {"room": "live-t1", "identity": stream["seller_id"],
                                             "input": "RTMP_INPUT", "name": "Sam"})]
    assert fake.refused == 0 and set(fake.ingresses) == {"IN_1"}
    status, got = await call(client, "GET", path, seller)
    assert status == 200 and got == {k: v for k, v in made.items() if k != "created"}
    # one per stream: the same input answers the stream's ingress (LiveKit not called again), the other is 409
    status, again = await call(client, "POST", path, seller, {"input": "rtmp"})
    assert status == 201 and again == {**made, "created": False} and len(fake.calls) == 1
    status, err = await call(client, "POST", path, seller, {"input": "whip"})
    assert status == 409 and err["error"]["code"] == "conflict" and err["error"]["details"]["input"] == "rtmp"
    # delete: LiveKit's DeleteIngress, then the stream forgets it
    status, _ = await call(client, "DELETE", path, seller)
    assert status == 204 and fake.calls[-1] == ("DeleteIngress", {"ingress_id": "IN_1"}) and not fake.ingresses
    assert (await call(client, "GET", path, seller))[0] == 404
    assert (await call(client, "DELETE", path, seller))[0] == 404
    # then a WHIP ingress (OBS 30+)
    status, whip = await call(client, "POST", path, seller, {"input": "whip"})
    assert status == 201 and whip["input"] == "whip" and whip["url"] == "http://lk.test/w" and whip["created"]
    assert await stored(services) == 1 and fake.refused == 0


async def test_who_may_and_bad_requests(client, services, stream, fake):
    path, auth = stream["path"], stream["auth"]
    for who, expected in (("viewer", 403), ("other", 403)):
        for method, body in (("POST", {"input": "rtmp"}), ("GET", None), ("DELETE", None)):
            status, err = await call(client, method, path, auth[who], body)
            assert status == expected and err["error"]["code"] == "forbidden", (who, method, err)
    assert (await call(client, "POST", path, {}, {"input": "rtmp"}))[0] == 401
    for body in ({"input": "srt"}, {}, {"input": "rtmp", "extra": 1}, {"input": None}):
        status, err = await call(client, "POST", path, auth["seller"], body)
        assert status == 422 and err["error"]["code"] == "validation_failed", (body, err)
    assert (await call(client, "POST", "/api/v1/livestreams/nope/ingress", auth["seller"], {"input": "rtmp"}))[0] \
        == 404
    assert fake.calls == [] and await stored(services) == 0
    # an admin may, for the stream's seller (the identity is still the seller's)
    status, made = await call(client, "POST", path, auth["admin"], {"input": "whip"})
    assert status == 201 and fake.calls[0][1]["identity"] == stream["seller_id"]
    # an ended stream gets none
    await call(client, "DELETE", path, auth["seller"])
    await services.rooms.set_status(Principal(stream["seller_id"], "seller", "Sam"), stream["id"], "ended")
    status, err = await call(client, "POST", path, auth["seller"], {"input": "rtmp"})
    assert status == 409 and err["error"]["code"] == "stream_not_live"


async def test_livekit_failing_is_a_502_and_stores_nothing(client, services, stream, fake):
    path, seller = stream["path"], stream["auth"]["seller"]
    for attr in ("fail_next", "refuse_next"):  # 503 (unavailable), 400 (refused)
        setattr(fake, attr, 1)
        status, err = await call(client, "POST", path, seller, {"input": "rtmp"})
        assert status == 502 and err["error"]["code"] == "media_server_error", err
    assert await stored(services) == 0
    # a slow LiveKit: two creates at once both reach it; the second stored answers the first's and its own is
    # deleted by a job, retried when LiveKit fails that DeleteIngress (the answer is not a 502 for it)
    fake.delay = 0.2
    fake.fail_method["DeleteIngress"] = 1
    answers = await asyncio.gather(*(call(client, "POST", path, seller, {"input": "rtmp"}) for _ in range(2)))
    fake.delay = 0.0
    assert [a[0] for a in answers] == [201, 201] and answers[0][1]["ingress_id"] == answers[1][1]["ingress_id"]
    assert sorted(a[1]["created"] for a in answers) == [False, True] and await stored(services) == 1
    await until(lambda: set(fake.ingresses) == {answers[0][1]["ingress_id"]}, what="extra ingress deleted", timeout=20)
    assert len([m for m, _ in fake.calls if m == "DeleteIngress"]) == 2 and not fake.fail_method["DeleteIngress"]
    # a delete LiveKit fails keeps the stream's ingress (retry it)
    fake.fail_next = 1
    status, err = await call(client, "DELETE", path, seller)
    assert status == 502 and err["error"]["code"] == "media_server_error" and await stored(services) == 1
    # gone on LiveKit's side already (deleted there by hand): the delete still succeeds
    fake.ingresses.clear()
    assert (await call(client, "DELETE", path, seller))[0] == 204 and await stored(services) == 0


async def test_without_livekit_it_is_409(tmp_path, aiohttp_client, dsn):
    from live.app import create_app
    from live.appkeys import SERVICES

    client = await aiohttp_client(create_app(make_settings(tmp_path), dsn, run_migrations=False))
    services = client.app[SERVICES]
    async with services.db.tx(SYSTEM) as conn:
        seller = await make_user(conn, "Sam", "seller")
        sid = await conn.fetchval("""INSERT INTO livestreams (seller_id, slug, title) SELECT id, 't2', 'T2'
                                     FROM sellers WHERE user_id = $1 RETURNING id::text""", seller["id"])
    headers = {"Authorization": "Bearer " + services.token_for(seller)}
    status, err = await call(client, "POST", f"/api/v1/livestreams/{sid}/ingress", headers, {"input": "rtmp"})
    assert status == 409 and err["error"]["code"] == "livekit_not_configured", err


async def test_ingress_webhooks_store_its_state(client, services, stream):
    from tests.media.test_livekit_webhooks import sign

    path, seller = stream["path"], stream["auth"]["seller"]
    made = (await call(client, "POST", path, seller, {"input": "whip"}))[1]

    async def deliver(event_id: str, name: str, state: dict, ingress_id: str = made["ingress_id"]):
        body = json.dumps({"event": name, "id": event_id, "ingressInfo": {
            "ingressId": ingress_id, "roomName": "live-t1", "state": state, "streamKey": made["stream_key"],
            "url": made["url"]}}).encode()
        resp = await client.post("/webhooks/livekit", data=body, headers=sign(body))
        assert resp.status == 200 and (await resp.json())["stream_id"] == stream["id"]

    await deliver("EV_1", "ingress_started", {"status": "ENDPOINT_PUBLISHING"})
    got = (await call(client, "GET", path, seller))[1]
    assert (got["status"], got["error"]) == ("ENDPOINT_PUBLISHING", None)
    await deliver("EV_2", "ingress_ended", {"status": "ENDPOINT_ERROR", "error": "bad codec"})
    got = (await call(client, "GET", path, seller))[1]
    assert (got["status"], got["error"]) == ("ENDPOINT_ERROR", "bad codec")
    await deliver("EV_3", "ingress_started", {"status": "ENDPOINT_PUBLISHING"}, ingress_id="IN_other")  # not ours
    assert (await call(client, "GET", path, seller))[1]["status"] == "ENDPOINT_ERROR"
    # the events are kept, without the stream key (a credential) or the URL
    async with services.db.tx(SYSTEM) as conn:
        payloads = [r["payload"] for r in await conn.fetch("SELECT payload FROM livekit_events ORDER BY event_id")]
    assert [p["ingress_info"]["ingress_id"] for p in payloads] == [made["ingress_id"]] * 2 + ["IN_other"]
    assert payloads[0]["ingress_info"]["state"]["status"] == "ENDPOINT_PUBLISHING"
    assert not any("stream_key" in p["ingress_info"] or "url" in p["ingress_info"] for p in payloads)
    assert made["stream_key"] not in json.dumps(payloads)


async def test_ending_the_stream_deletes_its_ingress_even_when_its_room_had_closed(client, services, stream, fake):
    from tests.media.test_livekit_webhooks import event, sign

    path, seller = stream["path"], stream["auth"]["seller"]
    assert (await call(client, "POST", path, seller, {"input": "rtmp"}))[0] == 201
    # the seller stops OBS, the empty room closes while the stream is live: the ingress stays
    body = event("EV_1", "room_finished")
    assert (await client.post("/webhooks/livekit", data=body, headers=sign(body))).status == 200
    assert await stored(services) == 1 and "IN_1" in fake.ingresses
    # then the stream ends: its room is gone already (DeleteRoom: not_found) and no room_finished follows; the end
    # itself forgets the ingress and a job deletes it in LiveKit (the first DeleteIngress fails: retried)
    fake.fail_method["DeleteIngress"] = 1
    await services.rooms.set_status(Principal(stream["seller_id"], "seller", "Sam"), stream["id"], "ended")
    assert await stored(services) == 0
    await until(lambda: "IN_1" not in fake.ingresses, what="ingress deleted", timeout=20)
    assert [args for m, args in fake.calls if m == "DeleteIngress"] == [{"ingress_id": "IN_1"}] * 2
    assert ("DeleteRoom", {"room": "live-t1"}) in fake.calls and fake.refused == 0


async def test_a_create_answered_while_the_stream_ended_keeps_nothing(client, services, stream, fake):
    import copy

    state = copy.copy(await services.rooms.streams.get(stream["id"]))  # what create saw before the end
    await services.rooms.set_status(Principal(stream["seller_id"], "seller", "Sam"), stream["id"], "ended")
    with pytest.raises(Exception) as refused:
        await services.livekit_ingress.create(state, "rtmp", None)
    assert getattr(refused.value, "code", None) == "stream_not_live"
    assert ("CreateIngress" in [m for m, _ in fake.calls]) and await stored(services) == 0
    await until(lambda: not fake.ingresses, what="its ingress deleted", timeout=20)


async def test_room_finished_of_an_ended_stream_still_deletes_a_left_ingress(client, services, stream, fake):
    from tests.media.test_livekit_webhooks import event, sign

    await services.rooms.set_status(Principal(stream["seller_id"], "seller", "Sam"), stream["id"], "ended")
    fake.ingresses["IN_9"] = None  # an ingress row left by an older version (the webhook path is the backup)
    async with services.db.tx(SYSTEM) as conn:
        await conn.execute("""INSERT INTO livekit_ingresses (livestream_id, ingress_id, input, url, stream_key)
                              VALUES ($1::uuid, 'IN_9', 'rtmp', 'rtmp://lk.test/x', 'key-IN_9')""", stream["id"])
    body = event("EV_9", "room_finished")
    assert (await client.post("/webhooks/livekit", data=body, headers=sign(body))).status == 200
    assert await stored(services) == 0
    await until(lambda: "IN_9" not in fake.ingresses, what="ingress deleted", timeout=20)


async def test_a_call_signed_with_another_secret_is_refused_by_livekit_and_answered_502(services, stream, fake,
                                                                                        tmp_path):
    from live.errors import DomainError
    from live.media.livekit_ingress import LiveKitIngress
    from live.media.livekit_rooms import LiveKitRooms

    other = make_settings(tmp_path, livekit_url=fake.url, livekit_api_key=KEY, livekit_api_secret="z" * 40)
    rooms = LiveKitRooms(other)
    ingress = LiveKitIngress(services.db, other, rooms)
    try:
        state = await services.rooms.streams.get(stream["id"])
        with pytest.raises(DomainError) as refused:
            await ingress.create(state, "rtmp", None)
        assert refused.value.code == "media_server_error" and refused.value.status == 502
        assert fake.refused == 1 and not fake.ingresses and await stored(services) == 0
    finally:
        await rooms.close()


async def test_taking_the_ingress_on_the_end_runs_as_system_and_gives_the_callers_role_back(services, stream):
    from db import media as media_db

    async with services.db.tx(SYSTEM) as conn:
        await conn.execute("""INSERT INTO livekit_ingresses (livestream_id, ingress_id, input, url, stream_key)
                              VALUES ($1::uuid, 'IN_7', 'rtmp', 'rtmp://lk.test/x', 'key-IN_7')""", stream["id"])
        await conn.execute("UPDATE livestreams SET status = 'ended', ended_at = now() WHERE id = $1::uuid",
                           stream["id"])
    async with services.db.tx(Principal(stream["seller_id"], "seller", "Sam")) as conn:
        assert await conn.fetchval("SELECT count(*) FROM livekit_ingresses") == 0  # privileged-only
        assert await media_db.take_ingress_on_end(conn, stream["id"]) == "IN_7"
        assert await conn.fetchval("SELECT current_setting('app.role')") == "seller"
    assert await stored(services) == 0
