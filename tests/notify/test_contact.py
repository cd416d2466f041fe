"""The contact form over real HTTP and a real PostgreSQL: validation naming each field, the honeypot, both rate
limits, the two mails at a real SMTP server (tests/notify/conftest.py), and the admins' desk."""
from __future__ import annotations

import json

import pytest

from tests.helpers import make_settings, owner_connection

URL = "/api/v1/contact"
GOOD = {"name": "Ada Lovelace", "email": "ada@example.org", "subject": "Where is my order?",
        "message": "Hello,\nI ordered a lamp last week.\n<b>Thanks</b>"}


@pytest.fixture
def settings(tmp_path, mail_server):
    return make_settings(tmp_path, smtp_url=mail_server.url, support_email="help@shop.test")


async def rows(dsn: str, sql: str = "SELECT * FROM contacts ORDER BY created_at", *args):
    async with owner_connection(dsn) as conn:
        return [dict(r) for r in await conn.fetch(sql, *args)]


def text_of(msg) -> str:
    return "".join(p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
                   for p in msg.walk() if p.get_content_type() == "text/plain")


async def send(client, body: dict, **headers):
    resp = await client.post(URL, json=body, headers=headers)
    return resp, await resp.json()


async def test_a_message_is_stored_and_mailed_to_support_and_the_sender(client, dsn, mail_server):
    resp, body = await send(client, GOOD, **{"User-Agent": "pytest-contact/1.0"})
    assert resp.status == 202, body
    assert set(body) == {"id"}
    [row] = await rows(dsn)
    assert str(row["id"]) == body["id"]
    assert (row["name"], row["email"], row["subject"], row["message"]) == (
        GOOD["name"], GOOD["email"], GOOD["subject"], GOOD["message"])
    assert row["status"] == "new" and row["ip"] == "127.0.0.1" and row["user_agent"] == "pytest-contact/1.0"

    [support] = await mail_server.wait(1, address="help@shop.test")
    [ack] = await mail_server.wait(1, address="ada@example.org")
    assert str(support["Reply-To"]) == "ada@example.org"
    assert ack["Reply-To"] is None
    assert support["Message-ID"] != ack["Message-ID"]
    assert "I ordered a lamp" in text_of(support) and "I ordered a lamp" in text_of(ack)
    outbox = await rows(dsn, "SELECT key, to_address FROM email_outbox ORDER BY key")
    assert [(r["key"], r["to_address"]) for r in outbox] == [
        (f"contact:{body['id']}:ack", "ada@example.org"), (f"contact:{body['id']}:support", "help@shop.test")]


