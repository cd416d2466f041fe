"""Authentication over real HTTP: JWT bearer tokens, role checks, the profile, Solana wallet sign-in
(real ed25519 keys) and email one-time codes (read from the real outbox table).

To stay fast, the tests of this module share one migrated database (cloned from the template like conftest's
`dsn`); each test uses its own user names, email addresses and wallet keys, so none sees another's rows.
The outbox test, which counts pending mail, gets a database of its own."""
from __future__ import annotations

import asyncio
import re
import time
import uuid

import asyncpg
import base58
import jwt
import nacl.signing
import pytest
from aiohttp import web

from db import Database
from live.auth.email_codes import MAX_ATTEMPTS, MAX_CODES_PER_HOUR
from live.auth.principal import SYSTEM
from live.auth.tokens import TokenService
from live.http.api import Api, Call
from live.http.middleware import error_middleware
from live.outbox import OutboxSender, enqueue_email
from live.services import Services
from tests.conftest import SECRET, make_settings, scratch_database

ME = "/api/v1/me"


@pytest.fixture
def dsn(module_dsn):
    """Overrides conftest's per-test database (see the module docstring)."""
    return module_dsn


@pytest.fixture
def fresh_dsn(pg_admin_dsn, template_dsn):
    with scratch_database(pg_admin_dsn, "a_") as url:
        yield url


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def error_of(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    return body["error"]


async def owner_execute(dsn: str, sql: str, *args) -> str:
    owner = await asyncpg.connect(dsn)
    try:
        return await owner.execute(sql, *args)
    finally:
        await owner.close()


async def owner_fetchval(dsn: str, sql: str, *args):
    owner = await asyncpg.connect(dsn)
    try:
        return await owner.fetchval(sql, *args)
    finally:
        await owner.close()


# ---------------------------------------------------------------- JWT on /me


async def test_me_without_token_is_401(client):
    err = await error_of(await client.get(ME), 401)
    assert err["code"] == "unauthorized"


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer ", "abc", "Basic dXNlcjpwYXNz"])
async def test_me_with_malformed_header_is_401(client, header):
    err = await error_of(await client.get(ME, headers={"Authorization": header}), 401)
    assert err["code"] == "unauthorized"


async def test_me_with_bad_signature_is_401(client, token_for):
    user_id, good = await token_for("mallory")
    claims = jwt.decode(good, SECRET, algorithms=["HS256"], issuer="live")
    forged = jwt.encode(claims, "another-secret-" + "z" * 40, algorithm="HS256")
    err = await error_of(await client.get(ME, headers=auth(forged)), 401)
    assert err["code"] == "unauthorized"
    # tampering with the payload of a genuine token breaks the signature too
    head, _, sig = good.split(".")
    tampered_claims = dict(claims, role="admin")
    tampered = jwt.encode(tampered_claims, "irrelevant-" + "k" * 40, algorithm="HS256").split(".")[1]
    err = await error_of(await client.get(ME, headers=auth(f"{head}.{tampered}.{sig}")), 401)
    assert err["code"] == "unauthorized"


async def test_me_with_unsigned_alg_none_token_is_401(client, token_for):
    user_id, _ = await token_for("nobody")
    unsigned = jwt.encode({"sub": user_id, "role": "admin", "iss": "live", "exp": int(time.time()) + 600},
                          None, algorithm="none")
    await error_of(await client.get(ME, headers=auth(unsigned)), 401)


async def test_me_with_expired_token_is_401(client, services, token_for):
    user_id, _ = await token_for("late")
    expired = services.tokens.issue(user_id, "customer", "late", ttl=-10)
    err = await error_of(await client.get(ME, headers=auth(expired)), 401)
    assert err["code"] == "unauthorized"
    assert "expired" in err["message"]


async def test_me_with_unknown_role_claim_is_401(client, token_for):
    user_id, _ = await token_for("weird")
    now = int(time.time())
    token = jwt.encode({"sub": user_id, "role": "superuser", "iss": "live", "iat": now, "exp": now + 600},
                       SECRET, algorithm="HS256")
    await error_of(await client.get(ME, headers=auth(token)), 401)


async def test_me_with_valid_token_returns_the_user(client, token_for):
    user_id, token = await token_for("carol")
    resp = await client.get(ME, headers=auth(token))
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == user_id
    assert body["name"] == "carol"
    assert body["role"] == "customer"


async def test_me_with_lowercase_bearer_scheme_works(client, token_for):
    user_id, token = await token_for("dave")
    resp = await client.get(ME, headers={"Authorization": f"bearer {token}"})
    assert resp.status == 200
    assert (await resp.json())["id"] == user_id


# ---------------------------------------------------------------- role checks in the registry


class StubServices:
    def __init__(self, tokens: TokenService):
        self.tokens = tokens

    async def authenticate(self, authorization):
        return await Services.authenticate(self, authorization)

    async def principal_for_token(self, token):
        return self.tokens.verify(token)


@pytest.fixture
async def role_client(aiohttp_client):
    tokens = TokenService(SECRET)
    api = Api()

    @api.route("GET", "/api/v1/seller-only", summary="sellers only", tag="test", auth="user", roles=("seller",))
    async def seller_only(call: Call):
        return {"hello": call.principal.name, "role": call.principal.role}

    app = web.Application(middlewares=[error_middleware])
    app["services"] = StubServices(tokens)
    api.register(app)
    return await aiohttp_client(app), tokens


async def test_wrong_role_is_403_and_right_role_is_200(role_client):
    client, tokens = role_client
    user = str(uuid.uuid4())
    customer = tokens.issue(user, "customer", "cust")
    err = await error_of(await client.get("/api/v1/seller-only", headers=auth(customer)), 403)
    assert err["code"] == "forbidden"
    assert "seller" in err["message"]

    seller = tokens.issue(user, "seller", "sel")
    resp = await client.get("/api/v1/seller-only", headers=auth(seller))
    assert resp.status == 200
    assert await resp.json() == {"hello": "sel", "role": "seller"}


async def test_role_route_without_token_is_401_not_403(role_client):
    client, tokens = role_client
    err = await error_of(await client.get("/api/v1/seller-only"), 401)
    assert err["code"] == "unauthorized"
    expired = tokens.issue(str(uuid.uuid4()), "seller", "s", ttl=-10)
    await error_of(await client.get("/api/v1/seller-only", headers=auth(expired)), 401)


# ---------------------------------------------------------------- PATCH /me


async def test_patch_me_changes_the_name(client, token_for):
    user_id, token = await token_for("erin")
    resp = await client.patch(ME, json={"name": "Erin Example", "avatar_url": "https://img.example/e.png"},
                              headers=auth(token))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["name"] == "Erin Example"
    assert body["avatar_url"] == "https://img.example/e.png"
    again = await (await client.get(ME, headers=auth(token))).json()
    assert again["id"] == user_id
    assert again["name"] == "Erin Example"


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "x" * 81}, {"role": "admin"},
                                  {"avatar_url": "javascript:alert(1)"}, {"name": 42}])
