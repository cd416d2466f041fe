-- 0027_web_push: the browsers' Web Push subscriptions (issue 14, docs/notifications.md "Web Push").
--
-- One row per PushSubscription a signed-in browser handed us (`pushManager.subscribe`): its push service
-- endpoint (unique: a browser subscribed again, or signed in as another user, moves the row), and the keys the
-- pushes are encrypted to (RFC 8291: `p256dh` the browser's P-256 public key, 65 bytes uncompressed; `auth` its
-- 16-byte secret; both base64url as the browser gives them). `last_ok_at` is the last push the service accepted,
-- `failures` the refusals since (a subscription refused PUSH_MAX_FAILURES times in a row is dropped; 404 or 410
-- from the push service drops it at once). At most PUSH_MAX_SUBSCRIPTIONS rows per user (the oldest dropped).
--
-- The user reads and deletes their own rows; subscribing runs as system after the service checked the caller
-- (the endpoint may move from another user's row, which that caller cannot see), and so do the push jobs.

CREATE TABLE push_subscriptions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint    text NOT NULL UNIQUE CHECK (char_length(endpoint) <= 1000),
    p256dh      text NOT NULL CHECK (char_length(p256dh) <= 100),
    auth        text NOT NULL CHECK (char_length(auth) <= 50),
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_ok_at  timestamptz,
    failures    int NOT NULL DEFAULT 0 CHECK (failures >= 0)
);
CREATE INDEX push_subscriptions_user_idx ON push_subscriptions (user_id, created_at, id);

ALTER TABLE push_subscriptions ENABLE ROW LEVEL SECURITY;
CREATE POLICY push_subscriptions_privileged ON push_subscriptions FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY push_subscriptions_own ON push_subscriptions FOR ALL TO live_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON push_subscriptions TO live_app;
GRANT USAGE, SELECT ON SEQUENCE push_subscriptions_id_seq TO live_app;
