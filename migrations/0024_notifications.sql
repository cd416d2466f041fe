-- 0024_notifications: in-app notifications (live/notify/notices.py, docs/notifications.md).
--
-- One row per user per event: `key` names the event (`order.confirmed:<order id>`), and (user_id, key) is unique,
-- so an event replayed adds nothing. `email` says whether this user may get the email of it (false: the follows'
-- hourly cap held it back). `delivered_at` is set by the `notify.deliver` job once the channels (email, web push)
-- have queued their work for the row, in the same transaction.

CREATE TABLE notifications (
    id           bigserial PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 100),
    key          text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 200),
    data         jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    email        boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    read_at      timestamptz,
    UNIQUE (user_id, key)
);
-- the user's list, newest first (keyset on id)
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
-- the unread count and the unread list
CREATE INDEX notifications_unread_idx ON notifications (user_id, id DESC) WHERE read_at IS NULL;
-- the deliver job's rows of one event
CREATE INDEX notifications_undelivered_idx ON notifications (key) WHERE delivered_at IS NULL;

-- Writing one event's rows for many users (10,000 followers: one statement). SECURITY DEFINER: the event's
-- transaction may run as anybody (a seller canceling an order notifies its buyer), and nobody may read or change
-- another user's rows, so the insert goes through this one function instead of an INSERT policy. Users that do
-- not exist are skipped; the count of new rows is returned (0 when the event was already recorded).
CREATE FUNCTION notifications_add(p_kind text, p_key text, p_data jsonb, p_users uuid[], p_email uuid[])
    RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO notifications (user_id, kind, key, data, email)
    SELECT u.id, p_kind, p_key, p_data, p_email IS NULL OR e.id IS NOT NULL
    FROM (SELECT DISTINCT x AS id FROM unnest(p_users) AS x) AS u
    JOIN users ON users.id = u.id
    LEFT JOIN (SELECT DISTINCT y AS id FROM unnest(p_email) AS y) AS e ON e.id = u.id
    ORDER BY u.id
    ON CONFLICT (user_id, key) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION notifications_add(text, text, jsonb, uuid[], uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION notifications_add(text, text, jsonb, uuid[], uuid[]) TO live_app;

-- Row-level security: admin/system everything (the deliver job); a user reads and marks read their own rows.
ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY notifications_privileged ON notifications FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY notifications_select_own ON notifications FOR SELECT TO live_app
    USING (user_id = app_user_id());
CREATE POLICY notifications_update_own ON notifications FOR UPDATE TO live_app
    USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());

REVOKE ALL ON notifications FROM live_app;
GRANT SELECT, INSERT, DELETE ON notifications TO live_app;
GRANT UPDATE (read_at, delivered_at) ON notifications TO live_app;
GRANT USAGE, SELECT ON SEQUENCE notifications_id_seq TO live_app;
