-- 0001_core: application role, request-context helpers, users/sellers, auth and internal tables.
-- Applied inside one transaction by the migrator.

-- ---------------------------------------------------------------------------
-- Role used by every request transaction (SET LOCAL role live_app).
-- Roles are cluster-wide and several databases may migrate at once: a concurrent
-- CREATE ROLE blocks until the other transaction commits and then fails with
-- unique_violation (or duplicate_object if it already saw the role), so catch both.
-- ---------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'live_app') THEN
        CREATE ROLE live_app NOLOGIN NOBYPASSRLS;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        RAISE NOTICE 'role live_app already exists';
END
$$;

-- The connecting (migrator/app) user must be a member to SET ROLE live_app.
-- Granted unconditionally: on PG16 a CREATEROLE user gets an automatic ADMIN-only
-- membership (no SET), so "is member" is not enough. A repeated grant is only a NOTICE.
DO $$
BEGIN
    GRANT live_app TO CURRENT_USER;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        RAISE NOTICE 'already a member of live_app';
END
$$;

-- ---------------------------------------------------------------------------
-- Request context, set per transaction by the app:
--   set_config('app.user_id', <uuid or ''>, true), set_config('app.role', <role>, true)
-- ---------------------------------------------------------------------------
CREATE FUNCTION app_user_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;

CREATE FUNCTION app_role() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(nullif(current_setting('app.role', true), ''), 'anon') $$;

CREATE FUNCTION app_is_privileged() RETURNS boolean
    LANGUAGE sql STABLE
    AS $$ SELECT app_role() IN ('admin', 'system') $$;

-- Generic triggers.
CREATE FUNCTION touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE FUNCTION forbid_modification() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% not allowed)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- ---------------------------------------------------------------------------
-- Users and sellers
-- ---------------------------------------------------------------------------
CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text CHECK (email IS NULL OR email ~ '^[^@\s]+@[^@\s]+$'),
    name           text NOT NULL CHECK (char_length(name) <= 200),
    role           text NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'seller', 'admin')),
    -- base58 Solana public key (32 bytes -> 32..44 chars)
    wallet_address text UNIQUE CHECK (wallet_address ~ '^[1-9A-HJ-NP-Za-km-z]{32,44}$'),
    avatar_url     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- case-insensitive unique email
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email)) WHERE email IS NOT NULL;
CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE sellers (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL UNIQUE REFERENCES users (id),
    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 100),
    slug         text NOT NULL UNIQUE CHECK (char_length(slug) BETWEEN 1 AND 100),
    bio          text,
    kyc_status   text NOT NULL DEFAULT 'pending'
                 CHECK (kyc_status IN ('pending', 'verified', 'rejected')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER sellers_touch BEFORE UPDATE ON sellers
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Sellers owned by the current user. SECURITY DEFINER so it reads sellers without
-- going through RLS (and policies on other tables can call it without recursion).
CREATE FUNCTION app_seller_ids() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT s.id FROM public.sellers s WHERE s.user_id = public.app_user_id() $$;
REVOKE EXECUTE ON FUNCTION app_seller_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_seller_ids() TO live_app;

-- Columns only privileged contexts (admin/system) may change when running as live_app:
-- users.role to/from 'admin', sellers.kyc_status. The migrator/owner is not affected.
CREATE FUNCTION guard_privileged_columns() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF current_user <> 'live_app' OR app_is_privileged() THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'users' THEN
        IF (TG_OP = 'INSERT' AND NEW.role = 'admin')
           OR (TG_OP = 'UPDATE' AND NEW.role IS DISTINCT FROM OLD.role
               AND 'admin' IN (NEW.role, OLD.role)) THEN
            RAISE EXCEPTION 'only admin/system may change the admin role'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSIF TG_TABLE_NAME = 'sellers' THEN
        IF (TG_OP = 'INSERT' AND NEW.kyc_status <> 'pending')
           OR (TG_OP = 'UPDATE' AND NEW.kyc_status IS DISTINCT FROM OLD.kyc_status) THEN
            RAISE EXCEPTION 'only admin/system may change kyc_status'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_guard BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION guard_privileged_columns();
CREATE TRIGGER sellers_guard BEFORE INSERT OR UPDATE ON sellers
    FOR EACH ROW EXECUTE FUNCTION guard_privileged_columns();

-- ---------------------------------------------------------------------------
-- Auth: email one-time codes and wallet sign-in nonces
-- ---------------------------------------------------------------------------
CREATE TABLE email_codes (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email       text NOT NULL,
    code_hash   text NOT NULL,
    expires_at  timestamptz NOT NULL,
    attempts    int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    consumed_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- latest code for an address (the app stores and compares emails lowercased); cleanup by expiry
CREATE INDEX email_codes_email_idx ON email_codes (email, created_at DESC);
CREATE INDEX email_codes_expires_idx ON email_codes (expires_at);

CREATE TABLE wallet_nonces (
    nonce          text PRIMARY KEY,
    wallet_address text NOT NULL,
    message        text NOT NULL,
    expires_at     timestamptz NOT NULL,
    consumed_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wallet_nonces_expires_idx ON wallet_nonces (expires_at);

-- Transactional outbox for emails; a worker sends unsent rows.
CREATE TABLE email_outbox (
    id              bigserial PRIMARY KEY,
    to_address      text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    attempts        int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text
);
-- worker: WHERE sent_at IS NULL ... ORDER BY id FOR UPDATE SKIP LOCKED
CREATE INDEX email_outbox_pending_idx ON email_outbox (id) WHERE sent_at IS NULL;

-- ---------------------------------------------------------------------------
-- Audit log (append-only for the app: no UPDATE/DELETE policies, see 0005)
-- ---------------------------------------------------------------------------
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id   uuid,                        -- no FK: the log outlives users
    action     text NOT NULL,
    entity     text,
    entity_id  text,
    data       jsonb NOT NULL DEFAULT '{}',
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id, created_at DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, created_at DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC);

-- ---------------------------------------------------------------------------
-- Contact-form submissions
-- ---------------------------------------------------------------------------
CREATE TABLE contacts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    email      text NOT NULL CHECK (char_length(email) <= 320),
    subject    text CHECK (char_length(subject) <= 300),
    message    text NOT NULL CHECK (char_length(message) BETWEEN 1 AND 10000),
    status     text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'read', 'replied', 'archived', 'spam')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_status_idx ON contacts (status, created_at DESC);
