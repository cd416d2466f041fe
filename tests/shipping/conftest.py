"""Fixtures of the shipping tests: `fake`, the fake Shippo server (a module may override it with a subclass)."""
from __future__ import annotations

import pytest

from tests.shipping.fake_shippo import API_KEY, FakeShippo


@pytest.fixture
async def fake():
    server = await FakeShippo(API_KEY).start()
    yield server
    await server.close()
