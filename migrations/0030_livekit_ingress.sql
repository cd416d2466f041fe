-- 0030_livekit_ingress: each stream's LiveKit ingress (issue 15, docs/media.md "LiveKit", "Ingress").
--
-- A seller who publishes from OBS (RTMP or WHIP) into LiveKit gets an ingress made by LiveKit's IngressService
-- for the stream's room; it is kept here so the stream keeps it (the same URL and stream key for every show of
-- the stream until it is deleted). One per stream. `stream_key` is a credential: the table is privileged-only
-- (the service reads it as system after checking the caller is the stream's seller or an admin). `status` and
-- `error` are the last ingress webhook's (`ingress_started` / `ingress_ended`: LiveKit's IngressState status).

CREATE TABLE livekit_ingresses (
    livestream_id uuid PRIMARY KEY REFERENCES livestreams (id) ON DELETE CASCADE,
    ingress_id    text NOT NULL UNIQUE CHECK (char_length(ingress_id) BETWEEN 1 AND 200),
    input         text NOT NULL CHECK (input IN ('rtmp', 'whip')),
    url           text NOT NULL CHECK (char_length(url) <= 2048),
    stream_key    text NOT NULL CHECK (char_length(stream_key) <= 500),
    status        text CHECK (status IS NULL OR char_length(status) <= 64),
    error         text CHECK (error IS NULL OR char_length(error) <= 1000),
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE livekit_ingresses ENABLE ROW LEVEL SECURITY;
CREATE POLICY livekit_ingresses_privileged ON livekit_ingresses FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
GRANT SELECT, INSERT, UPDATE, DELETE ON livekit_ingresses TO live_app;
