"""Fixtures of the multi-process tests."""
from __future__ import annotations

import pytest

from tests.workers.cluster import Viewers


@pytest.fixture
async def viewers(dsn):
    """The test's viewers (on the `dsn` database: a module overrides `dsn` to share one), closed after it."""
    vs = Viewers(dsn)
    yield vs
    await vs.close_viewers()
