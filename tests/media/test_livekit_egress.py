"""LiveKit egress against the fake LiveKit server (tests/media/fake_livekit.py: every Twirp call's JWT verified,
EgressService calls need `roomRecord`, CreateRoom `roomCreate`) and webhooks signed exactly as LiveKit signs them:
a stream going live starts a room-composite MP4 egress through a durable job and writes its `recordings` row;
egress_started / egress_updated / egress_ended make it ready (location, duration, size) or failed."""
from __future__ import annotations

import asyncio
import json

import pytest
from livekit import api as lk

from live.auth.principal import SYSTEM, Principal
from live.media.livekit_egress import START_JOB
from tests.helpers import make_settings, until
from tests.media.fake_livekit import KEY, SECRET
from tests.media.test_livekit_webhooks import sign
from tests.rooms.harness import make_user

PATH = "recordings/{room_name}-{time}.mp4"


@pytest.fixture
def settings(tmp_path, fake):
    return make_settings(tmp_path, livekit_url=fake.url, livekit_api_key=KEY, livekit_api_secret=SECRET,
                         livekit_egress="true", livekit_egress_filepath=PATH)


@pytest.fixture
async def stream(services):
    async with services.db.tx(SYSTEM) as conn:
        seller = await make_user(conn, "Sam", "seller")
        sid = await conn.fetchval(
            """INSERT INTO livestreams (seller_id, slug, title, livekit_room)
               SELECT id, 't1', 'T1', 'live-t1' FROM sellers WHERE user_id = $1 RETURNING id::text""", seller["id"])
    return {"id": sid, "seller": Principal(str(seller["id"]), "seller", "Sam")}


async def recordings(services) -> list[dict]:
    async with services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch(
            """SELECT livestream_id::text AS stream_id, source, status, egress_id, location, content_type,
                      duration_ms, bytes, error, started_at, ended_at FROM recordings ORDER BY started_at""")
    return [dict(r) for r in rows]


async def queued(services, kind: str = START_JOB) -> int:
    async with services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE entrypoint = $1", kind)


def egress_event(event_id: str, name: str, egress_id: str, status: str, room: str = "live-t1", **info) -> bytes:
    body = {"event": name, "id": event_id, "createdAt": "1765000000",
            "egressInfo": {"egressId": egress_id, "roomName": room, "status": status, **info}}
    return json.dumps(body).encode()


async def deliver(client, body: bytes) -> dict:
    resp = await client.post("/webhooks/livekit", data=body, headers=sign(body))
    assert resp.status == 200, await resp.text()
    return await resp.json()


def methods(fake) -> list[str]:
    return [m for m, _ in fake.calls]


async def test_going_live_records_the_room_and_the_ended_egress_is_the_replay(client, services, stream, fake):
    await services.rooms.set_status(stream["seller"], stream["id"], "live")
    await until(lambda: _rows(services, 1), what="recording row", timeout=15)
    assert methods(fake) == ["ListEgress", "CreateRoom", "StartRoomCompositeEgress"] and fake.refused == 0
    assert fake.calls[2][1] == {"room": "live-t1", "files": [("MP4", PATH)]}
    [row] = await recordings(services)
    assert row["stream_id"] == stream["id"] and row["source"] == "livekit_egress" and row["egress_id"] == "EG_1"
    assert row["status"] == "recording" and row["content_type"] == "video/mp4" and row["location"] is None
    await until(lambda: _none(services), what="job done")
    # LiveKit reports it started, then active
    t0 = 1_765_000_000_000_000_000  # ns
    await deliver(client, egress_event("EV_1", "egress_started", "EG_1", "EGRESS_STARTING", startedAt=str(t0)))
    await deliver(client, egress_event("EV_2", "egress_updated", "EG_1", "EGRESS_ACTIVE", startedAt=str(t0)))
    [row] = await recordings(services)
    assert row["status"] == "recording" and row["started_at"].timestamp() == t0 / 1e9
    # the stream ends: its room is deleted (which ends the egress), and LiveKit sends the result
    await services.rooms.set_status(stream["seller"], stream["id"], "ended")
    await until(lambda: "DeleteRoom" in methods(fake), what="room deleted", timeout=15)
    done = {"startedAt": str(t0), "endedAt": str(t0 + 65_500_000_000),
            "fileResults": [{"filename": "recordings/live-t1-1.mp4", "location": "s3://bucket/live-t1-1.mp4",
                             "duration": "65500000000", "size": "7340032"}]}
    answer = await deliver(client, egress_event("EV_3", "egress_ended", "EG_1", "EGRESS_COMPLETE", **done))
    assert answer == {"received": True, "duplicate": False, "stream_id": stream["id"]}
    [row] = await recordings(services)
    assert (row["status"], row["location"], row["duration_ms"], row["bytes"], row["error"]) == \
        ("ready", "s3://bucket/live-t1-1.mp4", 65500, 7340032, None)
    assert row["ended_at"].timestamp() == (t0 + 65_500_000_000) / 1e9
    # a late update does not bring it back to recording; a retried delivery is a duplicate
    await deliver(client, egress_event("EV_4", "egress_updated", "EG_1", "EGRESS_ACTIVE"))
    assert (await deliver(client, egress_event("EV_3", "egress_ended", "EG_1", "EGRESS_COMPLETE", **done)))[
        "duplicate"] is True
    assert [r["status"] for r in await recordings(services)] == ["ready"]
    assert methods(fake).count("StartRoomCompositeEgress") == 1 and fake.refused == 0


