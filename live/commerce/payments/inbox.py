"""The webhook inbox: every verified provider event is stored once and processed once, by a job.

Flow for one delivery (after the provider verified the signature and normalised the event):
1. `receive`, in a SYSTEM transaction: INSERT into webhook_events ON CONFLICT DO NOTHING, then lock the row (a
   concurrent delivery of the same event waits on that lock). Already processed -> `duplicate`. Kind `ignored` ->
   marked processed without calling the order side. Else its `webhook.process` job is enqueued (key
   `webhook:<row id>`: one queued or running job per event; a delivery that finds one queued -> `duplicate`, nothing
   enqueued) in the same transaction, and the route answers 200 at once.
2. The job (`process`) reads the row in a short transaction and skips it if processed; then, with no connection
   held (no transaction spans a network call or the order side's own transaction, so jobs beyond the pool's size
   cannot hang it), `provider.confirm(event)` (Paystack: its verify API) and `apply(event)` (commerce's
   `apply_payment_event`, in its own transaction); then a second short transaction writes the outcome. No row lock
   is needed: two runs of one event at once are excluded by the job key, and a rerun (a worker that died after the
   apply) is harmless because the apply is idempotent and monotonic. Success -> processed, with what the
   order side made of it (`result`). A DomainError below 500 (e.g. unknown payment) is final: processed, with the
   error kept. Anything else -> left unprocessed with the error, and the job is retried (RETRY_* below); after the
   last attempt it is held dead for an admin (GET /api/v1/admin/jobs?state=dead) and a new delivery of the event
   by the provider enqueues a new job.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from db import webhooks as webhooks_db
from live.auth.principal import SYSTEM
from live.commerce.payments.base import InvalidPayload, PaymentEvent, PaymentProvider, storable
from live.errors import DomainError
from live.jobs import Jobs, Permanent, enqueue
from live.logging import get_logger

log = get_logger("live.payments")
Apply = Callable[[PaymentEvent], Awaitable[Any]]
MAX_STORED_REJECT = 64 * 1024  # of a rejected body that is not a storable JSON object, this much text is kept
KIND = "webhook.process"
# a provider or our database that is away: tried again after ~5 s, 10 s, 20 s, ... at most 30 min apart, 10 runs
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 1800.0
MAX_ATTEMPTS = 10
_EVENT_FIELDS = ("provider", "event_key", "event_type", "kind", "provider_ref", "amount_minor", "currency",
                 "payment_id", "refund_id", "refund_ref")


@dataclass(frozen=True, slots=True)
class Receipt:
    status: int  # HTTP status for the provider: 200 (stored and queued, duplicate or ignored)
    body: dict


class ProcessingFailed(Exception):
    """A stored event could not be processed yet (the message says why): its job is retried."""


class WebhookInbox:
    def __init__(self, db):
        self.db = db
        self._provider: Callable[[str], PaymentProvider] | None = None
        self._apply: Apply | None = None

    def register(self, jobs: Jobs, provider: Callable[[str], PaymentProvider], apply: Apply) -> None:
        """The `webhook.process` jobs: `provider(name)` confirms an event, `apply` (the order side) applies it."""
        self._provider, self._apply = provider, apply
        jobs.register(KIND, self.process, max_attempts=MAX_ATTEMPTS, first_delay=RETRY_FIRST_SECONDS,
                      max_delay=RETRY_MAX_SECONDS)

    async def reject(self, provider: str, body: bytes, exc: InvalidPayload) -> None:
        """Store an event refused for its content once, as rejected (never applied). Its key is the event's own id
        when it could be read, else a digest of the body (so the provider's retries of it are one row)."""
        key = exc.event_key or "invalid:" + hashlib.sha256(body).hexdigest()
        payload = exc.payload
        if not storable(payload):
            payload = {"rejected_body": body[:MAX_STORED_REJECT].decode("utf-8", "replace").replace("\x00", "\ufffd")}
        async with self.db.tx(SYSTEM) as conn:
            await webhooks_db.reject(conn, provider, key, exc.event_type, payload,
                                     f"{webhooks_db.REJECTED}: {exc.message}"[:2000])
        log.warning("webhook_invalid_payload", provider=provider, event_key=key, error=exc.message)

    async def receive(self, event: PaymentEvent) -> Receipt:
        """Store a verified event once and enqueue its processing (see the module's docstring)."""
        async with self.db.tx(SYSTEM) as conn:
            row = await webhooks_db.claim(conn, event.provider, event.event_key, event.event_type, event.payload)
            if row["processed_at"] is not None:
                log.info("webhook_duplicate", provider=event.provider, event_key=event.event_key)
                return Receipt(200, {"received": True, "duplicate": True})
            if event.kind == "ignored":
                await webhooks_db.mark_processed(conn, row["id"], result="ignored")
                return Receipt(200, {"received": True, "ignored": True})
            fields = {f: getattr(event, f) for f in _EVENT_FIELDS}
            job = await enqueue(conn, KIND, {"event_id": row["id"], "event": fields}, key=f"webhook:{row['id']}")
        if job is None:  # its job is queued or running: this delivery adds nothing
            log.info("webhook_duplicate", provider=event.provider, event_key=event.event_key, queued=True)
            return Receipt(200, {"received": True, "duplicate": True})
        return Receipt(200, {"received": True, "queued": True, "event_id": row["id"]})

    async def process(self, payload: dict) -> None:
        """The `webhook.process` job of one stored event: safe to run twice (a processed event is skipped)."""
        assert self._provider is not None and self._apply is not None, "WebhookInbox.register was not called"
        try:
            event_id, fields = int(payload["event_id"]), {f: payload["event"][f] for f in _EVENT_FIELDS}
        except (KeyError, TypeError, ValueError):
            raise Permanent(f"not a webhook.process payload: {payload!r}"[:300]) from None
        async with self.db.tx(SYSTEM) as conn:  # short: read the event, nothing held while it is applied
            row = await webhooks_db.read(conn, event_id)
        if row is None or row["processed_at"] is not None:
            return
        event = PaymentEvent(**fields, payload=row["payload"])
        try:  # no connection and no transaction held here: confirm may call the provider, apply opens its own
            result = await self._apply(await self._provider(event.provider).confirm(event))
        except DomainError as exc:
            error, final = f"{exc.code}: {exc.message}", exc.status < 500
        except Exception as exc:  # unexpected: kept with the event, and the job tries again
            error, final = f"{type(exc).__name__}: {exc}", False
        else:
            async with self.db.tx(SYSTEM) as conn:
                await webhooks_db.mark_processed(conn, event_id, result=None if result is None else str(result)[:200])
            log.info("webhook_processed", provider=event.provider, event_key=event.event_key, kind=event.kind,
                     result=str(result))
            return
        async with self.db.tx(SYSTEM) as conn:
            if final:
                await webhooks_db.mark_processed(conn, event_id, error[:2000])
            else:
                await webhooks_db.mark_failed(conn, event_id, error[:2000])
        if final:
            log.warning("webhook_rejected", provider=event.provider, event_key=event.event_key, error=error)
            return
        log.warning("webhook_failed", provider=event.provider, event_key=event.event_key, error=error)
        raise ProcessingFailed(error[:2000])
