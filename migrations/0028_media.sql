-- 0028_media: LiveKit webhook events and each stream's media status (issue 15, docs/media.md "LiveKit").
--
-- `livekit_events`: every verified webhook event LiveKit sent, once per event id (LiveKit retries a delivery it
-- saw fail with the same id); the row is written in the transaction that applies the event, so an event is
-- applied exactly once. `stream_media`: what the media server last told us about a stream's room: whether the
-- room is open, how many participants are in it, how many tracks the stream's seller publishes (publishing iff
-- > 0). Both are written by the webhook as system and read as system (privileged only).

CREATE TABLE livekit_events (
    event_id      text PRIMARY KEY CHECK (char_length(event_id) BETWEEN 1 AND 200),
    event         text NOT NULL CHECK (char_length(event) <= 64),
    room          text CHECK (char_length(room) <= 200),
    identity      text CHECK (char_length(identity) <= 200),
    livestream_id uuid REFERENCES livestreams (id) ON DELETE SET NULL,
    payload       jsonb NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX livekit_events_stream_idx ON livekit_events (livestream_id, received_at) WHERE livestream_id IS NOT NULL;

CREATE TABLE stream_media (
    livestream_id    uuid PRIMARY KEY REFERENCES livestreams (id) ON DELETE CASCADE,
    room_active      boolean NOT NULL DEFAULT false,
    participants     int NOT NULL DEFAULT 0 CHECK (participants >= 0),
    publisher_tracks int NOT NULL DEFAULT 0 CHECK (publisher_tracks >= 0),
    last_event       text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE livekit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY livekit_events_privileged ON livekit_events FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
GRANT SELECT, INSERT ON livekit_events TO live_app;

ALTER TABLE stream_media ENABLE ROW LEVEL SECURITY;
CREATE POLICY stream_media_privileged ON stream_media FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
GRANT SELECT, INSERT, UPDATE ON stream_media TO live_app;
