"""Fixtures of the room tests: the errors logged while a test runs, and viewer counts published faster."""
from __future__ import annotations

import logging

import pytest


class RecordingLog:
    """Stands in for a module's structlog logger and remembers error-level calls."""

    def __init__(self, inner):
        self.inner, self.errors = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def error(self, *args, **kw):
        self.errors.append((args, kw))
        return self.inner.error(*args, **kw)

    exception = critical = error


@pytest.fixture
def errors_logged(caplog, monkeypatch):
    """Errors logged by python-socketio/engineio/asyncio (stdlib logging) or by the gateway, its Socket.IO
    server and the chat writer (structlog): a callable returning them."""
    import live.chat.writer as writer_module
    import live.rooms.gateway as gateway_module
    import live.rooms.sio as sio_module

    caplog.set_level(logging.ERROR)
    recorders = []
    for module in (gateway_module, sio_module, writer_module):
        recorders.append(RecordingLog(module.log))
        monkeypatch.setattr(module, "log", recorders[-1])
    yield lambda: ([r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
                   + [e for rec in recorders for e in rec.errors])


@pytest.fixture
def fast_counts(monkeypatch):
    """Viewer counts published every 0.1 s instead of every second (the loop reads the interval each turn)."""
    import live.rooms.node as room_service

    monkeypatch.setattr(room_service, "COUNT_INTERVAL", 0.1)
