"""`POST /webhooks/livekit` over real HTTP, each delivery signed exactly as LiveKit signs it (a JWT with the API
key as issuer, HS256 with the secret, whose `sha256` claim is the base64 SHA-256 of the body): events are stored
once and applied once to the stream's media status; forged, unsigned, altered and oversized deliveries are refused
with a JSON error and store nothing."""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from livekit import api as lk

from live.auth.principal import SYSTEM
from live.media.livekit_webhooks import MAX_BODY
from tests.helpers import make_settings
from tests.media.fake_livekit import KEY, SECRET
from tests.rooms.harness import make_user


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, livekit_api_key=KEY, livekit_api_secret=SECRET)


def sign(body: bytes, secret: str = SECRET, key: str = KEY) -> dict:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    token = lk.AccessToken(key, secret).with_sha256(digest).with_ttl(timedelta(minutes=5)).to_jwt()
    return {"Authorization": token, "Content-Type": "application/webhook+json"}


def event(event_id: str, name: str, room: str = "live-t1", identity: str | None = None) -> bytes:
    body: dict = {"event": name, "id": event_id, "createdAt": "1765000000", "room": {"name": room, "sid": "RM_1"}}
    if identity:
        body["participant"] = {"identity": identity, "sid": "PA_" + identity[:6]}
    if name.startswith("track_"):
        body["track"] = {"sid": "TR_" + event_id, "type": "VIDEO"}
    return json.dumps(body).encode()


@pytest.fixture
async def stream(services):
    async with services.db.tx(SYSTEM) as conn:
        seller = await make_user(conn, "Sam", "seller")
        viewer = await make_user(conn, "Vic")
        sid = await conn.fetchval(
            """INSERT INTO livestreams (seller_id, slug, title, livekit_room)
               SELECT id, 't1', 'T1', 'live-t1' FROM sellers WHERE user_id = $1 RETURNING id::text""", seller["id"])
    return {"id": sid, "seller": str(seller["id"]), "viewer": str(viewer["id"])}


async def post(client, body: bytes, headers: dict):
    resp = await client.post("/webhooks/livekit", data=body, headers=headers)
    return resp.status, await resp.json()


async def events_stored(services) -> int:
    async with services.db.tx(SYSTEM) as conn:
        return await conn.fetchval("SELECT count(*) FROM livekit_events")


async def test_events_update_the_stream_media_status_once(client, services, stream):
    hooks = services.livekit_webhooks
    assert (await hooks.status(stream["id"]))["publishing"] is False
    seller, viewer = stream["seller"], stream["viewer"]
    for eid, name, who in [("EV_1", "room_started", None), ("EV_2", "participant_joined", seller),
                           ("EV_3", "track_published", seller), ("EV_4", "track_published", seller),
                           ("EV_5", "participant_joined", viewer), ("EV_6", "track_published", viewer)]:
        body = event(eid, name, identity=who)
        status, answer = await post(client, body, sign(body))
        assert status == 200 and answer == {"received": True, "duplicate": False, "stream_id": stream["id"]}
    assert await hooks.status(stream["id"]) == {"room_active": True, "participants": 2, "publishing": True,
                                                "last_event": "participant_joined"}
    # LiveKit retries a delivery with the same id: stored once, applied once
    body = event("EV_2", "participant_joined", identity=seller)
    status, answer = await post(client, body, sign(body))
    assert status == 200 and answer["duplicate"] is True
    assert (await hooks.status(stream["id"]))["participants"] == 2
    # one of the seller's two tracks goes: still publishing; the other: not
    for eid in ("EV_7", "EV_8"):
        body = event(eid, "track_unpublished", identity=seller)
        assert (await post(client, body, sign(body)))[0] == 200
        publishing = (await hooks.status(stream["id"]))["publishing"]
        assert publishing is (eid == "EV_7")
    # the seller publishes again, then leaves: not publishing, one participant left
    for eid, name in [("EV_9", "track_published"), ("EV_10", "participant_left")]:
        body = event(eid, name, identity=seller)
        assert (await post(client, body, sign(body)))[0] == 200
    assert await hooks.status(stream["id"]) == {"room_active": True, "participants": 1, "publishing": False,
                                                "last_event": "participant_left"}
    body = event("EV_11", "room_finished")
    assert (await post(client, body, sign(body)))[0] == 200
    assert await hooks.status(stream["id"]) == {"room_active": False, "participants": 0, "publishing": False,
                                                "last_event": "room_finished"}
    assert await events_stored(services) == 11
    # an event for a room that is no stream's: stored, nothing applied
    body = event("EV_12", "room_started", room="live-nobody")
    status, answer = await post(client, body, sign(body))
    assert status == 200 and answer == {"received": True, "duplicate": False, "stream_id": None}
    async with services.db.tx(SYSTEM) as conn:
        row = await conn.fetchrow("SELECT event, room, identity, payload FROM livekit_events WHERE event_id = 'EV_3'")
    assert row["event"] == "track_published" and row["room"] == "live-t1" and row["identity"] == seller
    assert row["payload"]["track"]["sid"] == "TR_EV_3"


async def test_a_stream_without_its_own_room_name_is_found_by_slug(client, services):
    async with services.db.tx(SYSTEM) as conn:
        seller = await make_user(conn, "Sue", "seller")
        sid = await conn.fetchval(
            """INSERT INTO livestreams (seller_id, slug, title) SELECT id, 'nameless', 'N' FROM sellers
               WHERE user_id = $1 RETURNING id::text""", seller["id"])
    body = event("EV_1", "room_started", room="live-nameless")
    status, answer = await post(client, body, sign(body))
    assert status == 200 and answer["stream_id"] == sid
    assert (await services.livekit_webhooks.status(sid))["room_active"] is True


async def test_forged_unsigned_altered_and_oversized_deliveries_are_refused(client, services, stream):
    body = event("EV_1", "room_started")
    cases = [
        ({}, 401),  # no Authorization
        ({"Authorization": "not-a-jwt"}, 401),
        (sign(body, secret="another-secret-" + "y" * 30), 401),  # signed with another secret
        (sign(body, key="other-key"), 401),  # another API key (issuer)
        (sign(body + b" "), 401),  # the body was changed after signing
    ]
    for headers, expected in cases:
        status, answer = await post(client, body, headers)
        assert status == expected and answer["error"]["code"] == "unauthorized", (headers, answer)
    # signed for real, but not an event: 400
    long_room = event("EV_long", "room_started", room="r" * 201)
    for bad in (b"[1, 2]", b"{\"event\": 5}", b"{\"event\": \"room_started\"}", b"\xff\xfe", long_room):
        status, answer = await post(client, bad, sign(bad))
        assert status == 400 and answer["error"]["code"] == "invalid_payload", (bad, answer)
    # a Bearer prefix is accepted too
    headers = sign(body)
    headers["Authorization"] = "Bearer " + headers["Authorization"]
    assert (await post(client, body, headers))[0] == 200
    big = json.dumps({"event": "room_started", "id": "EV_big", "room": {"name": "live-t1", "metadata": "m" * MAX_BODY}})
    status, answer = await post(client, big.encode(), sign(big.encode()))
    assert status == 413 and "error" in answer
    assert await events_stored(services) == 1
