"""Email one-time codes over real HTTP (the codes read from the real outbox table): sign-in, expiry, attempt and
hourly limits, also under parallel requests; and the outbox sender. The tests of this module share one migrated
database (see tests/auth_helpers.py); the outbox tests, which count pending mail, get databases of their own."""
from __future__ import annotations

import asyncio
import re

import pytest

from db import Database
from live.auth.email_codes import MAX_ATTEMPTS, MAX_CODES_PER_HOUR
from live.auth.principal import SYSTEM
from live.outbox import OutboxSender, enqueue_email
from live.services import Services
from tests.auth_helpers import (  # noqa: F401  (dsn: the module's database)
    ME, auth, dsn, error_of, owner_execute, owner_fetchval)
from tests.conftest import make_settings, owner_connection, scratch_database


@pytest.fixture
def fresh_dsn(pg_admin_dsn, template_dsn):
    with scratch_database(pg_admin_dsn, "a_") as url:
        yield url


async def latest_code(dsn: str, email: str) -> str:
    body = await owner_fetchval(
        dsn, "SELECT body FROM email_outbox WHERE to_address = $1 ORDER BY id DESC LIMIT 1", email)
    assert body is not None, f"no mail to {email}"
    match = re.search(r"\b(\d{6})\b", body)
    assert match, body
    return match.group(1)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def start(client, email: str):
    resp = await client.post("/api/v1/auth/email/start", json={"email": email})
    assert resp.status == 202, await resp.text()


async def verify(client, email: str, code: str):
    return await client.post("/api/v1/auth/email/verify", json={"email": email, "code": code})


async def test_email_code_sign_in(client, dsn):
    email = "hana@example.com"
    await start(client, email)
    code = await latest_code(dsn, email)

    err = await error_of(await verify(client, email, other_code(code)), 401)
    assert err["code"] == "invalid_code"

    resp = await verify(client, email, code)
    assert resp.status == 200, await resp.text()
    session = await resp.json()
    assert session["user"]["email"] == email
    me = await client.get(ME, headers=auth(session["token"]))
    assert me.status == 200
    assert (await me.json())["email"] == email

    # the code is consumed
    err = await error_of(await verify(client, email, code), 401)
    assert err["code"] == "invalid_code"

    # a second sign-in finds the same user, and the address is matched case-insensitively
    await start(client, "HANA@Example.com")
    code2 = await latest_code(dsn, email)
    resp = await verify(client, "Hana@example.com", code2)
    assert resp.status == 200
    assert (await resp.json())["user"]["id"] == session["user"]["id"]


async def test_email_code_is_not_stored_in_clear(client, dsn):
    email = "ivan@example.com"
    await start(client, email)
    code = await latest_code(dsn, email)
    stored = await owner_fetchval(dsn, "SELECT code_hash FROM email_codes WHERE email = $1", email)
    assert code not in stored


async def test_email_expired_code_is_401(client, dsn):
    email = "jane@example.com"
    await start(client, email)
    code = await latest_code(dsn, email)
    status = await owner_execute(
        dsn, "UPDATE email_codes SET expires_at = now() - interval '1 minute' WHERE email = $1", email)
    assert status == "UPDATE 1"
    err = await error_of(await verify(client, email, code), 401)
    assert err["code"] == "code_expired"


async def test_email_wrong_attempts_lock_the_code(client, dsn):
    email = "kim@example.com"
    await start(client, email)
    code = await latest_code(dsn, email)
    for _ in range(MAX_ATTEMPTS):
        err = await error_of(await verify(client, email, other_code(code)), 401)
        assert err["code"] == "invalid_code"
    # locked: even the right code no longer works
    err = await error_of(await verify(client, email, code), 429)
    assert err["code"] == "rate_limited"


async def test_email_too_many_starts_is_429(client):
    email = "lee@example.com"
    for _ in range(MAX_CODES_PER_HOUR):
        await start(client, email)
    resp = await client.post("/api/v1/auth/email/start", json={"email": email})
    err = await error_of(resp, 429)
    assert err["code"] == "rate_limited"
    # other addresses are not affected
    await start(client, "someone-else@example.com")


