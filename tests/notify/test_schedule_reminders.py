"""Reminders before a scheduled start, through the real job queue (delayed jobs), notify/deliver and a real SMTP
server: sent once, STREAM_REMINDER_MINUTES before the start; skipped after a reschedule (the new time has its own
job) and once the stream started; none for a stream without a time, one in the past or more than a year away."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from live.auth.principal import SYSTEM
from tests.commerce.harness import Shop, make_client
from tests.helpers import until
from tests.notify.test_follows_notify import delivered, fans_of, notices

LEAD = 1.5  # seconds before the reminder is due (STREAM_REMINDER_MINUTES=1 and a start 61.5 s away)


def start_in(seconds: float) -> datetime:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).replace(microsecond=0) + timedelta(
        microseconds=500_000)


def reminder_key(stream_id: str, at: datetime) -> str:
    return f"follow.reminder:{stream_id}:{int(at.timestamp())}"


async def reminder_jobs(shop: Shop, stream_id: str) -> list[str]:
    async with shop.services.db.tx(SYSTEM) as conn:
        rows = await conn.fetch("SELECT dedupe_key FROM pgqueuer WHERE entrypoint = 'follows.reminder' "
                                "AND dedupe_key LIKE $1 ORDER BY execute_after", f"reminder:{stream_id}:%")
    return [r[0] for r in rows]


async def scheduled(shop: Shop, seller, slug: str, at: datetime | None) -> dict:
    body = {"title": slug.title(), "slug": slug, **({"scheduled_at": at.isoformat()} if at else {})}
    return await shop.call("POST", "/livestreams", seller, json=body, expect=201)


async def test_reminder_sent_once_before_the_start(tmp_path, dsn, aiohttp_client, mail_server):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, smtp_url=mail_server.url, stream_reminder_minutes=1))
    seller = await shop.seller("baker")
    fans = await fans_of(shop, seller, 2)
    at = start_in(60 + LEAD)
    stream = await scheduled(shop, seller, "bread-live", at)
    assert await reminder_jobs(shop, stream["id"]) == [f"reminder:{stream['id']}:{at.isoformat()}"]
    # an edit that keeps the time queues nothing more
    await shop.call("PATCH", f"/livestreams/{stream['id']}", seller, json={"title": "Bread, live",
                                                                          "scheduled_at": at.isoformat()})
    assert len(await reminder_jobs(shop, stream["id"])) == 1

    rows = await delivered(shop, reminder_key(stream["id"], at), 2)
    assert {r["user_id"] for r in rows} == {f.id for f in fans} and all(r["kind"] == "follow.reminder" for r in rows)
    assert datetime.fromisoformat(rows[0]["data"]["scheduled_at"]) == at and rows[0]["data"]["title"] == "Bread, live"
    assert all(r["email"] for r in rows)
    await mail_server.wait(2)
    assert all(len(mail_server.to(f"{f.name}@fans.test")) == 1 for f in fans)
    assert await reminder_jobs(shop, stream["id"]) == []
    # the job run again adds nothing
    await shop.services.schedule.remind({"stream_id": stream["id"], "scheduled_at": at.isoformat()})
    assert len(await notices(shop, reminder_key(stream["id"], at))) == 2

    # going live a moment later: the in-app notice, but no second email within the hour (the reminder's counted)
    await shop.call("POST", f"/livestreams/{stream['id']}/start", seller)
    live = await delivered(shop, f"follow.live_now:{stream['id']}", 2)
    assert not any(r["email"] for r in live)
    assert len(mail_server.messages) == 2


async def test_reminder_skipped_after_a_reschedule_or_a_start(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, stream_reminder_minutes=1))
    seller = await shop.seller("florist")
    await fans_of(shop, seller, 2)
    at = start_in(60 + LEAD)
    moved = await scheduled(shop, seller, "tulips", at)
    later = start_in(3 * 3600)
    await shop.call("PATCH", f"/livestreams/{moved['id']}", seller, json={"scheduled_at": later.isoformat()})
    assert await reminder_jobs(shop, moved["id"]) == [f"reminder:{moved['id']}:{at.isoformat()}",
                                                      f"reminder:{moved['id']}:{later.isoformat()}"]
    started = await scheduled(shop, seller, "roses", at)
    await shop.call("POST", f"/livestreams/{started['id']}/start", seller)

    async def old_ones_ran():
        return (await reminder_jobs(shop, moved["id"]) == [f"reminder:{moved['id']}:{later.isoformat()}"]
                and await reminder_jobs(shop, started["id"]) == [])
    await until(old_ones_ran, timeout=15, what="the due reminders ran")
    await delivered(shop, f"follow.live_now:{started['id']}", 2)
    async with shop.services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT count(*) FROM notifications WHERE kind = 'follow.reminder'") == 0
    # the new time's reminder, when its time comes, is sent; the old time's is skipped
    await shop.services.schedule.remind({"stream_id": moved["id"], "scheduled_at": at.isoformat()})
    assert await notices(shop, reminder_key(moved["id"], at)) == []
    await shop.services.schedule.remind({"stream_id": moved["id"], "scheduled_at": later.isoformat()})
    assert len(await notices(shop, reminder_key(moved["id"], later))) == 2


async def test_which_streams_get_a_reminder(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, jobs_in_process="false"))  # 15 minutes
    seller = await shop.seller("clockmaker")
    none = await scheduled(shop, seller, "whenever", None)
    past = await scheduled(shop, seller, "yesterday", start_in(-86_400))
    far = await scheduled(shop, seller, "in-two-years", start_in(2 * 366 * 86_400))
    soon = await scheduled(shop, seller, "in-five-minutes", start_in(300))  # nearer than 15 minutes: due now
    week = await scheduled(shop, seller, "next-week", start_in(7 * 86_400))
    for s in (none, past, far):
        assert await reminder_jobs(shop, s["id"]) == [], s["slug"]
    async with shop.services.db.tx(SYSTEM) as conn:
        due = {r["dedupe_key"].split(":")[1]: r["seconds"] for r in await conn.fetch(
            """SELECT dedupe_key, extract(epoch FROM execute_after - now()) AS seconds FROM pgqueuer
               WHERE entrypoint = 'follows.reminder'""")}
    assert set(due) == {soon["id"], week["id"]}
    assert due[soon["id"]] <= 1
    assert abs(float(due[week["id"]]) - (7 * 86_400 - 15 * 60)) < 60
    # a time given later (first none) queues one
    when = start_in(86_400)
    await shop.call("PATCH", f"/livestreams/{none['id']}", seller, json={"scheduled_at": when.isoformat()})
    assert await reminder_jobs(shop, none["id"]) == [f"reminder:{none['id']}:{when.isoformat()}"]
    # a job whose stream is gone or whose payload is not one is refused for good
    from live.jobs import Permanent
    for bad in ({"stream_id": none["id"]}, {"stream_id": none["id"], "scheduled_at": "soon"}, {"scheduled_at": 1}):
        try:
            await shop.services.schedule.remind(bad)
        except Permanent:
            continue
        raise AssertionError(f"{bad} accepted")
    await shop.services.schedule.remind({"stream_id": "00000000-0000-4000-8000-000000000000",
                                         "scheduled_at": when.isoformat()})  # no such stream: skipped
