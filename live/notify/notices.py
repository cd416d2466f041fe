"""Emitting a notification (`notify`, in the caller's transaction) and delivering it (the `notify.deliver` job).

`notify` writes one `notifications` row per user in one statement (10,000 followers are one INSERT ... SELECT),
unique per (user, key): an event replayed adds nothing. When it added rows it queues one `notify.deliver` job
(key `notify:<key>:<transaction id>`) in the same transaction, so the job exists exactly when the event commits.

The job (`Deliverer.deliver`), in one transaction per batch of DELIVER_BATCH rows: claims the key's rows not yet
delivered (one UPDATE marks them delivered and returns them, locked), reads the users' unread counts and pushes
`notification:new` to each user's sockets on every worker (PUSH_CHUNK users per control message), then hands the
rows to every channel (email: only the rows whose `email` flag is set; web push: all) and commits. The push comes
first so that online users see the notice without waiting for the channels' work (10,000 outbox rows take a few
hundred ms): the rows it announces were committed by `notify`. Safe to run twice: a second run waits on the first's
row locks, then finds the rows delivered and does nothing; the channels' work is written in the same transaction
as the mark, so a crash before the commit leaves nothing queued and the retry queues it once. The push is at least
once: a batch that fails after it (a channel's error) is retried and pushes again, with the same notification ids
(clients drop an id they have; docs/protocol.md)."""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Protocol, Sequence

import asyncpg
import orjson

from db import Database
from db import notifications as notifications_db
from live.auth.principal import SYSTEM
from live.jobs import Jobs, Permanent
from live.jobs import enqueue as enqueue_job
from live.logging import get_logger
from live.notify.kinds import KINDS, Kind, title_for, url_for

log = get_logger("live.notify")
JOB = "notify.deliver"
MAX_KEY = 190  # characters of an event key (the job key `notify:<key>` stays within the queue's 200)
MAX_DATA_BYTES = 16 * 1024  # an event's data, as JSON
MAX_USERS = 200_000  # users of one notify call
DELIVER_BATCH = 10_000  # rows one deliver transaction takes (a bigger event: several transactions, one job)
PUSH_CHUNK = 500  # users per bulk push (one control message); the loop yields between chunks
# the job: tried again after ~1 s, 2 s, 4 s ... at most 5 min apart, 20 runs (about an hour in all)
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 300.0
MAX_ATTEMPTS = 20

# (user_id, data) pairs pushed as `notification:new` to each user's sockets on every worker
Push = Callable[[list[tuple[str, dict]]], Any]


class Channel(Protocol):
    async def queue(self, conn: asyncpg.Connection, kind: Kind, user_ids: list[str], data: dict, key: str) -> int:
        """Inside the deliver transaction: write this channel's durable work (outbox rows and their jobs, push
        jobs) for those of `user_ids` its preferences allow; how many it queued."""
        ...


async def notify(conn: asyncpg.Connection, kind: str, user_ids: Sequence[str], data: dict, key: str, *,
                 email_user_ids: Sequence[str] | None = None) -> int:
    """Record event `key` of `kind` for `user_ids` in `conn`'s transaction and queue its delivery; how many rows
    were new (0: the event was recorded before, or no user exists). `email_user_ids`: only these users may get
    the email (None: all). ValueError for an unknown kind, an address kind (`queue_mail`), a bad key or data."""
    k = KINDS.get(kind)
    if k is None or k.audience == "address":
        raise ValueError(f"notify: not a kind for users: {kind!r}")
    if not key or len(key) > MAX_KEY:
        raise ValueError(f"notify: bad event key {key!r}"[:300])
    if len(user_ids) > MAX_USERS:
        raise ValueError(f"notify: {len(user_ids)} users in one call (at most {MAX_USERS})")
    if not isinstance(data, dict) or len(orjson.dumps(data)) > MAX_DATA_BYTES:
        raise ValueError(f"notify: data of {key!r} is not an object of at most {MAX_DATA_BYTES} bytes"[:300])
    if not user_ids:
        return 0
    added, tx = await notifications_db.add(conn, kind, key, data, user_ids, email_user_ids)
    if added:
        # one job per event and transaction: a job key of the event alone would be refused while that event's job
        # runs, and rows another transaction adds to the event then could wait for nobody; two jobs of one event
        # are harmless (a row is claimed once)
        await enqueue_job(conn, JOB, {"key": key}, key=f"notify:{key}:{tx}")
    return added


