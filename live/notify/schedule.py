"""Scheduled streams: the followers' reminder before the start, and the stream's cover image.

Creating or rescheduling a stream with a future `scheduled_at` (live/rooms/livestreams.py) enqueues
`follows.reminder` in its transaction (`enqueue_reminder`), due STREAM_REMINDER_MINUTES before the start (at once
when the start is nearer than that), keyed by the stream and the time. The job skips a stream that is no longer
scheduled at that time (rescheduled: the new time has its own job; started; ended; or the start has passed) and
otherwise tells the followers like "live now" does (same email cap). The cover (`set_cover`) is an uploaded image
(live/uploads.py) whose path becomes the stream's `cover_url`. docs/notifications.md."""
from __future__ import annotations

from datetime import datetime, timezone

import asyncpg

from db import Database, audit
from db import follows as follows_db
from db import streams as streams_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.errors import not_found
from live.jobs import Jobs, Permanent, enqueue
from live.jobs.queue import MAX_DELAY
from live.logging import get_logger
from live.notify.follows import notify_followers, stream_data, stream_id_of
from live.uploads import Uploads

log = get_logger("live.follows")
REMINDER = "follows.reminder"


async def enqueue_reminder(conn: asyncpg.Connection, row, minutes: int) -> int | None:
    """In the transaction that created or rescheduled the stream `row`: its reminder job, when it is scheduled in
    the future. A start more than a year away (the job queue's longest delay) gets none; rescheduling it nearer
    does."""
    when = row["scheduled_at"]
    if row["status"] != "scheduled" or when is None:
        return None
    delay = (when - datetime.now(timezone.utc)).total_seconds()
    if delay <= 0:
        return None
    delay = max(0.0, delay - minutes * 60)
    if delay > MAX_DELAY:
        log.info("reminder_too_far", stream_id=row["id"], scheduled_at=when.isoformat())
        return None
    return await enqueue(conn, REMINDER, {"stream_id": row["id"], "scheduled_at": when.isoformat()},
                         key=f"reminder:{row['id']}:{when.isoformat()}", delay=delay)


class Schedule:
    def __init__(self, db: Database, jobs: Jobs, uploads: Uploads, *, email_interval: float, base_url: str):
        self.db, self.uploads, self.email_interval, self.base_url = db, uploads, email_interval, base_url
        jobs.register(REMINDER, self.remind, max_attempts=8, first_delay=2.0, max_delay=120.0)

    async def remind(self, payload: dict) -> None:
        """The `follows.reminder` job (one transaction). Safe to run twice: the notices are unique per follower
        and (stream, start time), and a follower emailed within the interval is not emailed again."""
        stream_id = stream_id_of(payload)
        try:
            at = datetime.fromisoformat(payload["scheduled_at"])
        except (KeyError, TypeError, ValueError):
            raise Permanent(f"no scheduled_at in {payload!r}"[:300]) from None
        async with self.db.tx(SYSTEM) as conn:
            row = await streams_db.get(conn, stream_id)
            if (row is None or row["status"] != "scheduled" or row["scheduled_at"] != at
                    or at <= datetime.now(timezone.utc)):
                log.info("reminder_skipped", stream_id=stream_id, scheduled_at=payload["scheduled_at"],
                         status=row["status"] if row else None,
                         now_at=row["scheduled_at"].isoformat() if row and row["scheduled_at"] else None)
                return
            data = {**stream_data(row, self.base_url), "scheduled_at": at.isoformat()}
            key = f"follow.reminder:{stream_id}:{int(at.timestamp())}"
            new = await notify_followers(conn, "follow.reminder", row["seller_id"], data, key, self.email_interval)
        log.info("reminder_notified", stream_id=stream_id, notices=new)

    async def set_cover(self, principal: Principal, id_or_slug: str, image: bytes):
        """The stream's seller (or an admin) sets its cover: the image is stored (422 when it is not a JPEG, PNG
        or WebP) and its path becomes `cover_url` (audited as `stream.cover`). The stream row after. Three steps, so
        no transaction (nor pooled connection) is held while the file is written and fsynced: a transaction reads
        and authorizes, the file is stored, a second transaction sets the cover (a stream deleted meanwhile: 404,
        the stored file stays, content-addressed, for the next upload of the same bytes)."""
        async with self.db.tx(principal) as conn:
            row = await streams_db.get(conn, id_or_slug)
            if row is None:
                raise not_found("stream")
            policy.stream_seller(principal, row["seller_user_id"], "only the stream's seller can change it")
        stored = await self.uploads.store_image(image)
        async with self.db.tx(principal) as conn:
            before = await follows_db.set_cover(conn, row["id"], stored.url)
            if before is not None:
                await audit.record(conn, principal.user_id, "stream.cover", "livestream", row["id"],
                                   before={"cover_url": before["cover_url"]}, after={"cover_url": stored.url},
                                   bytes=stored.size, content_type=stored.content_type)
            after = await streams_db.get(conn, row["id"])
            if after is None:
                raise not_found("stream")
            return after
