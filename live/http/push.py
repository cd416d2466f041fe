"""Web Push REST: the server's VAPID public key (for `pushManager.subscribe`), and the caller's browser
subscriptions (docs/notifications.md "Web Push")."""
from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from live.http.api import API, Api, Call
from live.notify.webpush import MAX_ENDPOINT, key_bytes

api = Api()


class PublicKey(BaseModel):
    public_key: str = Field(description="base64url P-256 public key: pushManager.subscribe's applicationServerKey")


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="ignore")
    p256dh: str = Field(min_length=1, max_length=100, description="base64url, 65 bytes: the browser's P-256 key")
    auth: str = Field(min_length=1, max_length=50, description="base64url, 16 bytes: the browser's auth secret")

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, v: str) -> str:
        key_bytes(v, 65)
        return v

    @field_validator("auth")
    @classmethod
    def _auth(cls, v: str) -> str:
        key_bytes(v, 16)
        return v


class SubscriptionIn(BaseModel):
    """The browser's `PushSubscription.toJSON()` (other fields are ignored)."""

    model_config = ConfigDict(extra="ignore")
    endpoint: str = Field(min_length=1, max_length=MAX_ENDPOINT,
                          description="the push service URL (https; http too outside production)")
    expirationTime: float | None = None  # noqa: N815 (the browser's name)
    keys: SubscriptionKeys


class SubscriptionOut(BaseModel):
    id: int
    endpoint: str
    created_at: datetime


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: str = Field(min_length=1, max_length=MAX_ENDPOINT)


@api.route("GET", f"{API}/push/key", summary="The VAPID public key browsers subscribe with", tag="notifications",
           response=PublicKey, errors=(404,))
async def push_key(call: Call):
    return {"public_key": call.services.push.public_key()}


@api.route("POST", f"{API}/me/push-subscriptions", summary="Keep this browser's push subscription",
           tag="notifications", auth="user", body=SubscriptionIn, response=SubscriptionOut, status=201,
           errors=(404,))
async def add_push_subscription(call: Call):
    body = call.body
    return await call.services.push.subscribe(call.principal, body.endpoint, body.keys.p256dh, body.keys.auth)


@api.route("DELETE", f"{API}/me/push-subscriptions", summary="Forget a push subscription of the caller (by endpoint)",
           tag="notifications", auth="user", body=EndpointIn, status=204, errors=(404,))
async def delete_push_subscription(call: Call):
    await call.services.push.unsubscribe(call.principal, call.body.endpoint)
    return web.Response(status=204)
