"""Replays over the real app: a seller publishes by WHIP (a real aiortc peer), spotlights a product during the
recording over a real Socket.IO connection, DELETEs; the replay JSON lists the recording (ready, its URL) and the
spotlight at the right offset (±300 ms); the file is served with range requests (206 with the exact bytes, a
suffix range, 416, ETag/304) and bad names are 404; LiveKit egress rows show with their http(s) location; a banned
user is refused."""
from __future__ import annotations

import asyncio
import time

from live.auth.principal import SYSTEM
from tests.helpers import until
from tests.media.test_recording import publish, rows
from tests.rooms.harness import API, SELLER


async def test_replay_with_its_product_timeline_and_range_requests(live):
    _, token = await live.user(SELLER, "seller")
    seller = await live.seller()
    state = await live.demo_state()
    products = (await live.api("GET", "/livestreams/demo/products"))[1]["items"]
    before = (await live.api("GET", "/livestreams/demo"))[1]["spotlight_product_id"]
    other = next(p for p in products if p["id"] != before)
    pc, location = await publish(live, token)
    recorder = live.services.recorder
    try:
        # the recording's first frame came between two looks: `seen_lo` and `seen_hi`
        seen_lo = time.time()
        while not any(s.writer.started_wall for s in recorder.segments.values()):
            seen_lo = time.time()
            await asyncio.sleep(0.01)
        seen_hi = time.time()
        await asyncio.sleep(1.0)
        sent = time.time()
        assert (await seller.call("product:highlight", {"stream_id": "demo", "product_id": other["id"]}))["ok"]
        acked = time.time()
        await asyncio.sleep(1.0)
        assert (await live.client.delete(location, headers={"Authorization": f"Bearer {token}"})).status == 204
        lived = time.time() - seen_lo
    finally:
        await pc.close()
    await until(lambda: not recorder.segments, what="the recording closed")
    status, body = await live.api("GET", "/livestreams/demo/replay")
    assert status == 200, body
    (rec,) = body["recordings"]
    assert rec["status"] == "ready" and rec["source"] == "embedded" and rec["content_type"] == "video/webm"
    assert rec["url"].startswith("/replays/") and rec["width"] == 320 and rec["height"] == 240
    assert abs(rec["duration_ms"] / 1000 - lived) <= 0.1 * lived and rec["bytes"] > 0, (rec, lived)
    placed = [t for t in body["timeline"] if t["recording_id"] == rec["id"]]
    assert [(t["product_id"], t["title"]) for t in placed] == [(other["id"], other["title"])]
    # the spotlight was set between `sent` and `acked`: its offset from the first frame within 300 ms of that
    low, high = (sent - seen_hi) * 1000 - 300, (acked - seen_lo) * 1000 + 300
    assert low <= placed[0]["offset_ms"] <= high, (placed, low, high)
    earlier = [t for t in body["timeline"] if t["recording_id"] is None]  # the seed's spotlight, before recording
    assert [t["product_id"] for t in earlier] == [before] and earlier[0]["offset_ms"] is None
    assert rec["spotlight_at_start"]["product_id"] == before  # on screen from 0:00

    # the file, with range requests
    (row,) = await rows(live, state.id)
    data = (live.services.settings.data_dir / "recordings" / row["file_name"]).read_bytes()
    resp = await live.client.get(rec["url"])
    assert resp.status == 200 and await resp.read() == data and resp.headers["Accept-Ranges"] == "bytes"
    assert resp.content_type == "video/webm" and resp.headers["ETag"] and resp.headers["Last-Modified"]
    etag = resp.headers["ETag"]
    resp = await live.client.get(rec["url"], headers={"Range": "bytes=100-299"})
    assert resp.status == 206 and await resp.read() == data[100:300]
    assert resp.headers["Content-Range"] == f"bytes 100-299/{len(data)}"
    resp = await live.client.get(rec["url"], headers={"Range": "bytes=-50"})
    assert resp.status == 206 and await resp.read() == data[-50:]
    resp = await live.client.get(rec["url"], headers={"Range": f"bytes={len(data) + 10}-"})
    assert resp.status == 416 and resp.headers["Content-Range"] == f"bytes */{len(data)}"
    assert (await live.client.get(rec["url"], headers={"If-None-Match": etag})).status == 304
    for bad in ("/replays/x.mp4", "/replays/..%2Fjwt_secret", "/replays/%2E%2E%2Fjwt_secret",
                rec["url"].replace(".webm", ".mp4"), rec["url"] + ".part", rec["url"].upper(),
                f"/replays/.{row['file_name']}.part"):
        resp = await live.client.get(bad)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found", bad


async def test_egress_rows_unknown_streams_and_banned_users(live):
    state = await live.demo_state()
    async with live.services.db.tx(SYSTEM) as conn:
        await conn.execute(
            """INSERT INTO recordings (livestream_id, source, status, egress_id, location, content_type, duration_ms,
                                       bytes, started_at)
               VALUES ($1::uuid, 'livekit_egress', 'ready', 'EG_1', 'https://cdn.example/rec/EG_1.mp4', 'video/mp4',
                       60000, 1234, now() - interval '10 minutes'),
                      ($1::uuid, 'livekit_egress', 'ready', 'EG_2', '/out/EG_2.mp4', 'video/mp4', 1000, 10, now()),
                      ($1::uuid, 'livekit_egress', 'recording', 'EG_3', NULL, NULL, NULL, NULL, now())""",
            state.id)
    status, body = await live.api("GET", f"/livestreams/{state.id}/replay")
    assert status == 200
    urls = [(r["source"], r["status"], r["url"]) for r in body["recordings"]]
    assert urls[0] == ("livekit_egress", "ready", "https://cdn.example/rec/EG_1.mp4")
    assert sorted(urls[1:], key=str) == sorted([("livekit_egress", "ready", None),
                                                ("livekit_egress", "recording", None)], key=str)
    assert body["recordings"][0]["duration_ms"] == 60000
    # the seed's spotlight was set after the first of them began, before the others
    spotlit = (await live.api("GET", "/livestreams/demo"))[1]["spotlight_product_id"]
    assert body["recordings"][0]["spotlight_at_start"] is None
    assert [r["spotlight_at_start"]["product_id"] for r in body["recordings"][1:]] == [spotlit, spotlit]
    assert (await live.api("GET", "/livestreams/no-such-stream/replay"))[0] == 404
    assert (await live.api("GET", "/livestreams/00000000-0000-0000-0000-000000000000/replay"))[0] == 404
    troll_id, troll = await live.user("replay-troll")
    seller = await live.seller()
    assert (await seller.call("user:ban", {"stream_id": "demo", "user_id": troll_id, "reason": "spam"}))["ok"]
    status, body = await live.api("GET", "/livestreams/demo/replay", troll)
    assert status == 403 and body["error"]["code"] == "banned"
    resp = await live.client.get(f"{API}/livestreams/demo/replay")
    assert resp.status == 200
