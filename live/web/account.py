"""The account pages (docs/web.md, "Account"): one shell per section under `/account`, each loading
js/account.js, which reads everything through the public REST routes (`/api/v1/me/...`) and the user's socket
(`notification:new`). `/account` is the orders section.

`/account/orders/{id}` is the path the notifications' `url` names (live/notify/kinds.py): it redirects to the
order's page `/orders/{id}`."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from live.web.pages import Pages

# path segment -> the tab's name (also the page's title)
SECTIONS = {"orders": "Orders", "returns": "Returns", "addresses": "Addresses", "wishlist": "Wishlist",
            "follows": "Following", "notifications": "Notifications", "preferences": "Email preferences",
            "seller": "Become a seller"}
ORDER_ID = r"{id:[0-9a-fA-F-]{36}}"


def register(app: web.Application, pages: "Pages") -> None:
    def section_page(section: str):
        async def handler(request: web.Request) -> web.Response:
            return pages.render("account.html", title=SECTIONS[section], section=section, sections=SECTIONS)
        return handler

    async def order_redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/orders/{request.match_info['id'].lower()}")

    app.router.add_get("/account", section_page("orders"))
    for section in SECTIONS:
        app.router.add_get(f"/account/{section}", section_page(section))
    app.router.add_get(f"/account/orders/{ORDER_ID}", order_redirect)
