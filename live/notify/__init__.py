"""Notifications: what happened, told to whom it concerns, in the app, by email and by web push
(docs/notifications.md).

`notify(conn, kind, user_ids, data, key)` records an event for users in the caller's transaction (every domain
event calls it); `Notices` is the package's face the container builds: the `notify.deliver` job with its channels
(email, web push) and the push of `notification:new`, and the in-app inbox (REST)."""
from __future__ import annotations

from db import Database
from db import notifications as notifications_db
from live.auth.principal import SYSTEM
from live.jobs import Jobs
from live.notify.inbox import Inbox
from live.notify.kinds import KINDS, Kind, url_for
from live.notify.notices import Channel, Deliverer, Push, notify

__all__ = ["KINDS", "Channel", "Kind", "Notices", "notify", "url_for"]


class Notices:
    def __init__(self, db: Database, push: Push | None = None):
        """`push(items)`: send `notification:new` with each (user_id, data) to that user's sockets on every
        worker (the container gives the gateway's bulk push, or the control channel's in a `live worker`)."""
        self._db = db
        self.deliverer = Deliverer(db, push)
        self.inbox = Inbox(db)

    def add_channel(self, channel: Channel, *, email: bool = False) -> None:
        """Register a delivery channel (`Mailer` with email=True: it gets only the users the follows' cap lets
        have the email; `WebPush`: all)."""
        self.deliverer.add_channel(channel, email=email)

    def set_push(self, push: Push | None) -> None:
        self.deliverer.set_push(push)

    def register_jobs(self, jobs: Jobs) -> None:
        self.deliverer.register(jobs)

    async def start(self, stock_low_threshold: int) -> None:
        """At start-up: the threshold the database's stock_low trigger uses (STOCK_LOW_THRESHOLD)."""
        async with self._db.tx(SYSTEM) as conn:
            await notifications_db.set_stock_low_threshold(conn, stock_low_threshold)

    notify = staticmethod(notify)
