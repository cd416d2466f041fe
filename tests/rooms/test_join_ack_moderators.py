"""The join ack names the stream's moderators (docs/protocol.md: for the chat's badges), and follows a change."""
from __future__ import annotations


async def test_the_join_ack_lists_the_moderators(live):
    seller = await live.seller()
    assert seller.joined["stream"]["moderators"] == []
    mod_id, _ = await live.user("ack-mod")
    assert (await seller.call("moderator:add", {"stream_id": "demo", "user_id": mod_id}))["ok"]
    viewer = await live.viewer()
    assert viewer.joined["stream"]["moderators"] == [mod_id]
    assert (await seller.call("moderator:remove", {"stream_id": "demo", "user_id": mod_id}))["ok"]
    await live.barrier(seller)
    later = await live.viewer()
    assert later.joined["stream"]["moderators"] == []
