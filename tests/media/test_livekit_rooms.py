"""LiveKit RoomService through durable jobs, against the fake LiveKit server (tests/media/fake_livekit.py: real
HTTP, every Twirp call's JWT verified with the API secret): a ban removes the viewer from the room, ending a
stream deletes it; a failed call is retried; 'not found' is done; with the development default URL nothing is
enqueued."""
from __future__ import annotations

import pytest

from live.auth.principal import SYSTEM, Principal
from live.errors import DomainError
from live.media.livekit_rooms import DELETE_JOB, REMOVE_JOB, LiveKitRooms
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
        viewer = await make_user(conn, "Vic")
        sid = await conn.fetchval(
            """INSERT INTO livestreams (seller_id, slug, title, livekit_room, status, started_at)
               SELECT id, 't1', 'T1', 'live-t1', 'live', now() FROM sellers WHERE user_id = $1
               RETURNING id::text""", seller["id"])
    return {"id": sid, "seller": Principal(str(seller["id"]), "seller", "Sam"), "viewer": str(viewer["id"])}


async def jobs_of(services, kind: str) -> int:
    async with services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE entrypoint = $1", kind)


async def test_a_ban_removes_the_viewer_and_ending_deletes_the_room(services, stream, fake):
    assert services.media.rooms.enabled
    fake.rooms["live-t1"] = {stream["viewer"], str(stream["seller"].user_id)}
    fake.fail_next = 1  # the first call meets a restarting server: the job is retried
    await services.chat.ban(stream["seller"], stream["id"], stream["viewer"], "spam")
    await until(lambda: ("RemoveParticipant", {"room": "live-t1", "identity": stream["viewer"]}) in fake.calls
                and stream["viewer"] not in fake.rooms["live-t1"], what="viewer removed", timeout=15)
    assert len(fake.calls) == 2 and fake.refused == 0
    await services.rooms.set_status(stream["seller"], stream["id"], "ended")
    await until(lambda: "live-t1" not in fake.rooms, what="room deleted", timeout=15)
    assert fake.calls[-1] == ("DeleteRoom", {"room": "live-t1"}) and fake.refused == 0
    # done jobs leave the queue
    for kind in (REMOVE_JOB, DELETE_JOB):
        await until(lambda k=kind: _none(services, k), what=f"{kind} done")


async def _none(services, kind):
    return await jobs_of(services, kind) == 0


async def test_not_found_is_done_and_a_wrong_secret_is_refused(services, stream, fake, tmp_path):
    # the viewer is not in the room (never joined the video): the job ends without retries
    await services.chat.ban(stream["seller"], stream["id"], stream["viewer"], None)
    await until(lambda: len(fake.calls) == 1, what="one call")
    await until(lambda: _none(services, REMOVE_JOB), what="job done")
    assert len(fake.calls) == 1
    # a client with another secret is refused by the fake (401), which the job would retry
    other = LiveKitRooms(make_settings(tmp_path, livekit_url=fake.url, livekit_api_key=KEY,
                                       livekit_api_secret="z" * 40))
    try:
        with pytest.raises(DomainError) as refused:
            await other.delete_job({"room": "live-t1"})
        assert refused.value.code == "media_server_error" and fake.refused == 1
    finally:
        await other.close()


async def test_the_default_dev_url_enqueues_nothing(tmp_path, db):
    rooms = LiveKitRooms(make_settings(tmp_path))
    assert not rooms.enabled
    async with db.tx(SYSTEM) as conn:
        await rooms.enqueue_remove(conn, "live-x", "u")
        await rooms.enqueue_delete(conn, "live-x")
        assert await conn.fetchval("SELECT count(*) FROM pgqueuer") == 0


async def test_rooms_ingress_and_egress_share_one_livekit_client(services, stream, fake):
    """One LiveKitAPI (one aiohttp session) for the process's RoomService, IngressService and EgressService calls."""
    calls = services.media.rooms.calls
    assert services.livekit_ingress.lk is calls and services.livekit_egress.lk is calls
    fake.rooms["live-t1"] = set()
    await services.media.rooms.delete_job({"room": "live-t1"})
    client = calls.api()
    state = await services.rooms.streams.get(stream["id"])
    made, _ = await services.livekit_ingress.create(state, "rtmp", None)
    await services.livekit_ingress.delete(stream["id"])
    assert calls.api() is client and [m for m, _ in fake.calls] == ["DeleteRoom", "CreateIngress", "DeleteIngress"]