async def test_patch_me_invalid_body_is_422(client, token_for, body):
    _, token = await token_for("frank")
    err = await error_of(await client.patch(ME, json=body, headers=auth(token)), 422)
    assert err["code"] == "validation_failed"
    me = await (await client.get(ME, headers=auth(token))).json()
    assert me["name"] == "frank"
    assert me["role"] == "customer"


async def test_patch_me_non_json_body_is_400(client, token_for):
    _, token = await token_for("gina")
    resp = await client.patch(ME, data=b"name=gina2", headers={**auth(token), "Content-Type": "application/json"})
    err = await error_of(resp, 400)
    assert err["code"] == "invalid"
    err = await error_of(await client.patch(ME, data=b"", headers=auth(token)), 400)
    assert err["code"] == "invalid"


async def test_patch_me_requires_a_token(client):
    await error_of(await client.patch(ME, json={"name": "x"}), 401)


# ---------------------------------------------------------------- Solana wallet sign-in


def new_wallet() -> tuple[nacl.signing.SigningKey, str]:
    key = nacl.signing.SigningKey.generate()
    return key, base58.b58encode(bytes(key.verify_key)).decode()


def sign(key: nacl.signing.SigningKey, message: str) -> str:
    return base58.b58encode(key.sign(message.encode()).signature).decode()


async def get_nonce(client, address: str) -> dict:
    resp = await client.post("/api/v1/auth/wallet/nonce", json={"address": address})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["nonce"] in body["message"] and address in body["message"]
    return body


async def wallet_verify(client, address: str, nonce: str, signature: str):
    return await client.post("/api/v1/auth/wallet/verify",
                             json={"address": address, "nonce": nonce, "signature": signature})


async def test_wallet_sign_in_end_to_end(client):
    key, address = new_wallet()
    challenge = await get_nonce(client, address)
    signature = sign(key, challenge["message"])
    resp = await wallet_verify(client, address, challenge["nonce"], signature)
    assert resp.status == 200, await resp.text()
    session = await resp.json()
    assert session["user"]["wallet_address"] == address
    me = await client.get(ME, headers=auth(session["token"]))
    assert me.status == 200
    body = await me.json()
    assert body["wallet_address"] == address
    assert body["id"] == session["user"]["id"]

    # signing in again with the same wallet returns the same user
    challenge2 = await get_nonce(client, address)
    resp = await wallet_verify(client, address, challenge2["nonce"], sign(key, challenge2["message"]))
    assert resp.status == 200
    assert (await resp.json())["user"]["id"] == session["user"]["id"]


