"""Web Push (RFC 8030, 8291, 8292): browsers subscribe (`subscribe`: the PushSubscription JSON of
`pushManager.subscribe` with our VAPID public key), and a notification reaches each of their subscriptions as an
encrypted push (aes128gcm) signed with a VAPID JWT.

`WebPush` is the push channel of the notices (`queue`, called in the notification's deliver transaction): it
writes `push.send` jobs, each for up to BATCH subscriptions of one notification whose users' preferences allow
push for the kind. The job (`send`) pushes `{title, url, kind}` to each, at most SEND_CONCURRENCY at once, each
request bounded by PUSH_TIMEOUT_SECONDS, then records what the push services answered in one transaction:
2xx accepted; 404/410 the subscription is gone (deleted); 429, 5xx, a timeout or a connection failure: tried
again (the whole job by the job queue's backoff when nothing else went through, else a new job for just those
after RETRY_FIRST_SECONDS or the service's Retry-After, so an accepted push is not sent twice); any other answer
counts a failure (the subscription is dropped at MAX_FAILURES in a row). Every push of one notification carries
one `Topic` (from its key): a retry replaces a copy the push service still holds instead of adding one."""
from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit

import aiohttp
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from pywebpush import WebPusher

from db import Database
from db import push as push_db
from live.auth.principal import SYSTEM, Principal
from live.config import Settings
from live.errors import DomainError
from live.jobs import Jobs, Permanent, enqueue_many
from live.jobs import enqueue as enqueue_job
from live.logging import get_logger
from live.notify import vapid
from live.notify.kinds import Kind, title_for, url_for

log = get_logger("live.notify.webpush")
KIND = "push.send"
BATCH = 50  # subscriptions per push.send job
SEND_CONCURRENCY = 10  # requests one job has in flight
MAX_FAILURES = 5  # refusals in a row (not 404/410, not retryable) before a subscription is dropped
MAX_ENDPOINT = 1000  # characters of an endpoint URL
MAX_TITLE = 200  # characters of the pushed title
FOLLOW_TTL_SECONDS = 3600  # a follower's alert ("live now", reminder) is not worth delivering later than this
ANSWER_BYTES = 512  # of a push service's answer kept for the log
# push services that fail: ~30 s, 1 min, 2 min, ... at most 30 min apart, 8 runs (~1 h)
RETRY_FIRST_SECONDS = 30.0
RETRY_MAX_SECONDS = 1800.0
MAX_ATTEMPTS = 8
LOOPBACK = ("127.0.0.1", "localhost")


def disabled() -> DomainError:
    return DomainError("push_disabled")


def key_bytes(value: str, size: int) -> bytes:
    """A browser key (base64url) of `size` decoded bytes; ValueError naming what is wrong."""
    try:
        raw = vapid.unb64url(value)
    except ValueError:
        raise ValueError("must be base64url") from None
    if len(raw) != size:
        raise ValueError(f"must decode to {size} bytes, not {len(raw)}")
    if size == 65:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError("is not a P-256 public key (uncompressed point)") from None
    return raw


def endpoint_problem(endpoint: str, settings: Settings) -> str | None:
    """Why a push endpoint is refused, or None. https to a host of PUSH_ENDPOINT_HOSTS (a name matches itself and
    its subdomains; `*` any host); outside production also http, and loopback hosts (a local push service)."""
    if len(endpoint) > MAX_ENDPOINT:
        return f"must be at most {MAX_ENDPOINT} characters"
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "must be a URL"
    production = settings.live_env == "production"
    if parts.scheme != "https" and not (parts.scheme == "http" and not production):
        return "must be an https URL" if production else "must be an https (or, outside production, http) URL"
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        return "must be a URL with a host, without credentials or fragment"
    if ":" in host:
        return "must name its host, not an IPv6 address"
    if not production and host in LOOPBACK:
        return None
    hosts = settings.push_endpoint_hosts
    if "*" in hosts or any(host == h or host.endswith("." + h) for h in hosts):
        return None
    return "must be a push service of PUSH_ENDPOINT_HOSTS"


@dataclass
class _Result:
    sub_id: int
    outcome: str  # ok | gone | retry | refused
    status: int | None = None
    retry_after: float | None = None
    error: str = ""


