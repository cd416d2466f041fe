"""Email one-time codes over real HTTP (the codes read from the real outbox table): sign-in, expiry, attempt and
hourly limits, also under parallel requests, counted per requester so that nobody can lock another person out
(the outbox's delivery is tests/jobs/test_email_jobs.py). Requesters are told apart by X-Forwarded-For
(TRUSTED_PROXY_HEADER in this module). The tests of this module share one migrated database (see
tests/auth/conftest.py)."""
from __future__ import annotations

import asyncio
import re

import pytest

from live.auth.email_codes import MAX_ATTEMPTS, MAX_CODES_PER_HOUR
from live.ratelimit import DEFAULT_LIMITS
from tests.auth.helpers import ME, auth, error_of, owner_execute, owner_fetchval
from tests.helpers import make_settings

GUESSES = DEFAULT_LIMITS["email_guess_per_address"].count  # per requester and address
STARTS = DEFAULT_LIMITS["email_code_per_address"].count


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, trusted_proxy_header="X-Forwarded-For")


async def latest_code(dsn: str, email: str) -> str:
    body = await owner_fetchval(
        dsn, "SELECT coalesce(data->>'code', body) FROM email_outbox WHERE to_address = $1 ORDER BY id DESC LIMIT 1",
        email)
    assert body is not None, f"no mail to {email}"
    match = re.search(r"\b(\d{6})\b", body)
    assert match, body
    return match.group(1)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def origin(ip: str) -> dict:
    return {"X-Forwarded-For": f"198.51.100.250, {ip}"}  # the proxy appends the address it saw: the last one


async def start(client, email: str, ip: str = "192.0.2.1", status: int = 202):
    resp = await client.post("/api/v1/auth/email/start", json={"email": email}, headers=origin(ip))
    assert resp.status == status, await resp.text()
    return resp


async def verify(client, email: str, code: str, ip: str = "192.0.2.1"):
    return await client.post("/api/v1/auth/email/verify", json={"email": email, "code": code}, headers=origin(ip))


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


async def test_email_wrong_guesses_are_limited_per_requester(client, dsn):
    email = "kim@example.com"
    await start(client, email, ip="192.0.2.10")  # the owner asks for a code
    code = await latest_code(dsn, email)
    for _ in range(GUESSES):  # someone else guesses
        err = await error_of(await verify(client, email, other_code(code), ip="203.0.113.66"), 401)
        assert err["code"] == "invalid_code"
    resp = await verify(client, email, code, ip="203.0.113.66")  # now refused, even the right code
    err = await error_of(resp, 429)
    assert err["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) >= 1
    # the owner is not locked out: their code still works
    resp = await verify(client, email, code, ip="192.0.2.10")
    assert resp.status == 200, await resp.text()


async def test_a_code_requested_by_someone_else_does_not_void_the_owners(client, dsn):
    email = "kit@example.com"
    await start(client, email, ip="192.0.2.11")
    owners = await latest_code(dsn, email)
    await start(client, email, ip="203.0.113.67")  # a newer code, requested by someone else
    resp = await verify(client, email, owners, ip="192.0.2.11")
    assert resp.status == 200, await resp.text()
    # every pending code of the address is used up by the sign-in
    pending = await owner_fetchval(dsn, "SELECT count(*) FROM email_codes WHERE email = $1 AND consumed_at IS NULL",
                                   email)
    assert pending == 0


async def test_email_code_requests_are_limited_per_requester(client):
    email = "lee@example.com"
    for _ in range(STARTS):
        await start(client, email, ip="203.0.113.68")
    resp = await start(client, email, ip="203.0.113.68", status=429)
    err = await error_of(resp, 429)
    assert err["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) >= 1
    # the owner of the address, elsewhere, still gets a code; other addresses are not affected
    await start(client, email, ip="192.0.2.12")
    await start(client, "someone-else@example.com", ip="203.0.113.68")


async def test_email_code_survives_at_most_max_attempts_wrong_guesses_in_all(client, dsn):
    email = "kai@example.com"
    await start(client, email)
    code = await latest_code(dsn, email)
    for i in range(MAX_ATTEMPTS):  # many requesters, each under its own limit
        err = await error_of(await verify(client, email, other_code(code), ip=f"198.18.0.{i + 1}"), 401)
        assert err["code"] == "invalid_code"
    err = await error_of(await verify(client, email, code, ip="198.18.1.1"), 429)
    assert err["code"] == "rate_limited"
    assert "request a new one" in err["message"]
    await start(client, email, ip="198.18.1.1")  # a new code works
    resp = await verify(client, email, await latest_code(dsn, email), ip="198.18.1.1")
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("body", [{"email": "not-an-email"}, {}, {"email": "a@b.co", "extra": 1}])
async def test_email_start_invalid_body_is_422(client, body):
    err = await error_of(await client.post("/api/v1/auth/email/start", json=body), 422)
    assert err["code"] == "validation_failed"


async def test_email_verify_without_pending_code_is_401(client):
    err = await error_of(await verify(client, "nobody@example.com", "123456"), 401)
    assert err["code"] == "invalid_code"


# ---------------------------------------------------------------- concurrency: limits hold under parallel requests


async def test_parallel_verifies_of_one_code_sign_in_once(client, dsn):
    email = "nina@example.com"
    await start(client, email)
    code = await latest_code(dsn, email)
    responses = await asyncio.gather(*(verify(client, email, code, ip=f"198.18.2.{i}") for i in range(6)))
    assert sorted(r.status for r in responses) == [200] + [401] * 5


async def test_parallel_wrong_guesses_stop_at_the_attempt_limit(client, dsn):
    email = "omar@example.com"
    await start(client, email)
    wrong = other_code(await latest_code(dsn, email))
    responses = await asyncio.gather(*(verify(client, email, wrong, ip=f"198.18.3.{i}")
                                       for i in range(MAX_ATTEMPTS + 3)))
    assert sorted(r.status for r in responses) == [401] * MAX_ATTEMPTS + [429] * 3


async def test_parallel_starts_respect_the_hourly_limit(client):
    email = "pia@example.com"
    responses = await asyncio.gather(*(client.post("/api/v1/auth/email/start", json={"email": email},
                                                   headers=origin(f"198.18.4.{i}"))
                                       for i in range(MAX_CODES_PER_HOUR + 5)))
    assert sorted(r.status for r in responses) == [202] * MAX_CODES_PER_HOUR + [429] * 5
    assert all(3000 < int(r.headers["Retry-After"]) <= 3600 for r in responses if r.status == 429)
