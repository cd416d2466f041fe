"""The webhook inbox: every verified provider event is stored once and processed once.

Flow for one delivery (after the provider verified the signature and normalised the event):
1. In a SYSTEM transaction, INSERT into webhook_events ON CONFLICT DO NOTHING, then lock the row. A concurrent
   delivery of the same event waits on that lock, so only one of them processes it.
2. Already processed -> `duplicate`, nothing else happens.
3. Kind `ignored` -> marked processed without calling the order side.
4. Else `provider.confirm(event)` then `apply(event)` (commerce's `apply_payment_event`, idempotent and
   monotonic). Success -> processed. A DomainError below 500 (e.g. unknown payment) is final: processed, with the
   error kept. Anything else -> left unprocessed with the error, and the route answers 500 so the provider
   delivers it again.
"""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from db import webhooks as webhooks_db
from live.auth.principal import SYSTEM
from live.commerce.payments.base import InvalidPayload, PaymentEvent, PaymentProvider, storable
from live.errors import DomainError
from live.logging import get_logger

log = get_logger("live.payments")
Apply = Callable[[PaymentEvent], Awaitable[Any]]
MAX_STORED_REJECT = 64 * 1024  # of a rejected body that is not a storable JSON object, this much text is kept


@dataclass(frozen=True, slots=True)
class Receipt:
    status: int  # HTTP status for the provider: 200 done (or duplicate/ignored), 500 retry later
    body: dict


class WebhookInbox:
    def __init__(self, db, *, concurrency: int = 4):
        self.db = db
        # processing holds two pooled connections (the event row lock and commerce's own transaction);
        # bounding concurrent processing keeps a burst of webhooks from exhausting the pool
        self._slots = asyncio.Semaphore(concurrency)

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

    async def receive(self, provider: PaymentProvider, event: PaymentEvent, apply: Apply) -> Receipt:
        async with self._slots:
            async with self.db.tx(SYSTEM) as conn:
                row = await webhooks_db.claim(conn, event.provider, event.event_key, event.event_type, event.payload)
                if row["processed_at"] is not None:
                    log.info("webhook_duplicate", provider=event.provider, event_key=event.event_key)
                    return Receipt(200, {"received": True, "duplicate": True})
                if event.kind == "ignored":
                    await webhooks_db.mark_processed(conn, row["id"])
                    return Receipt(200, {"received": True, "ignored": True})
                try:
                    result = await apply(await provider.confirm(event))
                except DomainError as exc:
                    error = f"{exc.code}: {exc.message}"
                    if exc.status < 500:
                        await webhooks_db.mark_processed(conn, row["id"], error)
                        log.warning("webhook_rejected", provider=event.provider, event_key=event.event_key,
                                    error=error)
                        return Receipt(200, {"received": True, "error": exc.code})
                except Exception as exc:  # unexpected: keep it for the provider's retry
                    error = f"{type(exc).__name__}: {exc}"
                    log.exception("webhook_failed", provider=event.provider, event_key=event.event_key)
                else:
                    await webhooks_db.mark_processed(conn, row["id"])
                    log.info("webhook_processed", provider=event.provider, event_key=event.event_key,
                             kind=event.kind, result=str(result))
                    return Receipt(200, {"received": True, "result": None if result is None else str(result)})
                await webhooks_db.mark_failed(conn, row["id"], error[:2000])
        failed = DomainError("processing_failed")  # the event is stored but could not be processed; retry later
        return Receipt(failed.status, {"error": failed.body()})
