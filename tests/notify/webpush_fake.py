"""A fake Web Push service for the tests: a real aiohttp server on loopback that accepts pushes the way a browser's
push service does, and checks them the way the browser would: the VAPID JWT (RFC 8292) is verified with PyJWT
against the server's public key (signature, `aud` = this service's origin, `exp` within 24 h, a `sub`), and the
body is decrypted (RFC 8291, aes128gcm, http_ece) with the browser's private key and auth secret, which the test
made with cryptography (`Browser`). Each browser's endpoint is `<url>/push/<name>`; `answer(name, status)` makes
the service answer that status (410: the subscription is gone), `delay` holds every answer that long."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field

import http_ece
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """A browser's push subscription keys: its P-256 key pair and 16-byte auth secret."""

    name: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))

    def subscription(self, base_url: str) -> dict:
        """What `PushSubscription.toJSON()` gives the web app."""
        return {"endpoint": f"{base_url}/push/{self.name}", "expirationTime": None,
                "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)}}


@dataclass
class Push:
    browser: str
    payload: dict
    headers: dict
    claims: dict


class FakePushService:
    def __init__(self, vapid_public_key: str):
        self.vapid_public_key = vapid_public_key
        self.browsers: dict[str, Browser] = {}
        self.pushes: list[Push] = []  # accepted, decrypted and verified
        self.refused: list[tuple[str, int, str]] = []  # (browser, status, why)
        self.answers: dict[str, list[int]] = {}  # browser -> statuses to answer next, in order (then 201)
        self.delay = 0.0
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    def browser(self, name: str) -> Browser:
        self.browsers[name] = Browser(name)
        return self.browsers[name]

    def answer(self, name: str, *statuses: int) -> None:
        self.answers.setdefault(name, []).extend(statuses)

    def to(self, name: str) -> list[Push]:
        return [p for p in self.pushes if p.browser == name]

    async def start(self) -> "FakePushService":
        app = web.Application()
        app.router.add_post("/push/{name}", self._push)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _refuse(self, name: str, status: int, why: str) -> web.Response:
        self.refused.append((name, status, why))
        return web.Response(status=status, text=why)

    async def _push(self, request: web.Request) -> web.Response:
        self.requests += 1
        name = request.match_info["name"]
        if self.delay:
            await asyncio.sleep(self.delay)
        browser = self.browsers.get(name)
        if browser is None:
            return self._refuse(name, 404, "no such subscription")
        queued = self.answers.get(name)
        if queued:
            status = queued.pop(0)
            return self._refuse(name, status, "told to")
        try:
            claims = self._verify_vapid(request.headers.get("Authorization", ""))
        except (ValueError, jwt.PyJWTError) as exc:
            return self._refuse(name, 401, f"vapid: {exc}")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return self._refuse(name, 400, "not aes128gcm")
        if not request.headers.get("TTL", "").isdigit():
            return self._refuse(name, 400, "no TTL")
        body = await request.read()
        try:
            plain = http_ece.decrypt(body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm")
        except Exception as exc:
            return self._refuse(name, 400, f"cannot decrypt: {exc!r}")
        self.pushes.append(Push(name, json.loads(plain), dict(request.headers), claims))
        return web.Response(status=201)

    def _verify_vapid(self, header: str) -> dict:
        scheme, _, params = header.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"Authorization scheme {scheme!r}, not vapid")
        parts = dict(p.split("=", 1) for p in params.split(","))
        if parts.get("k") != self.vapid_public_key:
            raise ValueError("k is not the server's public key")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(self.vapid_public_key))
        claims = jwt.decode(parts["t"], public, algorithms=["ES256"], audience=self.url,
                            options={"require": ["exp", "aud", "sub"]})
        if claims["exp"] > time.time() + 24 * 3600:
            raise ValueError("exp more than 24 h away")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            raise ValueError("sub is not mailto: or https:")
        return claims
