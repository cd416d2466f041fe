"""Across workers (`serve --workers N`, or several machines on one REDIS_URL): which worker holds a stream's
publisher, and a forward of WHEP and DELETE requests to it.

The worker whose WHIP request wins a stream claims it in Redis (`live:media:pub:<stream>` = "<tag> <url>", SET NX
with a TTL of CLAIM_TTL seconds, refreshed every REFRESH seconds while it publishes, deleted when the session
ends; a dead worker's claim expires): one publisher per stream across workers (409 `conflict` to a second). Each
worker also registers `live:media:worker:<tag>` = its internal URL, refreshed the same way. Session ids start
with their worker's tag (`<tag>.<random>`), so a DELETE reaching another worker finds the owner.

The internal URL is a small HTTP listener of its own on MEDIA_FORWARD_HOST (default 127.0.0.1; set a private
address the other machines reach when they share Redis) and an ephemeral port. It serves only the forwarded
requests, each authenticated by `X-Live-Media-Key`, a key derived from JWT_SECRET (which every worker shares);
anything else is 404, a wrong key 401. A forwarded WHEP offer is answered by the owner, whose SDP answer carries
the owner's ICE candidates: the media flows between the viewer and the owner, the forwarding worker only relays
the HTTP exchange (FORWARD_TIMEOUT seconds at most). An owner that cannot be reached: 503 `unavailable`.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
from typing import TYPE_CHECKING

import aiohttp
import orjson
from aiohttp import web

from live.errors import Code, DomainError
from live.logging import get_logger
from live.redis.link import FAILURES, RedisLink

if TYPE_CHECKING:
    from live.media.embedded.server import EmbeddedMedia

log = get_logger("live.media")

CLAIM_TTL = 15  # seconds a claim or a worker's address outlives its last refresh
REFRESH = 5.0  # seconds between refreshes
FORWARD_TIMEOUT = 10.0  # seconds for the owner to answer a forwarded request
MAX_FORWARD_BYTES = 80 * 1024  # a forwarded body (an SDP offer is at most 64 KiB)
KEY_HEADER, USER_HEADER, SESSION_HEADER = "X-Live-Media-Key", "X-Live-Media-User", "X-Live-Media-Session"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def forward_key(jwt_secret: str) -> str:
    return hmac.new(jwt_secret.encode(), b"live media forward", hashlib.sha256).hexdigest()


class MediaDirectory:
    def __init__(self, link: RedisLink, jwt_secret: str, tag: str, host: str = "127.0.0.1"):
        """`tag`: the worker's, which starts its media session ids (EmbeddedMedia.tag)."""
        self.link, self.host, self.tag = link, host, tag
        self.url: str | None = None  # the internal listener's, once started
        self._key = forward_key(jwt_secret)
        self._claims: set[str] = set()  # streams this worker publishes
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None
        self.media: EmbeddedMedia | None = None

    def _value(self) -> str:
        return f"{self.tag} {self.url}"

    # ---- claims ----

    async def claim(self, stream_id: str) -> bool:
        """Claim the stream's publisher for this worker; False when another worker holds it. Redis away: the
        claim is skipped (this worker publishes, as with one worker)."""
        try:
            ok = await self.link.client.set(f"live:media:pub:{stream_id}", self._value(), nx=True, ex=CLAIM_TTL)
        except FAILURES as exc:
            self.link.failed(exc)
            ok = True
        if ok:
            self._claims.add(stream_id)
        return bool(ok)

    async def release(self, stream_id: str) -> None:
        self._claims.discard(stream_id)
        try:
            await self.link.client.eval(_RELEASE, 1, f"live:media:pub:{stream_id}", self._value())
        except FAILURES as exc:
            self.link.failed(exc)

    async def owner(self, stream_id: str) -> tuple[str, str] | None:
        """(tag, internal URL) of the worker publishing the stream, if one does."""
        try:
            raw = await self.link.client.get(f"live:media:pub:{stream_id}")
        except FAILURES as exc:
            self.link.failed(exc)
            return None
        if not raw:
            return None
        tag, _, url = raw.decode().partition(" ")
        return tag, url

    async def worker_url(self, tag: str) -> str | None:
        try:
            raw = await self.link.client.get(f"live:media:worker:{tag}")
        except FAILURES as exc:
            self.link.failed(exc)
            return None
        return raw.decode() if raw else None

    async def _refresh(self) -> None:
        pipe = self.link.client.pipeline(transaction=False)
        pipe.set(f"live:media:worker:{self.tag}", self.url, ex=CLAIM_TTL)
        for stream_id in self._claims:
            pipe.set(f"live:media:pub:{stream_id}", self._value(), ex=CLAIM_TTL)
        await pipe.execute()

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self._refresh()
            except FAILURES as exc:
                self.link.failed(exc)
            except Exception:
                log.exception("media_directory_refresh_failed")
            await asyncio.sleep(REFRESH)

    # ---- forwarding: the client side ----

    async def forward(self, url: str, method: str, path: str, body: str = "",
                      user_id: str | None = None) -> tuple[int, str, dict]:
        """Send a request to another worker's internal listener: (status, text, headers). Its JSON error comes
        back as the DomainError it was; an owner that cannot be reached is 503 `unavailable`."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT))
        headers = {KEY_HEADER: self._key, "Content-Type": "application/sdp"}
        if user_id is not None:
            headers[USER_HEADER] = user_id
        try:
            async with self._http.request(method, url + path, data=body.encode(), headers=headers) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    raise _remote_error(resp.status, text)
                return resp.status, text, dict(resp.headers)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("media_forward_failed", url=url, error=str(exc))
            raise DomainError("unavailable", "the worker holding this stream's media cannot be reached") from None

    # ---- forwarding: the owner's internal listener ----

    async def start(self, media: EmbeddedMedia) -> None:
        self.media = media
        app = web.Application(client_max_size=MAX_FORWARD_BYTES)
        app.router.add_post("/media/{stream}/whep", self._play)
        app.router.add_delete("/media/{stream}/{role}/{session}", self._end)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))  # an ephemeral port: each worker its own, whatever --worker-ports says
        await web.SockSite(self._runner, sock).start()
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        try:
            await self._refresh()
        except FAILURES as exc:
            self.link.failed(exc)
        self._task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for stream_id in list(self._claims):
            await self.release(stream_id)
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorized(self, request: web.Request) -> None:
        if not hmac.compare_digest(request.headers.get(KEY_HEADER, ""), self._key):
            raise DomainError("unauthorized", "not a forwarded media request")

    async def _play(self, request: web.Request) -> web.Response:
        try:
            self._authorized(request)
            offer = await request.text()
            session_id, answer = await self.media.play_here(request.match_info["stream"], offer,
                                                            request.headers.get(USER_HEADER))
        except DomainError as exc:
            return web.json_response({"error": exc.body()}, status=exc.status)
        return web.Response(text=answer, status=201, content_type="application/sdp",
                            headers={SESSION_HEADER: session_id})

    async def _end(self, request: web.Request) -> web.Response:
        try:
            self._authorized(request)
            info = request.match_info
            session = self.media.session(info["session"], info["stream"], info["role"])
            await self.media.end(session.id)
        except DomainError as exc:
            return web.json_response({"error": exc.body()}, status=exc.status)
        return web.Response(status=204)


def _remote_error(status: int, text: str) -> DomainError:
    """The owner's JSON error as a DomainError (its code is one of ours: the same registry on every worker)."""
    try:
        body = orjson.loads(text)["error"]
        if body["code"] in Code.__members__.values():
            return DomainError(body["code"], body.get("message"))
    except (ValueError, KeyError, TypeError):
        pass
    log.warning("media_forward_bad_answer", status=status, body=text[:200])
    return DomainError("unavailable", "the worker holding this stream's media answered unexpectedly")
