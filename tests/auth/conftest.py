"""The authentication tests share one migrated database per module (cloned from the template like conftest's
`dsn`): this `dsn` replaces conftest's per-test one. Each test uses its own user names, email addresses and wallet
keys, so none sees another's rows."""
from __future__ import annotations

import pytest


@pytest.fixture
def dsn(module_dsn):
    """Overrides conftest's per-test database (see the module docstring)."""
    return module_dsn
