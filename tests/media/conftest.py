"""Fixtures shared by the media tests: a running fake LiveKit server (tests/media/fake_livekit.py), with the API
key and secret of fake_livekit.KEY / SECRET."""
from __future__ import annotations

import pytest

from tests.media.fake_livekit import KEY, SECRET, FakeLiveKit


@pytest.fixture
async def fake():
    server = FakeLiveKit(KEY, SECRET)
    server.url = await server.start()
    yield server
    await server.close()
