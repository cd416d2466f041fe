"""Redis: one worker's link (link.py) and the embedded server for development and tests (embedded.py)."""
