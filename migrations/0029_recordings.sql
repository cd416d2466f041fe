-- 0029_recordings: what a stream leaves behind for its replay (issue 15, docs/media.md "Recordings and replay").
--
-- `recordings`: one row per recorded segment of a stream. The embedded media server writes one per WHIP
-- session (a seller who reconnects makes a second segment); LiveKit's egress writes one per egress (its
-- `egress_id`). `status` is recording -> ready (the file is complete: duration and size known) or failed.
-- `file_name` is a file under LIVE_DATA_DIR/recordings (embedded), `location` where an egress put its file
-- (a URL or a path on the egress host). Public streams' replays are public: everyone reads, system writes.
--
-- `stream_spotlights`: every change of a stream's spotlight, written by a trigger on livestreams so every path
-- that changes it (the seller's spotlight, the stream ending, the demo seed) is recorded; product_id NULL means
-- the spotlight was cleared. A replay's product timeline is these rows against its recordings' start times.

CREATE TABLE recordings (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    livestream_id uuid NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    source        text NOT NULL CHECK (source IN ('embedded', 'livekit_egress')),
    status        text NOT NULL DEFAULT 'recording' CHECK (status IN ('recording', 'ready', 'failed')),
    file_name     text CHECK (file_name IS NULL OR file_name ~ '^[A-Za-z0-9._-]{1,200}$'),
    location      text CHECK (location IS NULL OR char_length(location) <= 2048),
    content_type  text CHECK (content_type IS NULL OR char_length(content_type) <= 100),
    egress_id     text UNIQUE CHECK (egress_id IS NULL OR char_length(egress_id) <= 200),
    started_at    timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz,
    duration_ms   bigint CHECK (duration_ms IS NULL OR duration_ms >= 0),
    bytes         bigint CHECK (bytes IS NULL OR bytes >= 0),
    width         int,
    height        int,
    error         text CHECK (error IS NULL OR char_length(error) <= 1000)
);
CREATE INDEX recordings_stream_idx ON recordings (livestream_id, started_at);

CREATE TABLE stream_spotlights (
    id            bigserial PRIMARY KEY,
    livestream_id uuid NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    product_id    uuid REFERENCES products (id) ON DELETE SET NULL,
    at            timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX stream_spotlights_stream_idx ON stream_spotlights (livestream_id, at);

CREATE FUNCTION record_spotlight() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    INSERT INTO stream_spotlights (livestream_id, product_id) VALUES (NEW.id, NEW.spotlight_product_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER livestreams_spotlight_history AFTER UPDATE OF spotlight_product_id ON livestreams
    FOR EACH ROW WHEN (OLD.spotlight_product_id IS DISTINCT FROM NEW.spotlight_product_id)
    EXECUTE FUNCTION record_spotlight();
CREATE TRIGGER livestreams_spotlight_first AFTER INSERT ON livestreams
    FOR EACH ROW WHEN (NEW.spotlight_product_id IS NOT NULL)
    EXECUTE FUNCTION record_spotlight();

ALTER TABLE recordings ENABLE ROW LEVEL SECURITY;
CREATE POLICY recordings_select ON recordings FOR SELECT TO live_app USING (true);
CREATE POLICY recordings_privileged ON recordings FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
GRANT SELECT, INSERT, UPDATE ON recordings TO live_app;

ALTER TABLE stream_spotlights ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_spotlights_select ON stream_spotlights FOR SELECT TO live_app USING (true);
GRANT SELECT ON stream_spotlights TO live_app;
