"""Helpers of the authentication tests (test_auth*.py).

Those tests share one migrated database per module (cloned from the template like conftest's `dsn`): a module
that imports `dsn` from here gets it instead of conftest's per-test one. Each test uses its own user names,
email addresses and wallet keys, so none sees another's rows."""
from __future__ import annotations

import pytest

from tests.conftest import owner_connection

ME = "/api/v1/me"


@pytest.fixture
def dsn(module_dsn):
    """Overrides conftest's per-test database (see the module docstring)."""
    return module_dsn


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def error_of(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    return body["error"]


async def owner_execute(dsn: str, sql: str, *args) -> str:
    async with owner_connection(dsn) as owner:
        return await owner.execute(sql, *args)


async def owner_fetchval(dsn: str, sql: str, *args):
    async with owner_connection(dsn) as owner:
        return await owner.fetchval(sql, *args)
