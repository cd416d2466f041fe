"""`live worker` as a real process: it picks a job (a mail whose SMTP server never answers, so the job is in
flight), is killed with -9, and a second `live worker` runs the job again once the first one's heartbeat is stale
(JOBS_HEARTBEAT_SECONDS=2): the job is not lost, and the mail is delivered once. The second worker stops cleanly on
SIGTERM."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from aiosmtpd.controller import Controller

from db import Database
from live.auth.principal import SYSTEM
from live.notify import mail as outbox
from tests.helpers import SECRET, owner_connection, until
from tests.jobs.test_email_jobs import Inbox, free_port


def worker(dsn: str, tmp_path, smtp_port: int, name: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": dsn, "LIVE_ENV": "test", "JWT_SECRET": SECRET, "SEED_DEMO": "false",
           "LIVE_DATA_DIR": str(tmp_path / name), "LOG_LEVEL": "info", "JOBS_HEARTBEAT_SECONDS": "2",
           "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "EMAIL_FROM": "live <shop@live.example>"}
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "live", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)


async def test_a_job_of_a_killed_worker_is_run_again_by_another(dsn, tmp_path):
    # an SMTP server that accepts the connection and never says a word: the first worker's job hangs in it
    accepted = asyncio.Event()
    held = []

    async def silent(reader, writer):
        held.append(writer)
        accepted.set()

    silent_server = await asyncio.start_server(silent, "127.0.0.1", 0)
    silent_port = silent_server.sockets[0].getsockname()[1]
    db = await Database.connect(dsn, min_size=1, max_size=2)
    first = second = None
    try:
        async with db.tx(SYSTEM) as conn:
            mail_id = await outbox.enqueue(conn, "kim@example.com", "Your code", "424242")
        first = worker(dsn, tmp_path, silent_port, "first")
        await asyncio.wait_for(accepted.wait(), 30)  # the job is picked and in flight
        async with owner_connection(dsn) as owner:
            assert await owner.fetchval("SELECT status::text FROM pgqueuer WHERE entrypoint = 'email.send'") == \
                "picked"
            first.send_signal(signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
            assert await owner.fetchval("SELECT status::text FROM pgqueuer WHERE entrypoint = 'email.send'") == \
                "picked"  # left as it was: nobody finished it

            inbox = Inbox()
            port = free_port()
            smtp = Controller(inbox, hostname="127.0.0.1", port=port)
            smtp.start()
            try:
                second = worker(dsn, tmp_path, port, "second")
                await until(lambda: owner.fetchval("SELECT sent_at IS NOT NULL FROM email_outbox WHERE id = $1",
                                                   mail_id), timeout=45, what="the mail sent by the second worker")
                await until(lambda: owner.fetchval("SELECT count(*) = 0 FROM pgqueuer"), what="the job finished")
            finally:
                smtp.stop()
        assert [m["Message-ID"] for m in inbox.mails] == [f"<outbox-{mail_id}@live.example>"]
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
        log = (tmp_path / "second.log").read_text()
        assert "worker_started" in log and "worker_stopped" in log
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for writer in held:
            writer.close()
        silent_server.close()
        await db.close()