class WebPush:
    """The push channel, the `push.send` jobs and the subscriptions' service."""

    def __init__(self, settings: Settings, db: Database, jobs: Jobs):
        self._settings, self._db = settings, db
        self.vapid = vapid.load(settings)  # None: Web Push is off (production without keys)
        self._session: aiohttp.ClientSession | None = None
        self.outcomes: Counter[str] = Counter()  # pushes of this process by outcome (/metrics: live_push_sends)
        jobs.register(KIND, self.send, max_attempts=MAX_ATTEMPTS, first_delay=RETRY_FIRST_SECONDS,
                      max_delay=RETRY_MAX_SECONDS)

    @property
    def enabled(self) -> bool:
        return self.vapid is not None

    def public_key(self) -> str:
        if self.vapid is None:
            raise disabled()
        return self.vapid.public_key

    # ---- subscriptions (REST) ----

    async def subscribe(self, principal: Principal, endpoint: str, p256dh: str, auth: str) -> dict:
        """Keep the caller's browser subscription (keys checked by the request model); at most
        PUSH_MAX_SUBSCRIPTIONS per user, the oldest dropped."""
        if self.vapid is None:
            raise disabled()
        problem = endpoint_problem(endpoint, self._settings)
        if problem:
            raise DomainError("validation_failed", f"endpoint {problem}",
                              details=[{"field": "endpoint", "message": problem}])
        async with self._db.tx(SYSTEM) as conn:  # the endpoint may move from another user's row
            row = await push_db.subscribe(conn, principal.user_id, endpoint, p256dh.rstrip("="), auth.rstrip("="),
                                          self._settings.push_max_subscriptions)
        return {"id": row["id"], "endpoint": row["endpoint"], "created_at": row["created_at"]}

    async def unsubscribe(self, principal: Principal, endpoint: str) -> None:
        if self.vapid is None:
            raise disabled()
        async with self._db.tx(principal) as conn:
            if not await push_db.unsubscribe(conn, principal.user_id, endpoint):
                raise DomainError("not_found", "no push subscription of yours has this endpoint")

    # ---- the channel ----

    async def queue(self, conn, kind: Kind, user_ids: Sequence[str], data: dict, key: str) -> int:
        """In the deliver transaction: `push.send` jobs for the subscriptions of `user_ids` that may get `kind`.
        Returns how many subscriptions will get the push."""
        if self.vapid is None or not user_ids:
            return 0
        ids = await push_db.for_users(conn, kind.name, list(user_ids), transactional=kind.transactional)
        if not ids:
            return 0
        message = {"title": title_for(kind.name, data)[:MAX_TITLE], "url": url_for(kind.name, data),
                   "kind": kind.name}
        await enqueue_many(conn, KIND, [{"ids": ids[i:i + BATCH], "message": message, "key": key}
                                        for i in range(0, len(ids), BATCH)])
        return len(ids)

    # ---- the job ----

    async def send(self, payload: dict) -> None:
        try:
            ids = [int(i) for i in payload["ids"]][:BATCH]
            message, key = dict(payload["message"]), str(payload["key"])
            kind = str(message["kind"])
        except (KeyError, TypeError, ValueError):
            raise Permanent(f"not a push.send payload: {payload!r}"[:300]) from None
        if self.vapid is None:
            log.warning("push_off_job_dropped", subscriptions=len(ids), key=key)
            return
        async with self._db.tx(SYSTEM) as conn:
            subs = await push_db.get_many(conn, ids)
        if not subs:
            return
        body = orjson.dumps({"title": message.get("title"), "url": message.get("url"), "kind": kind})
        headers = {"TTL": str(self._ttl(kind)), "Urgency": "high" if kind.startswith("follow.") else "normal",
                   "Topic": vapid.b64url(hashlib.sha256(key.encode()).digest())[:32]}
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one(sub) -> _Result:
            async with gate:
                return await self._push(sub, body, headers)

        results = await asyncio.gather(*(one(s) for s in subs))
        self.outcomes.update(r.outcome for r in results)
        by = {o: [r for r in results if r.outcome == o] for o in ("ok", "gone", "retry", "refused")}
        for r in by["refused"] + by["retry"]:
            log.info("push_failed", subscription=r.sub_id, outcome=r.outcome, status=r.status, error=r.error)
        if by["retry"] and len(by["retry"]) == len(results):
            raise RuntimeError(f"every push of the job failed: {by['retry'][0].error}"[:500])  # the queue retries
        async with self._db.tx(SYSTEM) as conn:
            dropped = await push_db.record(conn, ok=[r.sub_id for r in by["ok"]], gone=[r.sub_id for r in by["gone"]],
                                           refused=[r.sub_id for r in by["refused"]], max_failures=MAX_FAILURES)
            if by["retry"]:  # only those, later: the accepted ones are not pushed again
                delay = max([RETRY_FIRST_SECONDS] + [min(r.retry_after or 0, RETRY_MAX_SECONDS) for r in by["retry"]])
                await enqueue_job(conn, KIND, {**payload, "ids": [r.sub_id for r in by["retry"]]}, delay=delay)
        if dropped:
            log.info("push_subscriptions_dropped", count=dropped)

    def _ttl(self, kind: str) -> int:
        ttl = self._settings.push_ttl_seconds
        return min(ttl, FOLLOW_TTL_SECONDS) if kind.startswith("follow.") else ttl

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, limit_per_host=50),
                timeout=aiohttp.ClientTimeout(total=self._settings.push_timeout_seconds))
        return self._session

    async def _push(self, sub, body: bytes, headers: dict) -> _Result:
        assert self.vapid is not None
        endpoint = sub["endpoint"]
        if endpoint_problem(endpoint, self._settings):  # the settings changed since it was stored
            return _Result(sub["id"], "gone", error="endpoint no longer allowed")
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        try:
            encrypted = WebPusher({"endpoint": endpoint, "keys": {"p256dh": sub["p256dh"], "auth": sub["auth"]}}
                                  ).encode(body, "aes128gcm")["body"]
        except Exception as exc:  # keys that cannot be used (stored before a check): drop after MAX_FAILURES
            return _Result(sub["id"], "refused", error=f"encrypt: {exc!r}"[:300])
        auth = self.vapid.headers(origin)  # a failure here is ours, not the subscription's: the job fails
        try:
            async with self._http().post(endpoint, data=encrypted, allow_redirects=False, headers={
                    **headers, **auth, "Content-Encoding": "aes128gcm",
                    "Content-Type": "application/octet-stream"}) as resp:
                answer = (await resp.content.read(ANSWER_BYTES)).decode(errors="replace")
                status, retry_after = resp.status, _seconds(resp.headers.get("Retry-After"))
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            return _Result(sub["id"], "retry", error=f"{type(exc).__name__}: {exc}"[:300])
        if 200 <= status < 300:
            return _Result(sub["id"], "ok", status)
        if status in (404, 410):
            return _Result(sub["id"], "gone", status)
        outcome = "retry" if status == 429 or status >= 500 else "refused"
        return _Result(sub["id"], outcome, status, retry_after, f"{status}: {answer}"[:300])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