@pytest.mark.parametrize("body", [{"email": "not-an-email"}, {}, {"email": "a@b.co", "extra": 1}])
async def test_email_start_invalid_body_is_422(client, body):
    err = await error_of(await client.post("/api/v1/auth/email/start", json=body), 422)
    assert err["code"] == "validation_failed"


async def test_email_verify_without_pending_code_is_401(client):
    err = await error_of(await verify(client, "nobody@example.com", "123456"), 401)
    assert err["code"] == "invalid_code"


async def test_outbox_marks_mail_sent_without_smtp(fresh_dsn, tmp_path):
    settings = make_settings(tmp_path)
    assert settings.smtp_url is None
    db = await Database.connect(fresh_dsn, min_size=1, max_size=2)
    try:
        services = Services(settings, db)
        await services.email_codes.start("mia@example.com")
        async with owner_connection(fresh_dsn) as owner:
            pending = await owner.fetch("SELECT id FROM email_outbox WHERE sent_at IS NULL")
            assert len(pending) == 1
            assert await services.outbox.deliver_batch() == 1
            row = await owner.fetchrow("SELECT sent_at, attempts, last_error FROM email_outbox WHERE id = $1",
                                       pending[0]["id"])
        assert row["sent_at"] is not None
        assert row["attempts"] == 1
        assert row["last_error"] is None
        assert await services.outbox.deliver_batch() == 0
    finally:
        await db.close()


# ---------------------------------------------------------------- concurrency: limits hold under parallel requests


async def test_parallel_verifies_of_one_code_sign_in_once(client, dsn):
    email = "nina@example.com"
    await start(client, email)
    code = await latest_code(dsn, email)
    responses = await asyncio.gather(*(verify(client, email, code) for _ in range(6)))
    assert sorted(r.status for r in responses) == [200] + [401] * 5


async def test_parallel_wrong_guesses_stop_at_the_attempt_limit(client, dsn):
    email = "omar@example.com"
    await start(client, email)
    wrong = other_code(await latest_code(dsn, email))
    responses = await asyncio.gather(*(verify(client, email, wrong) for _ in range(MAX_ATTEMPTS + 3)))
    assert sorted(r.status for r in responses) == [401] * MAX_ATTEMPTS + [429] * 3


async def test_parallel_starts_respect_the_hourly_limit(client):
    email = "pia@example.com"
    responses = await asyncio.gather(*(client.post("/api/v1/auth/email/start", json={"email": email})
                                       for _ in range(MAX_CODES_PER_HOUR + 5)))
    assert sorted(r.status for r in responses) == [202] * MAX_CODES_PER_HOUR + [429] * 5


class ObservedOutbox(OutboxSender):
    """The real sender, with events telling the test when a delivery attempt has finished."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.failed = asyncio.Event()
        self.delivered = asyncio.Event()

    async def deliver_batch(self, limit: int = 20) -> int:
        try:
            sent = await super().deliver_batch(limit)
        except BaseException:
            self.failed.set()
            raise
        if sent:
            self.delivered.set()
        return sent


async def test_outbox_sender_survives_a_database_error(fresh_dsn):
    broken = await Database.connect(fresh_dsn, min_size=1, max_size=1)
    await broken.close()  # every acquire now raises asyncpg.InterfaceError
    working = await Database.connect(fresh_dsn, min_size=1, max_size=2)
    sender = ObservedOutbox(broken, None, "live <no-reply@localhost>", interval=3600)
    task = asyncio.create_task(sender.run())
    try:
        await sender.failed.wait()
        # run() handled the error in the same step that raised it: the task is now idle, not dead
        await asyncio.sleep(0)
        assert not task.done(), task.exception()
        sender._db = working  # the database is back
        async with working.tx(SYSTEM) as conn:
            await enqueue_email(conn, "quinn@example.com", "hello", "body")
        sender.wake()
        await asyncio.wait_for(sender.delivered.wait(), 30)  # a guard against hanging, not a timing assertion
        assert await owner_fetchval(fresh_dsn, "SELECT sent_at IS NOT NULL FROM email_outbox WHERE to_address = $1",
                                    "quinn@example.com")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await working.close()
