"""Mails through the durable jobs to a real SMTP server with AUTH (tests/notify/conftest.py) and real PostgreSQL:
one message per key (queued twice, job run twice), Message-ID derived from the key, the mail channel's set-based
queue (addresses, preferences, batches of 50), one reused connection (counted by a TCP relay in front of the
server), a dropped connection opened again, the idle close, SMTP down then up, and List-Unsubscribe only on
optional kinds."""
from __future__ import annotations

import asyncio
import hashlib
import uuid
from email.header import decode_header, make_header

import orjson
import pytest

from live.auth.principal import SYSTEM
from live.container import Services
from live.jobs import Permanent
from live.notify.kinds import KINDS
from live.notify.mail import BATCH, queue_mail
from live.notify.smtp import SmtpClient
from tests.helpers import make_settings, owner_connection, until


class Relay:
    """A TCP relay in front of the mail server: counts the connections the client opens and can cut them."""

    def __init__(self, port: int):
        self.target, self.accepted, self.open = port, 0, 0
        self._writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return str(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader, writer):
        self.accepted += 1
        self.open += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers += [writer, up_writer]

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.open -= 1

    def cut(self) -> None:
        for w in self._writers:
            w.close()
        self._writers.clear()

    async def stop(self) -> None:
        self.cut()
        self.server.close()


def key_id(key: str, domain: str = "shop.test") -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


@pytest.fixture
async def services(db, tmp_path, mail_server):
    s = Services(make_settings(tmp_path, smtp_url=mail_server.url, email_from="Shop <mail@shop.test>",
                               shop_name="Maple Market", public_url="https://shop.example"), db)
    yield s
    await s.outbox.close()


async def users_with(db, n: int, *, email: bool = True) -> list[str]:
    async with db.tx(SYSTEM) as conn:
        rows = await conn.fetch(
            """INSERT INTO users (name, role, email)
               SELECT 'user ' || i, 'customer', CASE WHEN $2 THEN 'u' || i || '-' || $3 || '@example.com' END
               FROM generate_series(1, $1) AS i RETURNING id::text""", n, email, uuid.uuid4().hex[:8])
    return [r[0] for r in rows]


async def test_a_mail_queued_twice_with_one_key_is_sent_once_and_a_second_run_sends_nothing(services, db, dsn,
                                                                                            mail_server):
    data = {"contact_id": 1, "name": "Ada", "subject": "Hello", "message": "Hi there"}
    async with db.tx(SYSTEM) as conn:
        first = await queue_mail(conn, "contact.ack", "ada@example.com", data, "contact:1:ack")
        assert await queue_mail(conn, "contact.ack", "ada@example.com", data, "contact:1:ack") is None
    async with db.tx(SYSTEM) as conn:  # and in a later transaction (the event replayed)
        assert await queue_mail(conn, "contact.ack", "ada@example.com", data, "contact:1:ack") is None
    await services.jobs.drain()
    [msg] = await mail_server.wait(1)
    assert msg["Message-ID"] == key_id("contact:1:ack")
    assert msg["Subject"] == "We received your message: Hello" and msg["From"] == "Shop <mail@shop.test>"
    assert msg.is_multipart() and [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "text/html"]
    assert mail_server.refused_auth == 0 and mail_server.envelopes[0][1] == ["ada@example.com"]
    await services.outbox.send({"ids": [first]})  # the job again (a worker died after the SMTP answer)
    await services.outbox.send({"id": first})  # an old-style payload
    await asyncio.sleep(0.1)
    assert len(mail_server.messages) == 1
    async with owner_connection(dsn) as owner:
        row = await owner.fetchrow("SELECT sent_at, attempts, message_id FROM email_outbox WHERE id = $1", first)
        assert row["sent_at"] is not None and row["attempts"] == 1 and row["message_id"] == key_id("contact:1:ack")
        assert await owner.fetchval("SELECT count(*) FROM pgqueuer") == 0


