"""Sign-in (email code, Solana wallet) and the caller's own profile."""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from live.http.api import API, Api, Call
from live.http.limits import client_address

api = Api()
EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EmailStart(Strict):
    email: str = Field(pattern=EMAIL, max_length=254)


class EmailVerify(Strict):
    email: str = Field(pattern=EMAIL, max_length=254)
    code: str = Field(pattern=r"^\d{6}$")


class WalletNonce(Strict):
    address: str = Field(min_length=32, max_length=44, description="base58 Solana public key")


class WalletVerify(Strict):
    address: str = Field(min_length=32, max_length=44)
    nonce: str = Field(min_length=8, max_length=64)
    signature: str = Field(min_length=64, max_length=100, description="base58 ed25519 signature of the message")


class User(BaseModel):
    id: str
    name: str
    role: str
    email: str | None = None
    wallet_address: str | None = None
    avatar_url: str | None = None


class Session(BaseModel):
    token: str
    user: User


class NonceOut(BaseModel):
    nonce: str
    message: str
    expires_at: str


class ProfilePatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=80)
    avatar_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")


def user_out(row) -> dict:
    return {k: row[k] for k in ("id", "name", "role", "email", "wallet_address", "avatar_url")}


@api.route("POST", f"{API}/auth/email/start", summary="Send a one-time sign-in code by email", tag="auth",
           body=EmailStart, status=202, errors=(429,))
async def email_start(call: Call):
    await call.services.email_codes.start(call.body.email, client_address(call.request))
    return {"sent": True}


@api.route("POST", f"{API}/auth/email/verify", summary="Exchange an email code for a token", tag="auth",
           body=EmailVerify, response=Session, errors=(401, 403, 429))
async def email_verify(call: Call):
    user = await call.services.email_codes.verify(call.body.email, call.body.code, client_address(call.request))
    return {"token": call.services.token_for(user), "user": user_out(user)}


@api.route("POST", f"{API}/auth/wallet/nonce", summary="Get a message to sign with a Solana wallet", tag="auth",
           body=WalletNonce, response=NonceOut, errors=(429,))
async def wallet_nonce(call: Call):
    return await call.services.wallet.nonce(call.body.address)


@api.route("POST", f"{API}/auth/wallet/verify", summary="Exchange a signed nonce for a token", tag="auth",
           body=WalletVerify, response=Session, errors=(401, 403, 429))
async def wallet_verify(call: Call):
    user = await call.services.wallet.verify(call.body.address, call.body.nonce, call.body.signature,
                                             client_address(call.request))
    return {"token": call.services.token_for(user), "user": user_out(user)}


@api.route("POST", f"{API}/auth/sign-out", summary="Sign out everywhere: every token issued so far stops working",
           tag="auth", auth="user", status=204)
async def sign_out(call: Call):
    await call.services.users.sign_out(call.principal)
    return web.Response(status=204)


@api.route("GET", f"{API}/me", summary="The caller's profile", tag="account", auth="user", response=User)
async def get_me(call: Call):
    return user_out(await call.services.users.profile(call.principal))


@api.route("PATCH", f"{API}/me", summary="Update the caller's name or avatar", tag="account", auth="user",
           body=ProfilePatch, response=User)
async def patch_me(call: Call):
    fields = call.body.model_dump(exclude_unset=True, exclude_none=True)
    return user_out(await call.services.users.update_profile(call.principal, fields))
