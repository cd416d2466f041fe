"""Audience simulator: `live-loadtest` / `python -m loadtests`."""
