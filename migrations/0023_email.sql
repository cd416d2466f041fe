-- 0023_email: rendered mails and notification preferences (issue 14, docs/notifications.md "Email").
--
-- email_outbox rows now name a kind and carry its data; they are rendered (Jinja2, live/notify/render.py) when
-- sent, not when written. `key` names the event (unique: a mail queued twice for one event is one row), and
-- `message_id` is derived from it (`<sha256(key)[:32]@domain>`), so a resend after a crash carries the same
-- Message-ID. `failed_at` marks a row given up (live/notify/mail.py): a retry of its batch skips it.
-- Old rows and plain mails (live/notify/mail.py `enqueue`) keep subject and body and no kind.
ALTER TABLE email_outbox
    ALTER COLUMN subject DROP NOT NULL,
    ALTER COLUMN body DROP NOT NULL,
    ADD COLUMN kind       text CHECK (kind IS NULL OR length(kind) <= 100),
    ADD COLUMN data       jsonb,
    ADD COLUMN user_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN key        text CHECK (key IS NULL OR length(key) <= 300),
    ADD COLUMN reply_to   text,
    ADD COLUMN message_id text,
    ADD COLUMN failed_at  timestamptz,  -- given up: refused by the server (5xx) or unrenderable; never sent
    ADD CONSTRAINT email_outbox_key_key UNIQUE (key),
    ADD CONSTRAINT email_outbox_content_check CHECK (kind IS NOT NULL OR (subject IS NOT NULL AND body IS NOT NULL));
CREATE INDEX email_outbox_user_idx ON email_outbox (user_id, created_at) WHERE user_id IS NOT NULL;

-- A user's choice per kind and channel; no row (or a null) means "on". kind '*' is every optional kind at once
-- (one-click unsubscribe from all); a row of the kind itself wins over '*'. Transactional kinds are sent
-- whatever is stored here (the API refuses to turn them off).
CREATE TABLE notification_prefs (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind = '*' OR kind ~ '^[a-z_]{1,40}\.[a-z_]{1,40}$'),
    email      boolean,
    push       boolean,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, kind)
);

ALTER TABLE notification_prefs ENABLE ROW LEVEL SECURITY;
CREATE POLICY notification_prefs_privileged ON notification_prefs FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY notification_prefs_own ON notification_prefs FOR ALL TO live_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON notification_prefs TO live_app;
