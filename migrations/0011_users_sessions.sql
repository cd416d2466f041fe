-- 0011_users_sessions: token revocation, suspension, and the watermark the workers follow.
--
-- A token (JWT) is valid only when it was issued at or after users.tokens_valid_after (sign-out and suspension
-- set it to "now": every earlier token of that user stops working). A suspended user (suspended_at set) cannot
-- sign in and none of their tokens work. auth_changed_at is set by a trigger whenever role, suspension or
-- tokens_valid_after change (whatever path changed them): every worker keeps the users changed within the token
-- lifetime in memory and polls this column, so checking a token costs no query (live/auth/sessions.py).

ALTER TABLE users
    ADD COLUMN tokens_valid_after timestamptz,
    ADD COLUMN suspended_at       timestamptz,
    ADD COLUMN suspended_reason   text CHECK (char_length(suspended_reason) <= 500),
    ADD COLUMN auth_changed_at    timestamptz;

CREATE INDEX users_auth_changed_idx ON users (auth_changed_at) WHERE auth_changed_at IS NOT NULL;
CREATE INDEX users_suspended_idx ON users (suspended_at) WHERE suspended_at IS NOT NULL;

CREATE FUNCTION users_auth_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.role <> 'customer' OR NEW.suspended_at IS NOT NULL OR NEW.tokens_valid_after IS NOT NULL THEN
            NEW.auth_changed_at := clock_timestamp();
        END IF;
    ELSIF NEW.role IS DISTINCT FROM OLD.role
       OR NEW.suspended_at IS DISTINCT FROM OLD.suspended_at
       OR NEW.tokens_valid_after IS DISTINCT FROM OLD.tokens_valid_after THEN
        NEW.auth_changed_at := clock_timestamp();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_auth_changed BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_auth_changed();

-- Only admin/system may suspend or lift a suspension (a user may still update their own row: profile, sign-out).
CREATE FUNCTION guard_suspension() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF current_user <> 'live_app' OR app_is_privileged() THEN
        RETURN NEW;
    END IF;
    IF (TG_OP = 'INSERT' AND NEW.suspended_at IS NOT NULL)
       OR (TG_OP = 'UPDATE' AND (NEW.suspended_at IS DISTINCT FROM OLD.suspended_at
                                 OR NEW.suspended_reason IS DISTINCT FROM OLD.suspended_reason)) THEN
        RAISE EXCEPTION 'only admin/system may suspend users'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_guard_suspension BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION guard_suspension();
