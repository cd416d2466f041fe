-- 0020_jobs_app_rights: what live_app (every request's and service's transaction, db/pool.py) needs on the job
-- queue's tables. Enqueueing writes a `queued` row to pgqueuer_log too (pgqueuer's enqueue statement), and the
-- admin routes (live/http/admin_jobs.py -> db/jobs.py) list jobs with their last error, requeue a dead job (an
-- UPDATE plus a log row) and discard one (DELETE). The workers still connect as the owner.

GRANT SELECT, INSERT ON pgqueuer_log TO live_app;
GRANT USAGE, SELECT ON SEQUENCE pgqueuer_log_id_seq TO live_app;
GRANT UPDATE, DELETE ON pgqueuer TO live_app;

-- Payment webhooks are processed by a `webhook.process` job after the route stored them and answered: what the
-- order side made of the event ("applied", "ignored", "amount_mismatch", ...) is kept with it, beside `error`.
ALTER TABLE webhook_events ADD COLUMN result text;
