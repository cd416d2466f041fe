"""Discovery pages (docs/web.md, "Home" and "Replay"): the home page `/` (live now, scheduled, replays: cards read by
js/home.js from `GET /api/v1/livestreams`) and a stream's replay `/replay/{stream}` (js/replay.js: the recording,
its product timeline and the chat replayed in time, from the public replay and chat routes). Shells only: what a
page shows is read by its script."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from live.web.pages import Pages


STREAM = r"{stream:[A-Za-z0-9-]{1,120}}"  # as live/web/pages.py: a stream's id or slug


def register(app: web.Application, pages: "Pages") -> None:
    async def home(request: web.Request) -> web.Response:
        return pages.render("home.html", title="Live shopping")

    async def replay(request: web.Request) -> web.Response:
        return pages.render("replay.html", title="Replay", stream=request.match_info["stream"])

    app.router.add_get("/", home)
    app.router.add_get(f"/replay/{STREAM}", replay)
