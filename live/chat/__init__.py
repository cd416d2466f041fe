"""Chat: messages, history, moderation."""