async def test_the_channel_queues_one_statement_for_many_users_in_batches_over_one_connection(
        tmp_path, db, dsn, mail_server):
    relay = Relay(mail_server.port)
    port = await relay.start()
    services = Services(make_settings(tmp_path, smtp_url=f"smtp://live:s3cret@127.0.0.1:{port}",
                                      email_from="mail@shop.test"), db)
    try:
        users = await users_with(db, 2 * BATCH + 10)
        silent = await users_with(db, 3, email=False)
        off, star = users[0], users[1]
        async with db.tx(SYSTEM) as conn:
            await conn.execute("INSERT INTO notification_prefs (user_id, kind, email) VALUES ($1::uuid, "
                               "'seller.stock_low', false), ($2::uuid, '*', false)", off, star)
            await conn.execute("UPDATE users SET suspended_at = now() WHERE id = $1::uuid", users[2])
            data = {"product_id": "p", "variant_id": "v", "title": "Mug", "sku": "M-1", "available": 1,
                    "threshold": 3}
            statements: list[str] = []
            log_query = lambda record: statements.append(record.query)  # noqa: E731
            conn.add_query_logger(log_query)
            written = await services.outbox.queue(conn, KINDS["seller.stock_low"], users + silent, data, "low:1")
            await asyncio.sleep(0.05)  # the query logger is called soon after each statement
            conn.remove_query_logger(log_query)
            assert written == len(users) - 3  # no address, turned off (the kind, or all), suspended: none
            # the three batches' email.send jobs: one statement (asyncpg's type introspection aside)
            assert len([q for q in statements if "INSERT INTO pgqueuer" in q]) == 1
            again = await services.outbox.queue(conn, "seller.stock_low", users, data, "low:1")
            assert again == 0
            # a transactional kind goes whatever the preferences say
            assert await services.outbox.queue(conn, "order.canceled", [off, star], {
                "order_id": "no-such-order", "number": "LV-1", "reason": "test"}, "cancel:1") == 2
        async with owner_connection(dsn) as owner:
            jobs = await owner.fetch("SELECT payload FROM pgqueuer WHERE entrypoint = 'email.send' ORDER BY id")
        sizes = [len(orjson.loads(j["payload"])["ids"]) for j in jobs]
        assert sizes == [BATCH, BATCH, len(users) - 3 - 2 * BATCH, 2]
        await services.jobs.drain()
        await mail_server.wait(len(users) - 1)
        assert relay.accepted == 1  # every message of every job over one connection
        assert services.outbox.outcomes["sent"] == len(users) - 1 and services.outbox.smtp.connections == 1
        ids = mail_server.message_ids()
        assert len(set(ids)) == len(ids) == len(users) - 1
        assert key_id(f"low:1:{users[5]}", "shop.test") in ids
    finally:
        await services.outbox.close()
        await relay.stop()


async def test_a_dropped_connection_is_opened_again_and_an_idle_one_closed(tmp_path, db, mail_server):
    relay = Relay(mail_server.port)
    port = await relay.start()
    services = Services(make_settings(tmp_path, smtp_url=f"smtp://live:s3cret@127.0.0.1:{port}",
                                      email_from="mail@shop.test", smtp_idle_seconds=1), db)
    try:
        async with db.tx(SYSTEM) as conn:
            await queue_mail(conn, "auth.sign_in_code", "a@example.com", {"code": "111111", "minutes": 10}, "k1")
        await services.jobs.drain()
        await mail_server.wait(1)
        relay.cut()  # the server side goes away while the client keeps its connection
        async with db.tx(SYSTEM) as conn:
            await queue_mail(conn, "auth.sign_in_code", "b@example.com", {"code": "222222", "minutes": 10}, "k2")
        await services.jobs.drain()  # sent in this run, on a new connection (no job retry needed)
        await mail_server.wait(1, address="b@example.com")
        assert relay.accepted == 2
        await until(lambda: relay.open == 0, timeout=5, what="the idle connection closed")
        assert services.outbox.smtp.connections == 2
    finally:
        await services.outbox.close()
        await relay.stop()


async def test_smtp_down_then_up_delivers_after_the_retry(services, db, dsn, mail_server):
    mail_server.stop()
    async with db.tx(SYSTEM) as conn:
        mail_id = await queue_mail(conn, "auth.sign_in_code", "ola@example.com", {"code": "424242", "minutes": 10},
                                   "code:ola")
    await services.jobs.drain()
    async with owner_connection(dsn) as owner:
        row = await owner.fetchrow("SELECT sent_at, attempts, last_error FROM email_outbox WHERE id = $1", mail_id)
        assert row["sent_at"] is None and row["attempts"] == 1 and row["last_error"]
        job = await owner.fetchrow("SELECT status, attempts, execute_after > now() AS later FROM pgqueuer")
        assert (job["status"], job["attempts"], job["later"]) == ("queued", 1, True)
        mail_server.start()
        await owner.execute("UPDATE pgqueuer SET execute_after = now()")  # the retry's time has come
        await services.jobs.drain()
        assert await owner.fetchval("SELECT sent_at IS NOT NULL FROM email_outbox WHERE id = $1", mail_id)
    [msg] = await mail_server.wait(1)
    assert msg["Message-ID"] == key_id("code:ola") and "424242" in msg["Subject"]
    assert (services.outbox.outcomes["retry"], services.outbox.outcomes["sent"]) == (1, 1)


