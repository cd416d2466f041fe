"""The development mailbox: its real SMTP server (size limit, retention, one message per Message-ID), its pages and
JSON route through the app, refused in production. The `live serve` processes are in test_devmail_serve.py."""
from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
import pytest

from live.notify.devmail import MAX_MESSAGE_BYTES, DevMailServer, Mailbox, message_key
from tests.helpers import make_settings


def mail(to: str, subject: str, *, message_id: str | None = None, html: str | None = None,
         text: str = "hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "live <no-reply@localhost>", to, subject
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


@pytest.fixture
def server(tmp_path):
    srv = DevMailServer(Mailbox(tmp_path / "mailbox", max_messages=3))
    srv.start()
    yield srv
    srv.stop()


async def send(server: DevMailServer, msg: EmailMessage) -> None:
    await aiosmtplib.send(msg, hostname=server.host, port=server.port, timeout=10)


async def test_received_messages_are_kept_one_per_message_id(server):
    await send(server, mail("a@example.org", "first", message_id="<one@localhost>", html="<p>Hi <b>A</b></p>"))
    await send(server, mail("b@example.org", "second", message_id="<two@localhost>"))
    box = server.mailbox
    assert [m["subject"] for m in box.list()] == ["second", "first"]
    # a resent copy (same Message-ID) replaces the first one and is the newest
    await send(server, mail("a@example.org", "first, again", message_id="<one@localhost>", text="hello again"))
    items = box.list()
    assert [m["subject"] for m in items] == ["first, again", "second"]
    assert items[0]["text"].strip() == "hello again" and items[0]["to"] == "a@example.org"
    one = box.get(items[0]["id"])
    assert one["html"] is None and one["text"].strip() == "hello again"
    assert ("Message-ID", "<one@localhost>") in one["headers"]
    assert [m["subject"] for m in box.list(to="B@example")] == ["second"]
    assert box.get("0" * 32) is None and box.get("../../etc/passwd") is None


async def test_only_the_newest_are_kept(server):
    for i in range(5):
        await send(server, mail("a@example.org", f"m{i}", message_id=f"<m{i}@localhost>"))
    assert [m["subject"] for m in server.mailbox.list()] == ["m4", "m3", "m2"]
    files = sorted(p.name for p in server.mailbox.dir.iterdir())
    assert len(files) == 6 and all(p.endswith((".eml", ".json")) for p in files)  # no temporary file left


async def test_a_message_over_the_size_limit_is_refused(server):
    big = mail("a@example.org", "too big", message_id="<big@localhost>", text="x" * (MAX_MESSAGE_BYTES + 1000))
    with pytest.raises(aiosmtplib.SMTPResponseException) as err:
        await send(server, big)
    assert err.value.code == 552
    assert server.mailbox.list() == []
    await send(server, mail("a@example.org", "small", message_id="<small@localhost>"))  # the server still serves
    assert [m["subject"] for m in server.mailbox.list()] == ["small"]


async def test_pages_and_json(tmp_path, dsn, aiohttp_client):
    from live.app import create_app

    settings = make_settings(tmp_path)
    box = Mailbox(settings.data_dir / "mailbox")
    evil = '<p onclick="x()">Your code is <b>123456</b></p><script>alert(1)</script>"quotes" &amp;'
    for i, to in enumerate(("ann@example.org", "bob@example.org")):
        msg = mail(to, f"Your sign-in code {i}", message_id=f"<c{i}@localhost>", html=evil,
                   text=f"Your code is 12345{i}")
        box.store(bytes(msg))
    client = await aiohttp_client(create_app(settings, dsn, run_migrations=False))

    resp = await client.get("/dev/mailbox")
    page = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert page.index("Your sign-in code 1") < page.index("Your sign-in code 0")  # newest first
    assert "bob@example.org" in page and 'name="viewport"' in page

    resp = await client.get("/api/v1/dev/mailbox?to=ann@example.org")
    body = await resp.json()
    assert resp.status == 200, body
    [item] = body["items"]
    assert item["to"] == "ann@example.org" and item["text"].strip() == "Your code is 123450"
    assert item["url"] == f"/dev/mailbox/{item['id']}" and item["message_id"] == "<c0@localhost>"
    assert item["from"] == "live <no-reply@localhost>" and item["subject"] == "Your sign-in code 0"
    assert len((await (await client.get("/api/v1/dev/mailbox?limit=1")).json())["items"]) == 1
    assert (await client.get("/api/v1/dev/mailbox?limit=0")).status == 400

    resp = await client.get(item["url"])
    page = await resp.text()
    assert resp.status == 200
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    # the HTML part only inside the sandboxed iframe's srcdoc (escaped: no live tag in this page), no scripts
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<p onclick" not in page and "&amp;amp;" in page
    assert "Your code is 123450" in page and "&lt;c0@localhost&gt;" in page  # the text part and the headers

    for path in ("/dev/mailbox/" + "f" * 32, "/dev/mailbox/nope", "/dev/other"):
        resp = await client.get(path)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_refused_in_production(tmp_path, dsn, aiohttp_client):
    from live.app import create_app

    settings = make_settings(tmp_path, live_env="production", livekit_api_key="prod-key",
                             livekit_api_secret="prod-secret-" + "y" * 30)
    Mailbox(settings.data_dir / "mailbox").store(bytes(mail("a@example.org", "left over", message_id="<x@y>")))
    client = await aiohttp_client(create_app(settings, dsn, run_migrations=False))
    [entry] = Mailbox(settings.data_dir / "mailbox").list()
    for path in ("/dev/mailbox", f"/dev/mailbox/{entry['id']}", "/api/v1/dev/mailbox", "/dev/", "/dev/x/y"):
        resp = await client.get(path)
        body = await resp.json()
        assert resp.status == 404 and body["error"]["code"] == "not_found", (path, body)


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    """The rename over `<id>.eml` fails (a directory of that name is in the way): the error is raised and the
    temporary file it wrote is gone; the next message is stored as usual."""
    box = Mailbox(tmp_path / "mailbox")
    raw = mail("ada@example.org", "first", message_id="<one@test>").as_bytes()
    key = message_key(raw, "<one@test>")
    (tmp_path / "mailbox" / f"{key}.eml" / "occupied").mkdir(parents=True)
    with pytest.raises(OSError):
        box.store(raw)
    assert sorted(p.name for p in (tmp_path / "mailbox").iterdir()) == [f"{key}.eml"]
    other = box.store(mail("bob@example.org", "second", message_id="<two@test>").as_bytes())
    assert sorted(p.name for p in (tmp_path / "mailbox").iterdir()) == sorted(
        [f"{key}.eml", f"{other}.eml", f"{other}.json"])