async def _rows(services, n: int) -> bool:
    return len(await recordings(services)) == n


async def _none(services) -> bool:
    return await queued(services) == 0


async def test_failed_aborted_and_fileless_egresses_fail_and_webhooks_may_come_first(client, services, stream):
    # egress events before (or without) our job's row: the webhook writes it
    await deliver(client, egress_event("EV_1", "egress_started", "EG_9", "EGRESS_ACTIVE"))
    await deliver(client, egress_event("EV_2", "egress_ended", "EG_9", "EGRESS_FAILED",
                                       error="chrome crashed", endedAt="1765000100000000000"))
    await deliver(client, egress_event("EV_3", "egress_ended", "EG_10", "EGRESS_ABORTED"))
    await deliver(client, egress_event("EV_4", "egress_ended", "EG_11", "EGRESS_COMPLETE"))  # no file
    # limit reached with a file: the file is the replay (up to the limit)
    await deliver(client, egress_event("EV_5", "egress_ended", "EG_12", "EGRESS_LIMIT_REACHED",
                                       fileResults=[{"filename": "x.mp4", "duration": "1000000", "size": "10"}]))
    by_id = {r["egress_id"]: r for r in await recordings(services)}
    assert {k: (r["status"], r["error"]) for k, r in by_id.items()} == {
        "EG_9": ("failed", "chrome crashed"), "EG_10": ("failed", "EGRESS_ABORTED"),
        "EG_11": ("failed", "the egress ended without a file"), "EG_12": ("ready", None)}
    assert by_id["EG_12"]["location"] == "x.mp4" and by_id["EG_12"]["duration_ms"] == 1
    assert all(r["stream_id"] == stream["id"] and r["source"] == "livekit_egress" for r in by_id.values())
    # another room's egress: stored, no recording
    answer = await deliver(client, egress_event("EV_6", "egress_ended", "EG_13", "EGRESS_COMPLETE", room="live-x"))
    assert answer["stream_id"] is None and len(await recordings(services)) == 4


async def test_the_job_retries_adopts_a_running_egress_and_skips_an_ended_stream(client, services, stream, fake):
    egress = services.livekit_egress
    # LiveKit restarting: the job is retried (the queue's backoff), one egress in the end
    fake.fail_next = 1
    await services.rooms.set_status(stream["seller"], stream["id"], "live")
    await until(lambda: _rows(services, 1), what="recording row", timeout=20)
    assert methods(fake) == ["ListEgress", "ListEgress", "CreateRoom", "StartRoomCompositeEgress"]
    # run again (a start whose answer was lost): the running egress is adopted, not started twice
    await egress.start_job({"stream_id": stream["id"], "room": "live-t1"})
    assert methods(fake)[-1] == "ListEgress" and len(fake.egresses) == 1 and len(await recordings(services)) == 1
    # the stream ends while a start is on its way: the egress is stopped again
    fake.egresses["EG_1"].status = lk.EgressStatus.EGRESS_COMPLETE
    fake.delay = 0.3
    job = asyncio.create_task(egress.start_job({"stream_id": stream["id"], "room": "live-t1"}))
    await until(lambda: "StartRoomCompositeEgress" in methods(fake)[4:], what="second start")
    async with services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE livestreams SET status = 'ended', ended_at = now() WHERE id = $1::uuid",
                           stream["id"])
    await job
    fake.delay = 0.0
    assert methods(fake)[-1] == "StopEgress" and fake.calls[-1][1] == {"egress_id": "EG_2"}
    # an ended stream's job does nothing
    calls = len(fake.calls)
    await egress.start_job({"stream_id": stream["id"], "room": "live-t1"})
    assert len(fake.calls) == calls and fake.refused == 0


