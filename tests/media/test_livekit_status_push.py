"""A LiveKit webhook that turns the seller's publishing on or off tells the room (`media:status`, as the embedded
server does): the demo room, a real Socket.IO viewer, deliveries signed as LiveKit signs them with the dev keys."""
from __future__ import annotations

import aiohttp

from tests.media.test_livekit_webhooks import event, sign
from tests.rooms.harness import SELLER, start_live


async def test_publishing_changes_reach_the_room(tmp_path, dsn, aiohttp_client):
    live = await start_live(tmp_path, dsn, aiohttp_client, livekit_url="ws://livekit.test:7880")
    try:
        await _changes(live)
    finally:
        await live.close_viewers()


async def _changes(live):
    viewer = await live.viewer("watcher")
    stream_id = viewer.joined["stream"]["id"]
    room = viewer.joined["media"]["room"]
    seller_id, _ = await live.user(SELLER, "seller")
    url = live.base.rstrip("/") + "/webhooks/livekit"
    async with aiohttp.ClientSession() as http:
        async def deliver(eid: str, name: str, who: str | None = None) -> None:
            body = event(eid, name, room=room, identity=who)
            async with http.post(url, data=body, headers=sign(body, secret="secret", key="devkey")) as resp:
                assert resp.status == 200, await resp.text()

        mark = viewer.mark("media:status")
        await deliver("EV_1", "track_published", seller_id)
        told = await viewer.wait_after("media:status", mark)
        assert told["stream_id"] == stream_id and told["publishing"] is True
        await deliver("EV_2", "track_published", seller_id)  # a second track: no change, no event
        await deliver("EV_3", "participant_left", seller_id)
        told = await viewer.wait_after("media:status", mark + 1)
        assert told["publishing"] is False, viewer.events["media:status"]
        assert len(viewer.events["media:status"]) == mark + 2
