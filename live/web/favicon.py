"""The site's icon: live/web/static/favicon.svg, which base.html links by its hashed URL; `GET /favicon.ico`
answers with the same SVG for what asks the conventional path (a browser on a page without the link, such as the
sandbox payment page, live/http/sandbox_pay.py, which links it there)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from live.web.pages import Pages

ICON = "favicon.svg"


def register(app: web.Application, pages: "Pages") -> None:
    asset = pages.assets.files[ICON]

    async def favicon(request: web.Request) -> web.Response:
        return pages.assets.respond(request, asset, "public, max-age=86400")

    app.router.add_get("/favicon.ico", favicon)