async def test_wallet_nonce_replay_is_401(client):
    key, address = new_wallet()
    challenge = await get_nonce(client, address)
    payload = {"address": address, "nonce": challenge["nonce"], "signature": sign(key, challenge["message"])}
    assert (await wallet_verify(client, **payload)).status == 200
    err = await error_of(await wallet_verify(client, **payload), 401)
    assert err["code"] == "nonce_used"


async def test_wallet_bad_signature_is_401(client):
    key, address = new_wallet()
    challenge = await get_nonce(client, address)
    wrong = sign(key, challenge["message"].replace("Sign in to live.", "Send all my funds."))
    err = await error_of(await wallet_verify(client, address, challenge["nonce"], wrong), 401)
    assert err["code"] == "invalid_signature"


async def test_wallet_signature_by_another_key_is_401(client):
    _, address = new_wallet()
    other_key, _ = new_wallet()
    challenge = await get_nonce(client, address)
    resp = await wallet_verify(client, address, challenge["nonce"], sign(other_key, challenge["message"]))
    err = await error_of(resp, 401)
    assert err["code"] == "invalid_signature"


async def test_wallet_nonce_of_another_address_is_rejected(client):
    key, address = new_wallet()
    other_key, other_address = new_wallet()
    challenge = await get_nonce(client, address)
    resp = await wallet_verify(client, other_address, challenge["nonce"], sign(other_key, challenge["message"]))
    err = await error_of(resp, 401)
    assert err["code"] == "nonce_used"


async def test_wallet_expired_nonce_is_401(client, dsn):
    key, address = new_wallet()
    challenge = await get_nonce(client, address)
    status = await owner_execute(
        dsn, "UPDATE wallet_nonces SET expires_at = now() - interval '1 minute' WHERE nonce = $1", challenge["nonce"])
    assert status == "UPDATE 1"
    resp = await wallet_verify(client, address, challenge["nonce"], sign(key, challenge["message"]))
    err = await error_of(resp, 401)
    assert err["code"] == "nonce_expired"


@pytest.mark.parametrize("address", [
    "0OIl" * 10,                                      # not base58 (0, O, I, l are not in the alphabet)
    base58.b58encode(b"\xff" * 31).decode(),          # valid base58 of the right length, but 31 bytes
    "short",
    "",
])
async def test_wallet_malformed_address_is_4xx(client, address):
    assert address.startswith("0") or len(address) < 32 or len(base58.b58decode(address)) != 32
    resp = await client.post("/api/v1/auth/wallet/nonce", json={"address": address})
    assert 400 <= resp.status < 500
    err = await error_of(resp, resp.status)
    assert err["code"] in ("invalid", "validation_failed")


async def test_wallet_malformed_signature_is_4xx(client):
    key, address = new_wallet()
    challenge = await get_nonce(client, address)
    for bad in ("0" * 64, "2" * 64):  # not base58 / base58 but not 64 bytes
        resp = await wallet_verify(client, address, challenge["nonce"], bad)
        err = await error_of(resp, 400)
        assert err["code"] == "invalid"
    # a malformed signature is rejected before the nonce is burned, so the real one still works
    resp = await wallet_verify(client, address, challenge["nonce"], sign(key, challenge["message"]))
    assert resp.status == 200


# ---------------------------------------------------------------- email one-time codes


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
        owner = await asyncpg.connect(fresh_dsn)
        try:
            pending = await owner.fetch("SELECT id FROM email_outbox WHERE sent_at IS NULL")
            assert len(pending) == 1
            assert await services.outbox.deliver_batch() == 1
            row = await owner.fetchrow("SELECT sent_at, attempts, last_error FROM email_outbox WHERE id = $1",
                                       pending[0]["id"])
        finally:
            await owner.close()
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


async def test_parallel_verifies_of_one_wallet_nonce_sign_in_once(client):
    key, address = new_wallet()
    challenge = await get_nonce(client, address)
    payload = {"address": address, "nonce": challenge["nonce"], "signature": sign(key, challenge["message"])}
    responses = await asyncio.gather(*(wallet_verify(client, **payload) for _ in range(6)))
    assert sorted(r.status for r in responses) == [200] + [401] * 5


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