def item(row: Any, kind: str, data: dict) -> dict:
    """The REST and socket shape of one notification."""
    return {"id": row["id"], "kind": kind, "title": title_for(kind, data), "url": url_for(kind, data), "data": data,
            "created_at": row["created_at"].isoformat(),
            "read_at": row["read_at"].isoformat() if row["read_at"] is not None else None}


class Deliverer:
    """The `notify.deliver` job's handler: channels (registered once by the container) and the push."""

    def __init__(self, db: Database, push: Push | None = None):
        self._db = db
        self._push = push
        self._channels: list[tuple[Channel, bool]] = []

    def add_channel(self, channel: Channel, *, email: bool = False) -> None:
        """A channel gets every delivered row's user; an `email` one only those whose `email` flag is set (the
        follows' hourly cap)."""
        self._channels.append((channel, email))

    def set_push(self, push: Push | None) -> None:
        self._push = push

    def register(self, jobs: Jobs) -> None:
        jobs.register(JOB, self.deliver, max_attempts=MAX_ATTEMPTS, first_delay=RETRY_FIRST_SECONDS,
                      max_delay=RETRY_MAX_SECONDS)

    async def deliver(self, payload: dict) -> None:
        key = payload.get("key") if isinstance(payload, dict) else None
        if not isinstance(key, str) or not key:
            raise Permanent(f"not a notify.deliver payload: {payload!r}"[:300])
        while True:
            claimed = await self._batch(key)
            if claimed < DELIVER_BATCH:
                return

    async def _batch(self, key: str) -> int:
        """One transaction: claim up to DELIVER_BATCH rows of the event (marked delivered), push them to the users
        online, have the channels queue their work for them. The number of rows claimed."""
        async with self._db.tx(SYSTEM) as conn:
            rows = await notifications_db.claim(conn, key, DELIVER_BATCH)
            if not rows:
                return 0
            rows.sort(key=lambda r: r["id"])
            ev = await notifications_db.event(conn, rows[0]["id"])
            kind, data = ev["kind"], ev["data"]
            spec = KINDS.get(kind)
            if spec is None:  # a kind this version no longer knows: marked, nothing sent
                log.warning("notify_unknown_kind", kind=kind, key=key)
                return len(rows)
            users = [r["user_id"] for r in rows]
            if self._push is not None and spec.in_app:
                await self._push_new(kind, data, rows, await notifications_db.unread_counts(conn, users))
            emailed = [r["user_id"] for r in rows if r["email"]]
            for channel, email_only in self._channels:
                targets = emailed if email_only else users
                if targets:
                    await channel.queue(conn, spec, targets, data, key)
        return len(rows)

    async def _push_new(self, kind: str, data: dict, rows: list, unread: dict[str, int]) -> None:
        """notification:new to each user, PUSH_CHUNK users per bulk push (one control message), yielding between."""
        spec = KINDS.get(kind)
        if self._push is None or spec is None or not spec.in_app:
            return
        base = item({"id": 0, "created_at": rows[0]["created_at"], "read_at": None}, kind, data)
        for start in range(0, len(rows), PUSH_CHUNK):
            chunk = rows[start:start + PUSH_CHUNK]
            self._push([(r["user_id"], {"notification": {**base, "id": r["id"],
                                                         "created_at": r["created_at"].isoformat()},
                                        "unread": unread.get(r["user_id"], 1)}) for r in chunk])
            await asyncio.sleep(0)
