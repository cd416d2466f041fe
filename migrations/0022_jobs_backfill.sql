-- 0022_jobs_backfill: work the old loops left behind gets its job. Before 0015/0020 a refund sweeper retried
-- refunds and an outbox loop sent mails; both are gone (refund.send and email.send jobs, enqueued with the row by
-- live/commerce/refunds.py and live/outbox.py). Rows written by the old code have no job and would wait forever:
--   * payment_refunds still `requested` and not accepted by the provider (provider_ref NULL): a `refund.send` job,
--     due when the old sweeper would have tried again (next_attempt_at, or now);
--   * email_outbox rows not sent with attempts left (the old loop gave up after 5): an `email.send` job, due now.
-- Each job has exactly what the code enqueues: the payload bytes of orjson.dumps({"refund_id": "<uuid>"}) /
-- orjson.dumps({"id": <id>}), key `refund:<id>` / `email:<id>`, priority 0, status queued, and its `queued` log
-- row (as pgqueuer's enqueue writes). A row that has (or had) a job under its key (queued, running, or held dead
-- for an admin) gets none: ON CONFLICT on the dedupe index, and a dead job is not brought back.

WITH due AS (
    SELECT 'refund.send'::text AS entrypoint,
           convert_to('{"refund_id":"' || r.id::text || '"}', 'UTF8') AS payload,
           'refund:' || r.id::text AS dedupe_key,
           greatest(r.next_attempt_at, now()) AS execute_after,
           r.created_at AS made
      FROM payment_refunds r
     WHERE r.status = 'requested' AND r.provider_ref IS NULL
    UNION ALL
    SELECT 'email.send', convert_to('{"id":' || m.id::text || '}', 'UTF8'), 'email:' || m.id::text, now(),
           m.created_at
      FROM email_outbox m
     WHERE m.sent_at IS NULL AND m.attempts < 5
), inserted AS (
    INSERT INTO pgqueuer AS job (priority, entrypoint, payload, execute_after, dedupe_key, status)
    SELECT 0, d.entrypoint, d.payload, d.execute_after, d.dedupe_key, 'queued'
      FROM due d
     WHERE NOT EXISTS (SELECT 1 FROM pgqueuer q WHERE q.dedupe_key = d.dedupe_key)
     ORDER BY d.made
    ON CONFLICT (dedupe_key)
        WHERE ((status = ANY (ARRAY['queued'::pgqueuer_status, 'picked'::pgqueuer_status])) AND (dedupe_key IS NOT NULL))
        DO NOTHING
    RETURNING id, entrypoint, priority
)
INSERT INTO pgqueuer_log (job_id, status, entrypoint, priority)
SELECT id, 'queued', entrypoint, priority FROM inserted;
