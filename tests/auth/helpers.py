"""Helpers of the authentication tests (tests/auth/): bearer headers, error bodies, the owner's SQL, accounts and
their sockets."""
from __future__ import annotations

from tests.helpers import owner_connection

ME = "/api/v1/me"


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


async def make_account(services, name: str, role: str = "customer") -> tuple[str, str]:
    """(user id, token) of a user created (or found) by name, with a seller row for sellers."""
    from live.auth.principal import SYSTEM
    from tests.rooms.harness import make_user

    async with services.db.tx(SYSTEM) as conn:
        user = await make_user(conn, name, role)
    return user["id"], services.token_for(user)


async def socket_for(client, token: str):
    """A connected real Socket.IO client (tests/helpers.py Viewer) that notices being disconnected."""
    import asyncio

    from tests.helpers import Viewer

    viewer = Viewer(str(client.make_url("/")), token)
    viewer.cut = asyncio.Event()
    viewer.sio.on("disconnect", lambda *a: viewer.cut.set())
    return await viewer.connect()


async def socket_refusal(client, token: str) -> dict:
    """The error data of a refused Socket.IO connection ({code, message}); fails when the connection is made."""
    import socketio

    from tests.helpers import Viewer

    viewer = Viewer(str(client.make_url("/")), token)
    errors: list = []
    viewer.sio.on("connect_error", lambda data=None: errors.append(data))
    try:
        await viewer.connect()
    except socketio.exceptions.ConnectionError:
        assert errors, "refused without an error"
        data = errors[0]
        return data.get("data", data) if isinstance(data, dict) else {"message": data}
    await viewer.close()
    raise AssertionError("the connection was accepted")
