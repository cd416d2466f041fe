"""The one duplicate a crash can make: `live worker` as a real process hands a mail to an SMTP server that takes
the whole message but never answers its DATA (so the worker has sent and not yet committed "sent"), and is killed
with -9 there. A second worker sends the mail again once the first one's job heartbeat is stale: the recipient
gets two copies with one Message-ID (derived from the mail's key), and drops one by it; the row is sent once."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from email import message_from_bytes

from aiosmtpd.controller import Controller

from db import Database
from live.auth.principal import SYSTEM
from live.notify.mail import message_id, queue_mail
from tests.helpers import SECRET, owner_connection, until
from tests.jobs.test_email_jobs import free_port


class Swallower:
    """Takes the message, then holds the DATA answer until released (a crash window held open)."""

    def __init__(self):
        self.messages, self.got = [], threading.Event()
        self.release: asyncio.Event | None = None

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        self.release = asyncio.Event()
        self.got.set()
        try:
            await asyncio.wait_for(self.release.wait(), 60)
        except asyncio.TimeoutError:
            pass
        return "451 too late"


def worker(dsn: str, tmp_path, smtp_url: str, name: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": dsn, "LIVE_ENV": "test", "JWT_SECRET": SECRET, "SEED_DEMO": "false",
           "LIVE_DATA_DIR": str(tmp_path / name), "LOG_LEVEL": "info", "JOBS_HEARTBEAT_SECONDS": "2",
           "SMTP_URL": smtp_url, "EMAIL_FROM": "live <shop@live.example>"}
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "live", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)


async def test_killed_between_send_and_commit_the_copies_share_one_message_id(dsn, tmp_path, mail_server):
    swallower = Swallower()
    port = free_port()
    hanging = Controller(swallower, hostname="127.0.0.1", port=port)
    hanging.start()
    db = await Database.connect(dsn, min_size=1, max_size=2)
    first = second = None
    data = {"contact_id": 9, "name": "Kim", "subject": "Hello", "message": "Hi"}
    try:
        async with db.tx(SYSTEM) as conn:
            mail_id = await queue_mail(conn, "contact.ack", "kim@example.com", data, "contact:9:ack")
        first = worker(dsn, tmp_path, f"smtp://127.0.0.1:{port}", "first")
        assert await asyncio.to_thread(swallower.got.wait, 30), "the first worker never sent"
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        async with owner_connection(dsn) as owner:
            assert await owner.fetchval("SELECT sent_at FROM email_outbox WHERE id = $1", mail_id) is None
            second = worker(dsn, tmp_path, mail_server.url, "second")
            await until(lambda: owner.fetchval("SELECT sent_at IS NOT NULL FROM email_outbox WHERE id = $1",
                                               mail_id), timeout=45, what="the mail sent by the second worker")
            row = await owner.fetchrow("SELECT attempts, message_id FROM email_outbox WHERE id = $1", mail_id)
        [again] = await mail_server.wait(1)
        [swallowed] = swallower.messages
        expected = message_id("contact:9:ack", mail_id, "live.example")
        assert swallowed["Message-ID"] == again["Message-ID"] == row["message_id"] == expected
        assert swallowed["Subject"] == again["Subject"] == "We received your message: Hello"
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if swallower.release is not None:
            hanging.loop.call_soon_threadsafe(swallower.release.set)
        hanging.stop()
        await db.close()
