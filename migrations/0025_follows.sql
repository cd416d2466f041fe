-- 0025_follows: viewers follow sellers; a stream's cover image.
--
-- follows: one row per (seller, follower). `emailed_at` is when the follower was last emailed about this seller
-- (a "live now" or a reminder): the email cap (FOLLOW_EMAIL_INTERVAL_SECONDS, at most one email per seller per
-- follower per interval, whatever the kind) is one UPDATE ... RETURNING over the seller's rows (primary key
-- prefix). The follower index serves "my follows" (newest first, keyset pages) and the per-user cap (FOLLOW_MAX).

CREATE TABLE follows (
    seller_id   uuid NOT NULL REFERENCES sellers (id) ON DELETE CASCADE,
    follower_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    emailed_at  timestamptz,
    PRIMARY KEY (seller_id, follower_id)
);
CREATE INDEX follows_follower_idx ON follows (follower_id, created_at DESC, seller_id);

-- the cover image uploaded by the seller (POST /api/v1/livestreams/{id}/cover): a path under /uploads/
ALTER TABLE livestreams ADD COLUMN cover_url text CHECK (cover_url IS NULL OR char_length(cover_url) <= 2048);

-- ---------------------------------------------------------------------------
-- Row-level security: admin/system do everything (the jobs that notify followers run as system); a user reads,
-- adds and removes their own follows. Nobody else sees who follows whom: the public count goes through
-- app_follower_count (SECURITY DEFINER, a count and nothing else).
-- ---------------------------------------------------------------------------
ALTER TABLE follows ENABLE ROW LEVEL SECURITY;
CREATE POLICY follows_privileged ON follows FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY follows_own ON follows FOR ALL TO live_app
    USING (follower_id = app_user_id()) WITH CHECK (follower_id = app_user_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON follows TO live_app;

CREATE FUNCTION app_follower_count(p_seller uuid) RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT count(*) FROM public.follows f WHERE f.seller_id = p_seller $$;
REVOKE EXECUTE ON FUNCTION app_follower_count(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_follower_count(uuid) TO live_app;
