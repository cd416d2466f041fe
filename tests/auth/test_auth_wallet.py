"""Solana wallet sign-in over real HTTP, with real ed25519 keys: nonce, signature, replay, expiry, malformed
input, and parallel verifies of one nonce. The tests of this module share one migrated database (see
tests/auth/conftest.py)."""
from __future__ import annotations

import asyncio

import base58
import nacl.signing
import pytest

from tests.auth.helpers import ME, auth, error_of, owner_execute


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
    assert err["code"] == "signature_mismatch"


async def test_wallet_signature_by_another_key_is_401(client):
    _, address = new_wallet()
    other_key, _ = new_wallet()
    challenge = await get_nonce(client, address)
    resp = await wallet_verify(client, address, challenge["nonce"], sign(other_key, challenge["message"]))
    err = await error_of(resp, 401)
    assert err["code"] == "signature_mismatch"


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


async def test_parallel_verifies_of_one_wallet_nonce_sign_in_once(client):
    key, address = new_wallet()
    challenge = await get_nonce(client, address)
    payload = {"address": address, "nonce": challenge["nonce"], "signature": sign(key, challenge["message"])}
    responses = await asyncio.gather(*(wallet_verify(client, **payload) for _ in range(6)))
    assert sorted(r.status for r in responses) == [200] + [401] * 5
