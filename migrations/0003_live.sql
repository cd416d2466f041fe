-- 0003_live: livestreams, featured products, chat and moderation.

CREATE TABLE livestreams (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seller_id            uuid NOT NULL REFERENCES sellers (id),
    slug                 text NOT NULL UNIQUE CHECK (char_length(slug) BETWEEN 1 AND 120),
    title                text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description          text,
    status               text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'live', 'ended')),
    scheduled_at         timestamptz,
    started_at           timestamptz,
    ended_at             timestamptz,
    livekit_room         text UNIQUE,
    thumbnail_url        text,
    spotlight_product_id uuid REFERENCES products (id) ON DELETE SET NULL,
    peak_viewers         int NOT NULL DEFAULT 0 CHECK (peak_viewers >= 0),
    blocked_words        text[] NOT NULL DEFAULT '{}',
    slow_mode_seconds    int NOT NULL DEFAULT 0 CHECK (slow_mode_seconds BETWEEN 0 AND 3600),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- a live stream has a start time; an ended one has an end time
    CHECK (status <> 'live' OR started_at IS NOT NULL),
    CHECK (status <> 'ended' OR ended_at IS NOT NULL),
    CHECK (started_at IS NULL OR ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX livestreams_seller_idx ON livestreams (seller_id, created_at DESC);
-- the three public lists: upcoming, live now, past
CREATE INDEX livestreams_upcoming_idx ON livestreams (scheduled_at) WHERE status = 'scheduled';
CREATE INDEX livestreams_live_idx ON livestreams (started_at DESC) WHERE status = 'live';
CREATE INDEX livestreams_ended_idx ON livestreams (ended_at DESC) WHERE status = 'ended';
CREATE INDEX livestreams_spotlight_idx ON livestreams (spotlight_product_id)
    WHERE spotlight_product_id IS NOT NULL;
CREATE TRIGGER livestreams_touch BEFORE UPDATE ON livestreams
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Products shown in a stream; highlighted_at marks the latest spotlight time.
CREATE TABLE livestream_products (
    livestream_id  uuid NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    product_id     uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    position       int NOT NULL DEFAULT 0,
    highlighted_at timestamptz,
    PRIMARY KEY (livestream_id, product_id)
);
CREATE INDEX livestream_products_order_idx ON livestream_products (livestream_id, position);
CREATE INDEX livestream_products_product_idx ON livestream_products (product_id);

-- Chat history. seq is the room sequence number assigned by the realtime layer.
-- Deletion is soft (deleted_at/deleted_by) so moderation stays auditable.
CREATE TABLE chat_messages (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    livestream_id uuid NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id),
    text          text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 500),
    seq           bigint,
    deleted_at    timestamptz,
    deleted_by    uuid REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_stream_idx ON chat_messages (livestream_id, id DESC);
CREATE INDEX chat_messages_stream_seq_idx ON chat_messages (livestream_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX chat_messages_user_idx ON chat_messages (user_id, livestream_id);

-- Moderation: per-stream moderators, bans and timed mutes.
CREATE TABLE stream_moderators (
    livestream_id uuid NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (livestream_id, user_id)
);
CREATE INDEX stream_moderators_user_idx ON stream_moderators (user_id);

CREATE TABLE stream_bans (
    livestream_id uuid NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (livestream_id, user_id)
);
CREATE INDEX stream_bans_user_idx ON stream_bans (user_id);

CREATE TABLE stream_mutes (
    livestream_id uuid NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    until         timestamptz NOT NULL,
    muted_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (livestream_id, user_id)
);
CREATE INDEX stream_mutes_user_idx ON stream_mutes (user_id);
