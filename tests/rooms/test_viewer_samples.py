"""The viewer count over time (the studio's analytics chart): the room layer stores each live stream's total once per
30 s slot in one statement, only while the stream has viewers; a slot written twice (two workers) keeps one row with
the larger count; GET /livestreams/{id}/analytics returns the samples (`viewers_over_time`) and the paid sales per
minute (`sales_over_time`) and the products most sold (`top_products`); a stream watched for days gives at most
600 points, the largest count of each equal bucket, and sales over days at most 600 points, the sum of each bucket."""
from __future__ import annotations

from datetime import datetime, timedelta

from db import analytics as analytics_db
from live.auth.principal import SYSTEM
from live.commerce.orders import PAID_LIKE
from live.rooms import node
from tests.rooms.harness import SELLER, paid_sale


async def samples(live, stream_id: str) -> list[tuple[datetime, int]]:
    async with live.services.db.tx(SYSTEM) as conn:
        return [(r["at"], r["viewers"]) for r in await analytics_db.viewers_over_time(conn, stream_id)]


async def test_viewer_samples_and_the_analytics_series(live, monkeypatch):
    monkeypatch.setattr(node, "VIEWER_SAMPLE_SECONDS", 3600)  # one slot for the whole test: no boundary crossed
    rooms = live.services.rooms
    demo = await live.demo_state()
    writes: list[list] = []
    save = analytics_db.save_viewer_samples

    async def counted(conn, rows, slot):
        writes.append(list(rows))
        await save(conn, rows, slot)

    monkeypatch.setattr(node.analytics_db, "save_viewer_samples", counted)

    await rooms.save_viewer_samples()  # nobody watches: no statement at all
    assert writes == [] and await samples(live, demo.id) == []

    buyer_id, buyer_token = await live.user("sample-buyer")
    buyer = await live.open_viewer(live.base, buyer_token, "sample-buyer", buyer_id, "demo", {})
    await live.viewer()
    await rooms.publish_counts()  # the 1 s tally, now: the stream's total over every worker
    await rooms.save_viewer_samples()
    assert writes == [[(demo.id, 2)]], "one statement, one row per watched live stream"
    [(at, viewers)] = await samples(live, demo.id)
    assert viewers == 2 and at.timestamp() % 3600 == 0, "the start of its slot"

    # another worker writes the same slot: still one row, the larger count kept
    async with live.services.db.tx(SYSTEM) as conn:
        await save(conn, [(demo.id, 5)], 3600)
        await save(conn, [(demo.id, 3)], 3600)
    assert await samples(live, demo.id) == [(at, 5)]

    # an ended stream with viewers left in its room is not sampled
    demo.status = "ended"
    await rooms.save_viewer_samples()
    demo.status = "live"
    assert len(writes) == 1

    order = await paid_sale(live, buyer_token, buyer)
    await buyer.wait_for("order:update", lambda d: d["order"]["status"] == "paid", 20)
    _, token = await live.user(SELLER, "seller")
    status, stats = await live.api("GET", "/livestreams/demo/analytics", token)
    assert status == 200, stats
    assert [(datetime.fromisoformat(p["at"]), p["viewers"]) for p in stats["viewers_over_time"]] == [(at, 5)]
    [minute] = stats["sales_over_time"]
    assert stats["sales_bucket_minutes"] == 1
    line = order["items"][0]
    assert (minute["orders"], minute["units"]) == (1, 2)
    assert minute["revenue"] == [{"currency": line["currency"], "amount_minor": 2 * line["unit_price_minor"]}]
    assert datetime.fromisoformat(minute["at"]).second == 0
    assert stats["top_products"] == [{"product_id": line["product_id"], "title": line["title"],
                                      "currency": line["currency"], "units": 2,
                                      "amount_minor": 2 * line["unit_price_minor"]}]

    # sales over three days: 1,000 more paid orders (copies of this one, 259 s apart, the last three days before
    # it) come back as at most 600 points of equal buckets, every order, unit and amount counted once
    async with live.services.db.tx(SYSTEM) as conn:
        await conn.execute(
            """WITH n AS (
                 INSERT INTO orders
                 SELECT (jsonb_populate_record(o, jsonb_build_object(
                           'id', gen_random_uuid(), 'number', next_order_number(),
                           'checkout_key', gen_random_uuid()::text,
                           'created_at', o.created_at - interval '3 days' + i * interval '259 seconds'))).*
                 FROM orders o, generate_series(0, 999) AS i WHERE o.id = $1::uuid
                 RETURNING id)
               INSERT INTO order_items
               SELECT (jsonb_populate_record(it, jsonb_build_object('id', gen_random_uuid(), 'order_id', n.id))).*
               FROM n, order_items it WHERE it.order_id = $1::uuid""", order["id"])
        per_minute = await analytics_db.sales_over_time(conn, demo.id, PAID_LIKE, 10 ** 6)
    status, stats = await live.api("GET", "/livestreams/demo/analytics", token)
    sales = stats["sales_over_time"]
    starts = [datetime.fromisoformat(p["at"]) for p in sales]
    width = (per_minute[-1]["at"] - per_minute[0]["at"]) // timedelta(minutes=1) // 600 + 1  # 8 minutes
    assert len(per_minute) == 1001 and 400 < len(sales) <= 600 and starts == sorted(starts)
    assert stats["sales_bucket_minutes"] == width and {r["minutes"] for r in per_minute} == {1}
    assert starts[0] == per_minute[0]["at"] and all((t - starts[0]) % timedelta(minutes=width) == timedelta(0)
                                                    for t in starts)
    assert sum(p["orders"] for p in sales) == 1001 and sum(p["units"] for p in sales) == 2002
    assert sum(r["amount_minor"] for p in sales for r in p["revenue"]) == 1001 * 2 * line["unit_price_minor"]

    # three days before: 8,640 samples (30 s apart) come back as at most 600 points, each bucket's largest count
    first = at - timedelta(days=3)
    async with live.services.db.tx(SYSTEM) as conn:
        await conn.execute(
            """INSERT INTO viewer_samples (livestream_id, at, viewers)
               SELECT $1::uuid, $2::timestamptz + i * interval '30 seconds', CASE WHEN i = 4321 THEN 9999 ELSE i % 7 END
               FROM generate_series(0, 8639) AS i""", demo.id, first)
        fits = await analytics_db.viewers_over_time(conn, demo.id, 8641)
    assert [(r["at"], r["viewers"]) for r in fits][-2:] == [(first + timedelta(seconds=30 * 8639), 8639 % 7), (at, 5)]
    status, stats = await live.api("GET", "/livestreams/demo/analytics", token)
    points = [(datetime.fromisoformat(p["at"]), p["viewers"]) for p in stats["viewers_over_time"]]
    width = timedelta(seconds=3 * 86400 // 600 + 1)  # 433 s: 599 buckets
    buckets: dict[datetime, int] = {}
    for r in fits:
        start = first + (r["at"] - first) // width * width
        buckets[start] = max(buckets.get(start, 0), r["viewers"])
    assert len(fits) == 8641 and len(points) == 599 and points == sorted(buckets.items())
    assert points[0] == (first, 6) and max(n for _, n in points) == 9999  # the first bucket's largest; the peak