async def test_each_bad_field_is_named_and_nothing_is_stored(client, dsn):
    resp, body = await send(client, {"name": "", "email": "not-an-address", "subject": "x" * 201, "message": ""})
    assert resp.status == 422, body
    assert body["error"]["code"] == "validation_failed"
    assert {d["field"] for d in body["error"]["details"]} == {"name", "email", "subject", "message"}

    cases = [({**GOOD, "name": "x" * 201}, "name"), ({**GOOD, "email": "a@" + "b" * 320 + ".io"}, "email"),
             ({**GOOD, "email": "ada@example.org\r\nBcc: x@y.z"}, "email"),
             ({**GOOD, "subject": "hi\r\nBcc: x@y.z"}, "subject"), ({**GOOD, "name": "Ada\nL"}, "name"),
             ({**GOOD, "email": "ada\b@example.org"}, "email"), ({**GOOD, "subject": "a\u2028b"}, "subject"),
             ({**GOOD, "message": "m" * 5001}, "message"), ({**GOOD, "website": "w" * 2001}, "website"),
             ({k: v for k, v in GOOD.items() if k != "subject"}, "subject"), ({**GOOD, "extra": 1}, "extra"),
             ({**GOOD, "name": "   "}, "name")]
    # not plain ASCII addresses: the mailer cannot send to them
    cases += [({**GOOD, "email": bad}, "email") for bad in ("adé@example.org", "ada@exämple.org", "ада@пример.рф")]
    # RFC 5322 specials: a group (`x:` ...), a second address, quoting, a comment, a route, no dot in the domain
    cases += [({**GOOD, "email": bad}, "email") for bad in (
        "x:attacker@evil.com", "ada@example.org,eve@evil.com", '"ada lovelace"@example.org',
        "ada(comment)@example.org", "ada@[127.0.0.1]", "@evil.com:ada@example.org", "ada@localhost",
        "ada@example..org", "ada@" + "d" * 64 + ".org", "a" * 65 + "@example.org", "ada@example.org;",
        "ada@example.org>")]
    for payload, field in cases:
        resp, body = await send(client, payload)
        assert resp.status == 422, (field, body)
        assert [d["field"] for d in body["error"]["details"]] == [field], body

    resp = await client.post(URL, data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert await rows(dsn) == []

    # the limits: at the top of each accepted range
    resp, body = await send(client, {**GOOD, "name": "n" * 200, "subject": "s" * 200, "message": "m" * 5000,
                                     "email": "a" * 64 + "@" + ".".join(["d" * 63] * 4)})
    assert resp.status == 202, body
    # the specials a dot-atom allows are kept as they are
    resp, body = await send(client, {**GOOD, "email": "o'brien+shop.test!#$%&*/=?^_`{|}~-1@mail-1.example.org"})
    assert resp.status == 202, body


async def test_the_honeypot_answers_like_a_success_stores_spam_and_sends_nothing(client, dsn, mail_server):
    resp, body = await send(client, {**GOOD, "website": "http://spam.example"})
    assert resp.status == 202 and set(body) == {"id"}
    [row] = await rows(dsn)
    assert str(row["id"]) == body["id"] and row["status"] == "spam"
    assert await rows(dsn, "SELECT * FROM email_outbox") == []
    # an empty (or blank) honeypot is a person
    resp, body = await send(client, {**GOOD, "website": "  "})
    assert resp.status == 202
    assert [r["status"] for r in await rows(dsn)] == ["spam", "new"]
    await mail_server.wait(2)
    assert mail_server.to("help@shop.test") and len(mail_server.messages) == 2


async def test_per_email_limit_answers_429_with_retry_after(client, dsn):
    for _ in range(3):
        resp, body = await send(client, {**GOOD, "email": "Bob@Example.org"})
        assert resp.status == 202, body
    resp, body = await send(client, {**GOOD, "email": "bob@example.org"})  # the same address, any case
    assert resp.status == 429 and body["error"]["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 3600
    assert "email address" in body["error"]["message"]
    assert len(await rows(dsn)) == 3
    resp, _ = await send(client, {**GOOD, "email": "carol@example.org"})  # another address still may
    assert resp.status == 202


async def test_per_ip_limit_answers_429_with_retry_after_spam_included(client, dsn):
    for i in range(5):
        resp, body = await send(client, {**GOOD, "email": f"p{i}@example.org",
                                         **({"website": "x"} if i == 4 else {})})
        assert resp.status == 202, body
    resp, body = await send(client, {**GOOD, "email": "p9@example.org", "website": "x"})
    assert resp.status == 429 and body["error"]["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 3600
    assert "your address" in body["error"]["message"]
    resp, body = await send(client, {**GOOD, "email": "p10@example.org"})
    assert resp.status == 429
    assert len(await rows(dsn)) == 5


@pytest.mark.parametrize("settings_overrides", [{"rate_limits": "contact_per_ip=1/60"}])
async def test_the_limits_are_named_and_overridable(tmp_path, dsn, aiohttp_client, mail_server, settings_overrides):
    from live.app import create_app

    app = create_app(make_settings(tmp_path, smtp_url=mail_server.url, **settings_overrides), dsn,
                     run_migrations=False)
    client = await aiohttp_client(app)
    assert (await send(client, GOOD))[0].status == 202
    resp, _ = await send(client, {**GOOD, "email": "other@example.org"})
    assert resp.status == 429 and 1 <= int(resp.headers["Retry-After"]) <= 60
    # SUPPORT_EMAIL unset: support@ the domain of EMAIL_FROM (live <no-reply@localhost>)
    await mail_server.wait(1, address="support@localhost")


async def test_admins_list_read_and_mark_answered_each_audited(client, dsn, token_for):
    admin_id, admin = await token_for("root", "admin")
    _, customer = await token_for("cora")
    auth = {"Authorization": f"Bearer {admin}"}
    ids = []
    for i in range(3):
        resp, body = await send(client, {**GOOD, "email": f"c{i}@example.org", "subject": f"question {i}"})
        ids.append(body["id"])
    _, spam = await send(client, {**GOOD, "email": "bot@example.org", "website": "buy"})

    # strangers and customers
    for headers, status in (({}, 401), ({"Authorization": f"Bearer {customer}"}, 403)):
        for method, path in (("GET", "/api/v1/admin/contact"), ("GET", f"/api/v1/admin/contact/{ids[0]}"),
                             ("POST", f"/api/v1/admin/contact/{ids[0]}/answered")):
            resp = await client.request(method, path, headers=headers)
            assert resp.status == status, (method, path, await resp.text())

    # newest first, two a page, spam left out unless asked for
    resp = await client.get("/api/v1/admin/contact?limit=2", headers=auth)
    page = await resp.json()
    assert resp.status == 200, page
    assert [i["id"] for i in page["items"]] == [ids[2], ids[1]]
    assert page["items"][0]["status"] == "new" and page["items"][0]["preview"].startswith("Hello,")
    resp = await client.get(f"/api/v1/admin/contact?limit=2&cursor={page['next_cursor']}", headers=auth)
    page2 = await resp.json()
    assert [i["id"] for i in page2["items"]] == [ids[0]] and page2["next_cursor"] is None
    resp = await client.get("/api/v1/admin/contact?status=spam", headers=auth)
    assert [i["id"] for i in (await resp.json())["items"]] == [spam["id"]]
    resp = await client.get("/api/v1/admin/contact?cursor=forged", headers=auth)
    assert resp.status == 400
    resp = await client.get("/api/v1/admin/contact?status=archived", headers=auth)
    assert resp.status == 400

    # reading one marks it read (by whom, when)
    resp = await client.get(f"/api/v1/admin/contact/{ids[1]}", headers=auth)
    one = await resp.json()
    assert resp.status == 200, one
    assert one["message"] == GOOD["message"] and one["email"] == "c1@example.org" and one["ip"] == "127.0.0.1"
    assert one["status"] == "read" and one["read_by"] == admin_id and one["read_at"]
    resp = await client.get("/api/v1/admin/contact?status=read", headers=auth)
    assert [i["id"] for i in (await resp.json())["items"]] == [ids[1]]

    # marked answered (who, when); again: unchanged
    resp = await client.post(f"/api/v1/admin/contact/{ids[1]}/answered", headers=auth)
    done = await resp.json()
    assert resp.status == 200, done
    assert done["status"] == "answered" and done["answered_by"] == {"id": admin_id, "name": "root"}
    again = await (await client.post(f"/api/v1/admin/contact/{ids[1]}/answered", headers=auth)).json()
    assert again["answered_at"] == done["answered_at"]
    # one never read is answered (and so read) in one step
    resp = await client.post(f"/api/v1/admin/contact/{ids[0]}/answered", headers=auth)
    assert (await resp.json())["read_by"] == admin_id

    for path in ("/api/v1/admin/contact/00000000-0000-0000-0000-000000000000", "/api/v1/admin/contact/nope"):
        assert (await client.get(path, headers=auth)).status == 404
        assert (await client.post(path + "/answered", headers=auth)).status == 404

    audit = await rows(dsn, "SELECT actor_id::text AS actor, action, entity_id, data FROM audit_log "
                            "WHERE entity = 'contact' ORDER BY id")
    assert [(a["action"], a["entity_id"]) for a in audit] == [
        ("contact.list", None), ("contact.list", None), ("contact.list", None), ("contact.read", ids[1]),
        ("contact.list", None), ("contact.answer", ids[1]), ("contact.answer", ids[0])]
    assert {a["actor"] for a in audit} == {admin_id}
    data = [json.loads(a["data"]) for a in audit]
    assert data[3]["before"] == {"status": "new"} and data[3]["after"] == {"status": "read"}
    assert data[0]["ids"] == [ids[2], ids[1]] and data[2]["status"] == "spam"
