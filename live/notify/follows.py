"""Follows: viewers follow and unfollow sellers (idempotent; not one's own shop; at most FOLLOW_MAX per user), the
sellers' public profiles (followers, whether the caller follows, the live stream and the upcoming ones), and the
"live now" notice: `RoomService.set_status(..., "live")` enqueues `follows.live_now` in its transaction
(`enqueue_live_now`), and its job tells every follower in the app and, under the email cap, by email
(`notify_followers`, shared with the reminders of live/notify/schedule.py). docs/notifications.md."""
from __future__ import annotations

import asyncpg

import live.notify as notices
from db import Database
from db import follows as follows_db
from db import streams as streams_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.cursors import decode_cursor, encode_cursor
from live.errors import DomainError, not_found
from live.ids import is_uuid
from live.jobs import Jobs, Permanent, enqueue
from live.logging import get_logger

log = get_logger("live.follows")
LIVE_NOW = "follows.live_now"
PROFILE_UPCOMING = 10  # scheduled streams on a seller's public profile
NOTIFY_CHUNK = 50_000  # followers per `notify` call (it takes at most 200,000 users)


async def enqueue_live_now(conn: asyncpg.Connection, stream_id: str) -> int | None:
    """In the going-live transaction: the job that tells the seller's followers (once per stream)."""
    return await enqueue(conn, LIVE_NOW, {"stream_id": stream_id}, key=f"live_now:{stream_id}")


def stream_data(row, base_url: str) -> dict:
    """What a follower notice says about a stream (the kinds' `data`, docs/notifications.md); cover_url absolute."""
    cover = row["cover_url"]
    return {"stream_id": row["id"], "slug": row["slug"], "title": row["title"], "seller_name": row["seller_name"],
            "seller_slug": row["seller_slug"], "cover_url": base_url + cover if cover and cover[0] == "/" else cover}


async def notify_followers(conn: asyncpg.Connection, kind: str, seller_id: str, data: dict, key: str,
                           email_interval: float) -> int:
    """Every follower of the seller gets the in-app notice; those not emailed about this seller for
    `email_interval` seconds (with an address, and `kind`'s email not turned off) get the email, and are marked
    emailed in the same statement (so a follower who turned this kind's email off does not use up the cap).
    Set-based: two statements here and one insert in `notify`, however many followers. The number of new
    notifications (0 when the event was notified already)."""
    emailable = await follows_db.claim_email(conn, seller_id, kind, email_interval)
    everyone = await follows_db.follower_ids(conn, seller_id)
    if len(everyone) <= NOTIFY_CHUNK:
        return await notices.notify(conn, kind, everyone, data, key, email_user_ids=emailable) if everyone else 0
    mailed, new = set(emailable), 0  # a very large following: several calls of one event (same key, one job)
    for i in range(0, len(everyone), NOTIFY_CHUNK):
        chunk = everyone[i:i + NOTIFY_CHUNK]
        new += await notices.notify(conn, kind, chunk, data, key, email_user_ids=[u for u in chunk if u in mailed])
    return new


class Follows:
    def __init__(self, db: Database, jobs: Jobs, *, max_follows: int, email_interval: float, base_url: str):
        self.db, self.max_follows, self.email_interval, self.base_url = db, max_follows, email_interval, base_url
        jobs.register(LIVE_NOW, self.live_now, max_attempts=8, first_delay=2.0, max_delay=300.0)

    async def _seller(self, conn, id_or_slug: str):
        row = await follows_db.seller(conn, id_or_slug)
        if row is None:
            raise not_found("seller")
        return row

    async def follow(self, principal: Principal, id_or_slug: str) -> dict:
        """Follow a seller (following again changes nothing). 409 `conflict` for one's own shop, 409
        `follow_limit` past FOLLOW_MAX."""
        policy.signed_in(principal)
        async with self.db.tx(principal) as conn:
            seller = await self._seller(conn, id_or_slug)
            if seller["user_id"] == principal.user_id:
                raise DomainError("conflict", "you cannot follow your own shop")
            await follows_db.lock_follower(conn, principal.user_id)
            if not await follows_db.is_following(conn, seller["id"], principal.user_id):
                if await follows_db.count_of_follower(conn, principal.user_id) >= self.max_follows:
                    raise DomainError("follow_limit", details={"max": self.max_follows})
                await follows_db.follow(conn, seller["id"], principal.user_id)
            return {"seller_id": seller["id"], "following": True,
                    "followers": await follows_db.follower_count(conn, seller["id"])}

    async def unfollow(self, principal: Principal, id_or_slug: str) -> dict:
        """Stop following (succeeds as well when the caller did not follow)."""
        policy.signed_in(principal)
        async with self.db.tx(principal) as conn:
            seller = await self._seller(conn, id_or_slug)
            await follows_db.unfollow(conn, seller["id"], principal.user_id)
            return {"seller_id": seller["id"], "following": False,
                    "followers": await follows_db.follower_count(conn, seller["id"])}

    async def profile(self, principal: Principal, id_or_slug: str) -> tuple[dict, list]:
        """A seller's public profile (`following` is None for an anonymous caller) and their live and upcoming
        streams (rows, live ones first)."""
        async with self.db.tx(principal) as conn:
            seller = await self._seller(conn, id_or_slug)
            following = None
            if principal.user_id is not None:
                following = await follows_db.is_following(conn, seller["id"], principal.user_id)
            profile = {"id": seller["id"], "display_name": seller["display_name"], "slug": seller["slug"],
                       "bio": seller["bio"], "created_at": seller["created_at"],
                       "followers": await follows_db.follower_count(conn, seller["id"]), "following": following}
            return profile, await follows_db.seller_streams(conn, seller["id"], PROFILE_UPCOMING)

    async def mine(self, principal: Principal, cursor: str | None, limit: int) -> dict:
        """The sellers the caller follows, newest follow first, in keyset pages."""
        policy.signed_in(principal)
        before = tuple(decode_cursor(cursor, "ts", "uuid")) if cursor else None
        async with self.db.tx(principal) as conn:
            rows = await follows_db.of_follower(conn, principal.user_id, before, limit)
        items = [{"seller": {"id": r["seller_id"], "display_name": r["display_name"], "slug": r["slug"]},
                  "live": r["live"], "followed_at": r["created_at"]} for r in rows]
        last = rows[-1] if len(rows) == limit else None
        return {"items": items,
                "next_cursor": encode_cursor(last["created_at"].isoformat(), last["seller_id"]) if last else None}

    async def live_now(self, payload: dict) -> None:
        """The `follows.live_now` job: one transaction; a stream no longer live (ended meanwhile) is skipped.
        Safe to run twice: the notices are unique per follower and event, and a follower emailed within the
        interval is not emailed again."""
        stream_id = stream_id_of(payload)
        async with self.db.tx(SYSTEM) as conn:
            row = await streams_db.get(conn, stream_id)
            if row is None or row["status"] != "live":
                log.info("live_now_skipped", stream_id=stream_id, status=row["status"] if row else None)
                return
            new = await notify_followers(conn, "follow.live_now", row["seller_id"], stream_data(row, self.base_url),
                                         f"follow.live_now:{stream_id}", self.email_interval)
        log.info("live_now_notified", stream_id=stream_id, notices=new)


def stream_id_of(payload: dict) -> str:
    stream_id = payload.get("stream_id") if isinstance(payload, dict) else None
    if not isinstance(stream_id, str) or not is_uuid(stream_id):
        raise Permanent(f"no stream_id in {payload!r}"[:300])
    return stream_id

