"""The email outbox on jobs, against real PostgreSQL and a real SMTP server (aiosmtpd): a mail written in a
transaction is delivered by its `email.send` job, once; with the SMTP server down the job fails, keeps the error
in the row and is retried; once the server is up the retry delivers it, with a Message-ID stable per row."""
from __future__ import annotations

import socket
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from live.auth.principal import SYSTEM
from live.container import Services
from live.jobs import enqueue
from live.notify import mail as outbox
from tests.helpers import make_settings, owner_connection


class Inbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_mail_without_smtp_is_logged_and_marked_sent_once(db, dsn, tmp_path):
    services = Services(make_settings(tmp_path), db)
    async with db.tx(SYSTEM) as conn:
        mail_id = await outbox.enqueue(conn, "mia@example.com", "hi", "body")
        assert await outbox.enqueue(conn, "nia@example.com", "hi", "body") == mail_id + 1
    await services.jobs.drain()
    async with owner_connection(dsn) as owner:
        rows = await owner.fetch("SELECT sent_at, attempts, last_error FROM email_outbox ORDER BY id")
        assert [(r["sent_at"] is not None, r["attempts"], r["last_error"]) for r in rows] == [(True, 1, None)] * 2
        assert await owner.fetchval("SELECT count(*) FROM pgqueuer") == 0
    await services.outbox.send({"id": mail_id})  # run twice (a worker died after sending): nothing more
    async with owner_connection(dsn) as owner:
        assert await owner.fetchval("SELECT attempts FROM email_outbox WHERE id = $1", mail_id) == 1


async def test_rolled_back_mail_is_never_sent(db, dsn, tmp_path):
    services = Services(make_settings(tmp_path), db)
    with pytest.raises(RuntimeError):
        async with db.tx(SYSTEM) as conn:
            await outbox.enqueue(conn, "mia@example.com", "hi", "body")
            raise RuntimeError("rollback")
    await services.jobs.drain()
    async with owner_connection(dsn) as owner:
        assert await owner.fetchval("SELECT count(*) FROM email_outbox") == 0
        assert await owner.fetchval("SELECT count(*) FROM pgqueuer") == 0


async def test_smtp_down_then_up_delivers_after_a_retry(db, dsn, tmp_path):
    port = free_port()
    settings = make_settings(tmp_path, smtp_url=f"smtp://127.0.0.1:{port}", email_from="Live <shop@live.example>")
    services = Services(settings, db)
    async with db.tx(SYSTEM) as conn:
        mail_id = await outbox.enqueue(conn, "ola@example.com", "Your code", "123456")
    await services.jobs.drain()  # nobody listens on the port: the send fails, the job waits for its retry
    async with owner_connection(dsn) as owner:
        row = await owner.fetchrow("SELECT sent_at, attempts, last_error FROM email_outbox WHERE id = $1", mail_id)
        assert row["sent_at"] is None and row["attempts"] == 1 and row["last_error"]
        job = await owner.fetchrow("SELECT status, attempts, execute_after > now() AS later FROM pgqueuer")
        assert (job["status"], job["attempts"], job["later"]) == ("queued", 1, True)
        inbox = Inbox()
        server = Controller(inbox, hostname="127.0.0.1", port=port)
        server.start()
        try:
            await owner.execute("UPDATE pgqueuer SET execute_after = now()")  # the retry's time has come
            await services.jobs.drain()
        finally:
            server.stop()
        assert await owner.fetchval("SELECT sent_at IS NOT NULL FROM email_outbox WHERE id = $1", mail_id)
        assert await owner.fetchval("SELECT count(*) FROM pgqueuer") == 0
    assert len(inbox.mails) == 1
    mail = inbox.mails[0]
    assert (mail["To"], mail["Subject"], mail["Message-ID"]) == ("ola@example.com", "Your code",
                                                                  f"<outbox-{mail_id}@live.example>")
    assert "123456" in mail.get_payload()


async def test_a_job_with_a_payload_it_cannot_read_is_dead_at_once(db, dsn, tmp_path):
    services = Services(make_settings(tmp_path), db)
    async with owner_connection(dsn) as owner:
        for kind, payload in (("email.send", {"id": "x"}), ("refund.send", {"refund_id": 5}),
                              ("webhook.process", {"event_id": 1})):
            await enqueue(owner, kind, payload)
        await services.jobs.drain()
        rows = await owner.fetch("SELECT entrypoint, status::text, attempts FROM pgqueuer ORDER BY id")
    assert [(r["entrypoint"], r["status"], r["attempts"]) for r in rows] == [
        ("email.send", "failed", 0), ("refund.send", "failed", 0), ("webhook.process", "failed", 0)]
