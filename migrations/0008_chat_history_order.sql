-- 0008: chat history is read in the order messages were said (created_at, then id): with several workers, ids
-- are handed out in blocks per worker and no longer follow time.
CREATE INDEX chat_messages_stream_time_idx ON chat_messages (livestream_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
