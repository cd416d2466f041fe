"""Local fake HTTP servers of third-party APIs (aiohttp on 127.0.0.1, free port) for tests: our code calls them
through its real client library; they record requests and sign webhooks with the provider's real scheme."""
from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer


class FakeServer:
    """Base: subclasses add routes to `self.app`; `url` is valid after `start()`."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.requests: list[dict] = []
        self._server: TestServer | None = None

    async def start(self) -> "FakeServer":
        self._server = TestServer(self.app, host="127.0.0.1")
        await self._server.start_server()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return str(self._server.make_url("")).rstrip("/")

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    def record(self, request: web.Request, params) -> None:
        self.requests.append({"method": request.method, "path": request.path,
                              "headers": dict(request.headers), "params": params})
