"""Mail failures that must not lose mail or send it twice, against real SMTP servers and real PostgreSQL: a server
that refuses AUTH (535) fails the job and keeps every row for the retry; a recipient refused for good (550) is
given up and never sent again while another one (451) is retried; STARTTLS offered by the server is used before
AUTH on a plain smtp:// port."""
from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from db import Database
from live.auth.principal import SYSTEM
from live.container import Services
from live.notify.mail import queue_mail
from live.notify.smtp import SmtpClient
from tests.helpers import make_settings, owner_connection
from tests.notify.conftest import MailServer


@pytest.fixture
async def db(dsn):
    database = await Database.connect(dsn, min_size=1, max_size=4)
    yield database
    await database.close()


class Scripted:
    """A small SMTP server that offers AUTH (and STARTTLS when asked) and answers 535 to AUTH, 454 to STARTTLS;
    `commands` keeps the verb of every command it got."""

    def __init__(self, *, starttls: bool = False):
        self.starttls, self.commands = starttls, []
        self.server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer):
        writer.write(b"220 scripted ESMTP\r\n")
        while line := await reader.readline():
            verb = line.decode().strip().split(" ")[0].upper()
            self.commands.append(verb)
            if verb == "EHLO":
                writer.write(b"250-scripted\r\n" + (b"250-STARTTLS\r\n" if self.starttls else b"")
                             + b"250 AUTH PLAIN LOGIN\r\n")
            elif verb == "AUTH":
                writer.write(b"535 5.7.8 Authentication credentials invalid\r\n")
            elif verb == "STARTTLS":
                writer.write(b"454 4.7.0 TLS not available\r\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"503 5.5.1 no\r\n")
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def two_mails(db, prefix: str) -> list[int]:
    async with db.tx(SYSTEM) as conn:
        return [await queue_mail(conn, "auth.sign_in_code", f"{prefix}{i}@example.com", {"code": "1", "minutes": 1},
                                 f"{prefix}:{i}") for i in (1, 2)]


async def test_a_refused_login_fails_the_job_keeps_every_mail_and_the_right_server_delivers_them(tmp_path, db, dsn):
    real = MailServer()  # not started: the scripted server holds its port first
    scripted = Scripted()
    await scripted.start(real.port)
    services = Services(make_settings(tmp_path, smtp_url=real.url, email_from="mail@shop.test"), db)
    try:
        ids = await two_mails(db, "auth")
        await services.jobs.drain()
        assert "AUTH" in scripted.commands and services.outbox.outcomes["refused"] == 0
        async with owner_connection(dsn) as owner:
            rows = await owner.fetch("SELECT sent_at, failed_at, last_error FROM email_outbox WHERE id = ANY($1) "
                                     "ORDER BY id", ids)
            assert [(r["sent_at"], r["failed_at"]) for r in rows] == [(None, None)] * 2
            assert all("535" in r["last_error"] for r in rows)
            assert await owner.fetchval("SELECT status::text FROM pgqueuer") == "queued"  # the job: retried
            await scripted.stop()
            real.start()  # the right server on the same address
            await owner.execute("UPDATE pgqueuer SET execute_after = now()")
            await services.jobs.drain()
            assert await owner.fetchval("SELECT count(*) FROM email_outbox WHERE sent_at IS NOT NULL") == 2
        assert sorted(m["To"] for m in await real.wait(2)) == ["auth1@example.com", "auth2@example.com"]
    finally:
        await services.outbox.close()
        real.stop()


class Picky(MailServer):
    """The notification tests' mail server, refusing one recipient for good (550) and one for now (451)."""

    def __init__(self):
        super().__init__()
        self.rcpt: Counter[str] = Counter()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt[address] += 1
        if address.startswith("gone"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_refused_recipient_is_given_up_and_a_retry_of_its_batch_does_not_send_it_again(tmp_path, db, dsn):
    server = Picky()
    server.start()
    services = Services(make_settings(tmp_path, smtp_url=server.url, email_from="mail@shop.test"), db)
    try:
        async with db.tx(SYSTEM) as conn:  # one job of three mails
            ids = {to: await queue_mail(conn, "auth.sign_in_code", f"{to}@example.com", {"code": "1", "minutes": 1},
                                        f"rcpt:{to}") for to in ("gone", "busy", "fine")}
        async with owner_connection(dsn) as owner:
            for _ in range(3):
                await owner.execute("UPDATE pgqueuer SET execute_after = now()")
                await services.jobs.drain()
            rows = {r["id"]: r for r in await owner.fetch(
                "SELECT id, sent_at, failed_at, attempts, last_error FROM email_outbox")}
        assert server.rcpt["gone@example.com"] == 1 and server.rcpt["busy@example.com"] == 3
        assert [m["To"] for m in server.messages] == ["fine@example.com"]
        gone, busy = rows[ids["gone"]], rows[ids["busy"]]
        assert gone["failed_at"] is not None and gone["sent_at"] is None and "550" in gone["last_error"]
        assert gone["attempts"] == 1
        assert busy["failed_at"] is None and busy["sent_at"] is None and busy["attempts"] == 3
        assert "451" in busy["last_error"]
        assert rows[ids["fine"]]["sent_at"] is not None
        assert services.outbox.outcomes["refused"] == 1 and services.outbox.outcomes["retry"] == 3
    finally:
        await services.outbox.close()
        server.stop()


async def test_starttls_offered_on_a_plain_port_is_used_before_auth():
    scripted = Scripted(starttls=True)
    port = await scripted.start()
    client = SmtpClient(f"smtp://live:s3cret@127.0.0.1:{port}", timeout=5)
    try:
        with pytest.raises(ConnectionError, match="454"):  # the upgrade refused: no AUTH in clear, the job retries
            await client.send("a@shop.test", ["b@example.com"], b"Subject: x\r\n\r\nhi\r\n")
        assert "STARTTLS" in scripted.commands and "AUTH" not in scripted.commands
    finally:
        await client.close()
        await scripted.stop()


def test_the_tls_mode_follows_the_url():
    assert SmtpClient("smtp://mail.test")._args["start_tls"] is None  # upgraded when the server offers it
    assert SmtpClient("smtp://mail.test:587")._args["start_tls"] is True
    smtps = SmtpClient("smtps://mail.test")._args
    assert (smtps["use_tls"], smtps["start_tls"], smtps["port"]) == (True, False, 465)

