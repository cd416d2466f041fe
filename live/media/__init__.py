"""Media: LiveKit tokens (and, later, the built-in relay)."""