async def test_list_unsubscribe_only_on_optional_kinds_sent_to_a_user(services, db, mail_server):
    [user] = await users_with(db, 1)
    stream = {"stream_id": "s", "slug": "drop", "title": "Drop", "seller_name": "Shop", "seller_slug": "shop",
              "cover_url": None}
    async with db.tx(SYSTEM) as conn:
        await services.outbox.queue(conn, "follow.live_now", [user], stream, "live:1")
        await services.outbox.queue(conn, "order.canceled", [user], {"order_id": "x", "number": "LV-9",
                                                                      "reason": "r"}, "cancel:9")
    await services.jobs.drain()
    messages = await mail_server.wait(2)
    by_subject = {m["Subject"]: m for m in messages}
    live = by_subject["Shop is live now: Drop"]
    assert live["List-Unsubscribe"].startswith("<https://shop.example/unsubscribe?t=")
    assert live["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = live["List-Unsubscribe"][1:-1].split("t=", 1)[1]
    assert services.outbox.tokens.read(token) == (user, "follow.live_now")
    canceled = by_subject["Order LV-9 was canceled"]
    assert canceled["List-Unsubscribe"] is None and canceled["List-Unsubscribe-Post"] is None


async def test_a_wrong_password_is_kept_as_the_error_and_retried(tmp_path, db, dsn, mail_server):
    url = mail_server.url.replace("s3cret", "wrong")
    services = Services(make_settings(tmp_path, smtp_url=url), db)
    services.outbox.smtp._args["timeout"] = 2  # aiosmtpd answers nothing after a refused AUTH (conftest)
    try:
        async with db.tx(SYSTEM) as conn:
            mail_id = await queue_mail(conn, "auth.sign_in_code", "x@example.com", {"code": "1", "minutes": 1}, "w")
        await services.jobs.drain()
        async with owner_connection(dsn) as owner:
            row = await owner.fetchrow("SELECT sent_at, last_error FROM email_outbox WHERE id = $1", mail_id)
            assert row["sent_at"] is None and row["last_error"]
            assert await owner.fetchval("SELECT status::text FROM pgqueuer") == "queued"
        assert mail_server.messages == [] and mail_server.refused_auth >= 1
    finally:
        await services.outbox.close()


def part(msg, subtype: str) -> str:
    [p] = [p for p in msg.walk() if p.get_content_type() == f"text/{subtype}"]
    return p.get_payload(decode=True).decode(p.get_content_charset())


async def test_an_order_mail_shows_the_order_it_loads_and_non_ascii_is_encoded(tmp_path, db, mail_server):
    services = Services(make_settings(tmp_path, smtp_url=mail_server.url, email_from="mail@shop.test",
                                      shop_name="Café Ünïcode", public_url="https://shop.example"), db)
    try:
        async with db.tx(SYSTEM) as conn:
            buyer = await conn.fetchval("INSERT INTO users (name, role, email) VALUES ('Zoë', 'customer', "
                                        "'zoe@example.com') RETURNING id::text")
            seller_user = await conn.fetchval("INSERT INTO users (name, role) VALUES ('s', 'seller') RETURNING id")
            seller = await conn.fetchval("INSERT INTO sellers (user_id, display_name, slug) VALUES ($1, 'Shop', "
                                         "'shop') RETURNING id", seller_user)
            product = await conn.fetchval("INSERT INTO products (seller_id, title, status) VALUES ($1, 'Mug', "
                                          "'active') RETURNING id", seller)
            variant = await conn.fetchval("INSERT INTO product_variants (product_id, sku, price_minor, currency, "
                                          "on_hand) VALUES ($1, 'MUG-1', 1250, 'EUR', 5) RETURNING id", product)
            order = await conn.fetchval(
                """INSERT INTO orders (user_id, seller_id, subtotal_minor, shipping_minor, total_minor, currency,
                                       shipping_address, status)
                   VALUES ($1::uuid, $2, 2500, 490, 2990, 'EUR', $3::jsonb, 'paid') RETURNING id::text""",
                buyer, seller, {"name": "Zoë Adams", "line1": "Rue de l'Église 3", "city": "Genève",
                                "postal_code": "1204", "country": "CH"})
            await conn.execute("""INSERT INTO order_items (order_id, product_id, variant_id, title, sku, quantity,
                                  unit_price_minor, currency) VALUES ($1::uuid, $2, $3, 'Blue mug ☕', 'MUG-1', 2,
                                  1250, 'EUR')""", order, product, variant)
            number = await conn.fetchval("SELECT number FROM orders WHERE id = $1::uuid", order)
            await services.outbox.queue(conn, "order.confirmed", [buyer], {
                "order_id": order, "number": number, "total_minor": 2990, "currency": "EUR"}, f"paid:{order}")
            await services.outbox.queue(conn, "follow.live_now", [buyer], {
                "stream_id": "s", "slug": "s", "title": "Ça commence ✨", "seller_name": "Shop", "seller_slug": "shop",
                "cover_url": None}, "live:u")
        await services.jobs.drain()
        messages = await mail_server.wait(2)
        [confirmed] = [m for m in messages if m["Subject"].startswith("Order")]
        [live] = [m for m in messages if m is not confirmed]

        assert str(make_header(decode_header(confirmed["From"]))) == "Café Ünïcode <mail@shop.test>"
        assert str(make_header(decode_header(live["Subject"]))) == "Shop is live now: Ça commence ✨"
        assert confirmed["Subject"] == f"Order {number} is confirmed"
        for body in (part(confirmed, "plain"), part(confirmed, "html")):
            assert "Blue mug ☕" in body and "29.90 EUR" in body and "4.90 EUR" in body and "Genève" in body
            assert f"https://shop.example/account/orders/{order}" in body and "Zoë" in body
        assert "Rue de l&#39;Église 3" in part(confirmed, "html") and "Rue de l'Église 3" in part(confirmed, "plain")
    finally:
        await services.outbox.close()


async def test_a_job_payload_it_cannot_read_is_permanent(services):
    for payload in ({"ids": []}, {"ids": list(range(1, BATCH + 2))}, {"ids": [True]}, {"ids": ["1"]},
                    {"ids": [0]}, {"ids": [2**63]}, {"id": "x"}, {}, {"ids": 5}):
        with pytest.raises(Permanent):
            await services.outbox.send(payload)
    await services.outbox.send({"ids": list(range(1, BATCH + 1))})  # 50 rows that do not exist: nothing to do


async def test_an_address_the_server_cannot_take_is_kept_with_its_error_and_the_batch_goes_on(services, db, dsn,
                                                                                              mail_server):
    data = {"contact_id": 2, "name": "Éa", "subject": "Hi", "message": "Hello"}
    async with db.tx(SYSTEM) as conn:  # one job of two mails: a non-ASCII address first (no SMTPUTF8 here)
        bad = await queue_mail(conn, "contact.ack", "éa@exämple.com", data, "ack:bad")
        good = await queue_mail(conn, "contact.ack", "ok@example.com", data, "ack:good")
    await services.jobs.drain()
    await mail_server.wait(1, address="ok@example.com")
    async with owner_connection(dsn) as owner:
        rows = {r["id"]: r for r in await owner.fetch("SELECT id, sent_at, last_error FROM email_outbox")}
        assert rows[bad]["sent_at"] is None and rows[bad]["last_error"]
        assert rows[good]["sent_at"] is not None
        assert await owner.fetchval("SELECT count(*) FROM pgqueuer") == 0  # not retried: it cannot go
    assert len(mail_server.messages) == 1


async def test_the_connection_is_clean_for_the_next_message_after_one_fails_midway(mail_server):
    client = SmtpClient(mail_server.url)
    data = b"From: a@shop.test\r\nTo: b@example.com\r\nSubject: x\r\nMessage-ID: <1@shop.test>\r\n\r\nhi\r\n"
    try:
        with pytest.raises(UnicodeError):  # refused by the client after MAIL FROM went out
            await client.send("a@shop.test", ["é@exämple.com"], data)
        await client.send("a@shop.test", ["b@example.com"], data)
        [msg] = await mail_server.wait(1)
        assert msg["Message-ID"] == "<1@shop.test>" and client.connections == 1
    finally:
        await client.close()