async def test_off_by_default(tmp_path, fake, db):
    from live.media.livekit_egress import LiveKitEgress
    from live.media.livekit_rooms import LiveKitRooms

    for overrides in ({"livekit_url": fake.url}, {"livekit_egress": "true"}):  # no egress setting; no LiveKit
        settings = make_settings(tmp_path, **overrides)
        rooms = LiveKitRooms(settings)
        assert not LiveKitEgress(db, settings, rooms).enabled
        async with db.tx(SYSTEM) as conn:
            await rooms.enqueue_egress(conn, "00000000-0000-0000-0000-000000000000", "live-x")
            assert await conn.fetchval("SELECT count(*) FROM pgqueuer") == 0


async def due(services, kind: str) -> list[dict]:
    """The payloads of the queued jobs of `kind`, made due now (the in-process worker runs them)."""
    async with services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("""UPDATE pgqueuer SET execute_after = now() WHERE entrypoint = $1
                                   AND status = 'queued' RETURNING payload""", kind)
    return [json.loads(bytes(r["payload"])) for r in rows]


async def test_an_ended_streams_egress_is_looked_up_when_its_webhook_never_comes(client, services, stream, fake):
    from live.media.livekit_egress import CHECK_JOB

    await services.rooms.set_status(stream["seller"], stream["id"], "live")
    await until(lambda: _rows(services, 1), what="recording row", timeout=15)
    # the stream ends; no egress webhook ever comes (lost, or not configured): a look 2 min after the end
    await services.rooms.set_status(stream["seller"], stream["id"], "ended")
    async with services.db.tx(SYSTEM) as conn:
        wait = await conn.fetchval("""SELECT extract(epoch FROM execute_after - now()) FROM pgqueuer
                                      WHERE entrypoint = $1""", CHECK_JOB)
    assert 100 < wait < 125
    # still active at the first look (LiveKit ending it): looked at again 5 min later, the row unchanged
    fake.egresses["EG_1"].status = lk.EgressStatus.EGRESS_ENDING
    [first] = await due(services, CHECK_JOB)
    assert first == {"stream_id": stream["id"], "check": 0}
    await until(lambda: _next_check(services, 1), what="second look queued", timeout=15)
    assert [r["status"] for r in await recordings(services)] == ["recording"]
    assert ("ListEgress", {"room": "", "active": False, "egress_id": "EG_1"}) in fake.calls
    # then complete with its file: the next look makes the row ready, as egress_ended would have
    info = fake.egresses["EG_1"]
    info.status = lk.EgressStatus.EGRESS_COMPLETE
    info.file_results.add(filename="live-t1.mp4", location="s3://b/live-t1.mp4", duration=5_000_000_000, size=99)
    fake.fail_method["ListEgress"] = 1  # and LiveKit fails the first call: the job is retried
    await due(services, CHECK_JOB)
    await until(lambda: _status(services, "ready"), what="ready", timeout=20)
    [row] = await recordings(services)
    assert (row["location"], row["duration_ms"], row["bytes"]) == ("s3://b/live-t1.mp4", 5000, 99)
    await until(lambda: _next_check(services, None), what="no further look", timeout=15)
    assert fake.refused == 0


async def test_an_egress_livekit_forgot_or_never_ends_fails(services, stream, fake):
    from live.media.livekit_rooms import EGRESS_CHECK_DELAYS

    egress = services.livekit_egress
    async with services.db.tx(SYSTEM) as conn:
        for egress_id in ("EG_7", "EG_8"):
            await conn.execute("""INSERT INTO recordings (livestream_id, source, egress_id, content_type)
                                  VALUES ($1::uuid, 'livekit_egress', $2, 'video/mp4')""", stream["id"], egress_id)
    fake.egresses["EG_8"] = lk.EgressInfo(egress_id="EG_8", room_name="live-t1", status=lk.EgressStatus.EGRESS_ACTIVE)
    # the last look: EG_7 unknown to LiveKit, EG_8 still active ~3 h after the end: stopped, both failed
    await egress.check_job({"stream_id": stream["id"], "check": len(EGRESS_CHECK_DELAYS) - 1})
    by_id = {r["egress_id"]: (r["status"], r["error"]) for r in await recordings(services)}
    assert by_id["EG_7"] == ("failed", "LiveKit does not know this egress")
    assert by_id["EG_8"][0] == "failed" and "still active" in by_id["EG_8"][1]
    assert fake.calls[-1] == ("StopEgress", {"egress_id": "EG_8"}) and await _next_check(services, None)


async def _next_check(services, check) -> bool:
    from live.media.livekit_egress import CHECK_JOB

    async with services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT payload FROM pgqueuer WHERE entrypoint = $1", CHECK_JOB)
    checks = [json.loads(bytes(r["payload"]))["check"] for r in rows]
    return checks == ([] if check is None else [check])


async def _status(services, status: str) -> bool:
    return [r["status"] for r in await recordings(services)] == [status]
