"""Webhook jobs never hold a pooled connection while the provider confirms an event or the order side applies it:
more concurrent `webhook.process` jobs than the pool has connections all reach the provider at once and all finish
(the old job held the event's row lock on one connection through confirm and apply, whose own transaction then
waited for a second connection: N >= pool size jobs hung for good)."""
from __future__ import annotations

import asyncio

from db import Database
from db import webhooks as webhooks_db
from live.auth.principal import SYSTEM
from live.commerce.payments.base import PaymentEvent
from live.commerce.payments.inbox import ProcessingFailed, WebhookInbox
from live.errors import DomainError
from live.jobs import Jobs
from tests.helpers import owner_connection, until

POOL = 3
EVENTS = 8


class GatedProvider:
    """A provider whose confirm waits (like Paystack's verify over the network) until the test opens the gate."""

    def __init__(self):
        self.gate = asyncio.Event()
        self.confirming = 0
        self.most_at_once = 0

    async def confirm(self, event: PaymentEvent) -> PaymentEvent:
        self.confirming += 1
        self.most_at_once = max(self.most_at_once, self.confirming)
        try:
            await self.gate.wait()
        finally:
            self.confirming -= 1
        return event


async def test_more_webhook_jobs_than_pool_connections_all_confirm_at_once_and_finish(dsn):
    db = await Database.connect(dsn, min_size=1, max_size=POOL)
    provider = GatedProvider()
    applied: list[str] = []

    async def apply(event: PaymentEvent) -> str:  # the order side: its own transaction on the same pool
        async with db.tx(SYSTEM) as conn:
            await conn.execute("SELECT pg_sleep(0.01)")
        applied.append(event.event_key)
        return "applied"

    inbox = WebhookInbox(db)
    jobs = Jobs(dsn, heartbeat_seconds=5, concurrency=EVENTS + 2)
    inbox.register(jobs, lambda name: provider, apply)
    keys = [f"evt_{i}" for i in range(EVENTS)]
    for key in keys:
        receipt = await inbox.receive(PaymentEvent(
            provider="sandbox", event_key=key, event_type="payment.succeeded", kind="succeeded", provider_ref=key,
            amount_minor=100, currency="USD", payload={"id": key}))
        assert receipt.body.get("queued") is True
    await jobs.start()
    try:
        # every job is in the provider call at once: none of them holds one of the 3 connections meanwhile
        await until(lambda: provider.confirming == EVENTS, timeout=15, what=f"{EVENTS} confirms at once")
        provider.gate.set()

        async with owner_connection(dsn) as conn:
            async def all_processed() -> bool:
                return await conn.fetchval(
                    "SELECT count(*) FROM webhook_events WHERE processed_at IS NOT NULL AND result = 'applied'"
                ) == EVENTS
            await until(all_processed, timeout=15, what="every event processed")
            async def no_job_left() -> bool:  # each job finished (not retried): its row leaves the queue
                return await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE entrypoint = 'webhook.process'") == 0
            await until(no_job_left, timeout=15, what="no webhook job left")
            async with db.tx(SYSTEM) as c:
                row = await webhooks_db.get(c, "sandbox", keys[0])
    finally:
        provider.gate.set()
        await jobs.stop()
        await db.close()
    assert sorted(applied) == sorted(keys) and provider.most_at_once == EVENTS
    assert row["error"] is None and row["result"] == "applied"


async def test_a_failed_apply_is_kept_unprocessed_and_a_final_domain_error_is_processed(dsn):
    """The outcome is written by its own short transaction: a retryable failure keeps the event open with the
    error, a client-side DomainError closes it with the error (no row lock held across the calls)."""
    db = await Database.connect(dsn, min_size=1, max_size=2)
    outcomes = {"evt_boom": RuntimeError("provider away"), "evt_gone": DomainError("not_found", "no such payment")}

    class Trusting:
        async def confirm(self, event):
            return event

    async def apply(event):
        raise outcomes[event.event_key]

    inbox = WebhookInbox(db)
    inbox.register(Jobs(dsn), lambda name: Trusting(), apply)
    ids = {}
    for key in outcomes:
        receipt = await inbox.receive(PaymentEvent(
            provider="sandbox", event_key=key, event_type="payment.succeeded", kind="succeeded", provider_ref=key,
            amount_minor=100, currency="USD", payload={"id": key}))
        ids[key] = receipt.body["event_id"]
    fields = {"provider": "sandbox", "event_type": "payment.succeeded", "kind": "succeeded", "amount_minor": 100,
              "currency": "USD", "payment_id": None, "refund_id": None, "refund_ref": None}
    try:
        failed = None
        try:
            await inbox.process({"event_id": ids["evt_boom"], "event": {**fields, "event_key": "evt_boom",
                                                                          "provider_ref": "evt_boom"}})
        except ProcessingFailed as exc:
            failed = str(exc)
        await inbox.process({"event_id": ids["evt_gone"], "event": {**fields, "event_key": "evt_gone",
                                                                      "provider_ref": "evt_gone"}})
        async with db.tx(SYSTEM) as conn:
            boom = await webhooks_db.get(conn, "sandbox", "evt_boom")
            gone = await webhooks_db.get(conn, "sandbox", "evt_gone")
    finally:
        await db.close()
    assert failed == "RuntimeError: provider away"
    assert boom["processed_at"] is None and boom["error"] == "RuntimeError: provider away"
    assert gone["processed_at"] is not None and gone["error"] == "not_found: no such payment"
