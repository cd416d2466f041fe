-- 0036_viewer_samples: a live stream's viewer count over time (issue 16, the studio's analytics charts;
-- docs/web.md "The studio", docs/commerce.md).
--
-- Every 30 s the room layer (live/rooms/node.py `save_viewer_samples`) writes one row per live stream that has
-- viewers, in one statement for all of them: the stream's total over every worker (the presence tally), at the
-- start of its 30 s slot. Workers that hold viewers of the same stream write the same slot: the primary key
-- keeps one row (the larger count), so a stream has at most one row per 30 s of being watched (120 an hour) and
-- none while nobody watches. Rows go with their stream.

CREATE TABLE viewer_samples (
    livestream_id uuid NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    at            timestamptz NOT NULL,
    viewers       integer NOT NULL CHECK (viewers >= 0),
    PRIMARY KEY (livestream_id, at)
);

ALTER TABLE viewer_samples ENABLE ROW LEVEL SECURITY;
CREATE POLICY viewer_samples_privileged ON viewer_samples FOR ALL TO live_app
    USING (app_is_privileged()) WITH CHECK (app_is_privileged());
GRANT SELECT, INSERT, UPDATE ON viewer_samples TO live_app;
