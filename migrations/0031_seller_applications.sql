-- 0031_seller_applications: a customer asks to become a seller (live/auth/seller_applications.py); an admin
-- approves (the user's role becomes seller and their seller row, the shop, is made, in the same transaction) or
-- refuses it with a note. Statuses: pending -> approved | refused, decided once.
--
-- At most one pending application per user (a partial unique index: two racing submissions, one wins). A user's
-- history stays (a refused applicant may apply again). The admins' list: pending first, newest first
-- (cursor: pending rank, created_at, id), or one status newest first.
CREATE TABLE seller_applications (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    shop_name  text NOT NULL CHECK (char_length(shop_name) BETWEEN 2 AND 80),
    about      text NOT NULL DEFAULT '' CHECK (char_length(about) <= 2000),
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'refused')),
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz,
    decided_by uuid REFERENCES users (id) ON DELETE SET NULL,
    note       text CHECK (char_length(note) <= 500),
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK (status <> 'refused' OR coalesce(char_length(note), 0) >= 1)
);
CREATE UNIQUE INDEX seller_applications_one_pending ON seller_applications (user_id) WHERE status = 'pending';
CREATE INDEX seller_applications_user_idx ON seller_applications (user_id, created_at DESC, id DESC);
CREATE INDEX seller_applications_list_idx
    ON seller_applications ((status <> 'pending'), created_at DESC, id DESC);
CREATE INDEX seller_applications_status_idx ON seller_applications (status, created_at DESC, id DESC);

-- ---------------------------------------------------------------------------
-- Row-level security: admin/system do everything (deciding runs as the admin, the service authorizes first,
-- live/auth/policy.py). A user reads their own applications and inserts a pending, undecided one for
-- themselves; nobody else sees them, and no user updates or deletes one (a decision is an admin's).
-- ---------------------------------------------------------------------------
ALTER TABLE seller_applications ENABLE ROW LEVEL SECURITY;
CREATE POLICY seller_applications_privileged ON seller_applications FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
CREATE POLICY seller_applications_own_select ON seller_applications FOR SELECT TO live_app
    USING (user_id = app_user_id());
CREATE POLICY seller_applications_own_insert ON seller_applications FOR INSERT TO live_app
    WITH CHECK (user_id = app_user_id() AND status = 'pending' AND decided_at IS NULL AND decided_by IS NULL
                AND note IS NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON seller_applications TO live_app;
