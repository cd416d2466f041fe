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

-- ---------------------------------------------------------------------------------------------------------------
-- seller.stock_low: a variant's available stock (on_hand - reserved - sold) crossing the threshold downward, from
-- above it to at most it, at most once per variant per hour (key: the variant and the UTC hour, so a cart churning
-- around the threshold does not tell it again and again; a crossing in a later hour is a new notice). Written by
-- the database in the statement that changes the stock, whichever it is (a cart reservation in
-- commerce_cart_changes, a checkout's sale, a seller's adjustment): one row for the seller's user and its
-- notify.deliver job, as `notify` writes them. The threshold is the STOCK_LOW_THRESHOLD setting, written here by
-- the server at start (0: off).
-- ---------------------------------------------------------------------------------------------------------------
CREATE TABLE notify_settings (
    name  text PRIMARY KEY CHECK (name IN ('stock_low_threshold')),
    value integer NOT NULL CHECK (value >= 0)
);
INSERT INTO notify_settings (name, value) VALUES ('stock_low_threshold', 5);
ALTER TABLE notify_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY notify_settings_privileged ON notify_settings FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
REVOKE ALL ON notify_settings FROM live_app;
GRANT SELECT, UPDATE ON notify_settings TO live_app;

CREATE FUNCTION notify_stock_low() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    threshold integer;
    was integer := OLD.on_hand - OLD.reserved - OLD.sold;
    now_left integer := NEW.on_hand - NEW.reserved - NEW.sold;
    k text;
    p record;
    job bigint;
BEGIN
    SELECT value INTO threshold FROM notify_settings WHERE name = 'stock_low_threshold';
    IF threshold IS NULL OR threshold = 0 OR NOT (was > threshold AND now_left <= threshold) THEN
        RETURN NULL;
    END IF;
    SELECT pr.id, pr.title, s.user_id INTO p
      FROM products pr JOIN sellers s ON s.id = pr.seller_id WHERE pr.id = NEW.product_id;
    IF p.user_id IS NULL THEN
        RETURN NULL;
    END IF;
    -- one notice per variant per hour (UTC): a cart churning around the threshold crosses it again and again
    k := 'seller.stock_low:' || NEW.id::text || ':' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDDHH24');
    IF notifications_add('seller.stock_low', k, jsonb_build_object(
            'product_id', p.id::text, 'variant_id', NEW.id::text,
            'title', p.title || coalesce(' (' || nullif(concat_ws(', ', NEW.color, NEW.size), '') || ')', ''),
            'sku', NEW.sku, 'available', now_left, 'threshold', threshold),
            ARRAY[p.user_id], NULL) > 0 THEN
        -- the job `notify` would enqueue (live/jobs/queue.py: pgqueuer's row and its `queued` log row)
        INSERT INTO pgqueuer AS j (priority, entrypoint, payload, execute_after, dedupe_key, status)
        VALUES (0, 'notify.deliver', convert_to(jsonb_build_object('key', k)::text, 'UTF8'), now(),
                'notify:' || k, 'queued')
        ON CONFLICT (dedupe_key)
            WHERE ((status = ANY (ARRAY['queued'::pgqueuer_status, 'picked'::pgqueuer_status]))
                   AND (dedupe_key IS NOT NULL))
            DO NOTHING
        RETURNING j.id INTO job;
        IF job IS NOT NULL THEN
            INSERT INTO pgqueuer_log (job_id, status, entrypoint, priority)
            VALUES (job, 'queued', 'notify.deliver', 0);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION notify_stock_low() FROM PUBLIC;

CREATE TRIGGER product_variants_stock_low AFTER UPDATE OF on_hand, reserved, sold ON product_variants
    FOR EACH ROW WHEN ((NEW.on_hand - NEW.reserved - NEW.sold) < (OLD.on_hand - OLD.reserved - OLD.sold))
    EXECUTE FUNCTION notify_stock_low();
