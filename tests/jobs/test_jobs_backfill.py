"""Upgrading strands nothing: a database migrated up to 0021 holding what the old refund sweeper and outbox loop
left (a refund `requested` awaiting its retry, unsent mails with attempts left) gets, from migration 0022, the same
`refund.send` / `email.send` jobs the code enqueues (payload bytes, dedupe key), and the app's jobs then send them;
rows that are done, accepted, given up on, or already have a job get none."""
from __future__ import annotations

import shutil
import uuid

import orjson

from db.migrate import MIGRATIONS_DIR, migrate
from tests.commerce.harness import make_client
from tests.helpers import owner_connection, until


async def old_rows(dsn: str) -> dict:
    """What the pre-jobs code left: written as the owner, the way its sweeper and outbox loop would have."""
    async with owner_connection(dsn) as conn:
        buyer = await conn.fetchval("INSERT INTO users (name, role) VALUES ('buyer', 'customer') RETURNING id")
        seller_user = await conn.fetchval("INSERT INTO users (name, role) VALUES ('shop', 'seller') RETURNING id")
        seller = await conn.fetchval(
            "INSERT INTO sellers (user_id, display_name, slug) VALUES ($1, 'Shop', 'shop') RETURNING id", seller_user)
        orders = [await conn.fetchval(
            """INSERT INTO orders (user_id, seller_id, status, subtotal_minor, discount_minor, shipping_minor,
                                   total_minor, currency)
               VALUES ($1, $2, 'canceled', 1000, 0, 0, 1000, 'USD') RETURNING id""", buyer, seller) for _ in range(2)]
        pay = uuid.uuid4()
        await conn.execute(
            """INSERT INTO payments (id, user_id, provider, status, amount_minor, currency, idempotency_key,
                                     provider_ref, refund_due_minor)
               VALUES ($1::uuid, $2, 'sandbox', 'succeeded', 2000, 'USD', 'payment-' || $1::text, 'sbx_old', 2000)""",
            str(pay), buyer)
        await conn.execute("INSERT INTO payment_orders (payment_id, order_id) SELECT $1, unnest($2::uuid[])",
                           pay, orders)
        waiting = await conn.fetchval(  # a failed call, its retry due: the old sweeper's work
            """INSERT INTO payment_refunds (payment_id, order_id, provider, amount_minor, currency, attempts,
                                            next_attempt_at, error)
               VALUES ($1, $2, 'sandbox', 1000, 'USD', 1, now() - interval '1 minute', 'ConnectionError: away')
               RETURNING id::text""", pay, orders[0])
        accepted = await conn.fetchval(  # accepted by the provider: its webhook settles it, no job
            """INSERT INTO payment_refunds (payment_id, order_id, provider, amount_minor, currency, attempts,
                                            provider_ref, provider_status)
               VALUES ($1, $2, 'sandbox', 1000, 'USD', 1, 'sbx_re_1', 'pending') RETURNING id::text""",
            pay, orders[1])
        mails = {name: await conn.fetchval(
            """INSERT INTO email_outbox (to_address, subject, body, attempts, sent_at)
               VALUES ($1, 'Your code', 'code 123456', $2, $3) RETURNING id""", f"{name}@example.com", attempts, sent)
            for name, attempts, sent in (("fresh", 0, None), ("retrying", 3, None), ("given_up", 5, None))}
        mails["sent"] = await conn.fetchval(
            """INSERT INTO email_outbox (to_address, subject, body, attempts, sent_at)
               VALUES ('sent@example.com', 'Hi', 'hi', 1, now()) RETURNING id""")
    return {"waiting": waiting, "accepted": accepted, "mails": mails}


async def test_rows_the_old_loops_left_get_their_jobs_and_are_sent(empty_dsn, tmp_path, aiohttp_client):
    before = tmp_path / "migrations-0021"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) <= 21:
            shutil.copy(path, before / path.name)
    await migrate(empty_dsn, directory=before)
    rows = await old_rows(empty_dsn)
    mails = rows["mails"]
    async with owner_connection(empty_dsn) as conn:  # one mail already has its job (written by the new code)
        await conn.execute(
            """INSERT INTO pgqueuer (priority, entrypoint, payload, dedupe_key, status)
               VALUES (0, 'email.send', $1, $2, 'queued')""", orjson.dumps({"id": mails["retrying"]}),
            f"email:{mails['retrying']}")

    assert "0022_jobs_backfill" in await migrate(empty_dsn)

    async with owner_connection(empty_dsn) as conn:
        jobs = {r["dedupe_key"]: r for r in await conn.fetch(
            "SELECT id, entrypoint, payload, dedupe_key, priority, status FROM pgqueuer ORDER BY id")}
        logged = await conn.fetchval("SELECT count(*) FROM pgqueuer_log WHERE status = 'queued'")
    assert set(jobs) == {f"refund:{rows['waiting']}", f"email:{mails['fresh']}", f"email:{mails['retrying']}"}
    refund_job, mail_job = jobs[f"refund:{rows['waiting']}"], jobs[f"email:{mails['fresh']}"]
    # byte for byte what live/commerce/refunds.py and live/notify/mail.py enqueue
    assert (refund_job["entrypoint"], bytes(refund_job["payload"]), refund_job["priority"], refund_job["status"]) \
        == ("refund.send", orjson.dumps({"refund_id": rows["waiting"]}), 0, "queued")
    assert (mail_job["entrypoint"], bytes(mail_job["payload"]), mail_job["priority"], mail_job["status"]) \
        == ("email.send", orjson.dumps({"id": mails["fresh"]}), 0, "queued")
    assert logged == 2  # the two new jobs (the pre-existing one was inserted without a log row)

    client = await make_client(tmp_path, empty_dsn, aiohttp_client)  # the app's in-process worker runs them
    async with owner_connection(empty_dsn) as conn:
        async def all_done() -> bool:
            unsent = await conn.fetch("SELECT id FROM email_outbox WHERE sent_at IS NULL ORDER BY id")
            refund = await conn.fetchrow("SELECT status, provider_ref FROM payment_refunds WHERE id = $1::uuid",
                                         rows["waiting"])
            return [r["id"] for r in unsent] == [mails["given_up"]] and refund["provider_ref"] is not None
        await until(all_done, timeout=20, what="the backfilled mail sent and refund accepted")
        accepted = await conn.fetchrow("SELECT status, provider_ref, attempts FROM payment_refunds WHERE id = $1::uuid",
                                       rows["accepted"])
    assert dict(accepted) == {"status": "requested", "provider_ref": "sbx_re_1", "attempts": 1}
    assert client.server is not None
