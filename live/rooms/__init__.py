"""Live rooms: room state, presence, viewer counts, fan-out and the cross-worker broker."""
