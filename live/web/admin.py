"""The admin pages (docs/web.md, "Admin"): one shell per section under `/admin`, each loading js/admin.js, which
checks the signed-in user is an admin (`GET /api/v1/me`: signed out, to sign-in and back; anyone else is told the
pages are for admins only) and then reads and acts through the public admin REST routes (`/api/v1/admin/...`).
`/admin` is the Users section; `/admin/contact/{id}` (the link in the support mail of a contact message,
live/notify/kinds.py) is the Contact section with that message open on top."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from live.web.pages import Pages

# path segment -> the tab's name (also the page's title)
SECTIONS = {"users": "Users", "payments": "Payments", "jobs": "Jobs", "contact": "Contact",
            "sellers": "Seller applications", "audit": "Audit log"}
MESSAGE_ID = r"{id:[0-9a-fA-F-]{36}}"


def register(app: web.Application, pages: "Pages") -> None:
    def section_page(section: str):
        async def handler(request: web.Request) -> web.Response:
            return pages.render("admin.html", title=f"Admin: {SECTIONS[section]}", section=section,
                                sections=SECTIONS, open=request.match_info.get("id", "").lower())
        return handler

    app.router.add_get("/admin", section_page("users"))
    for section in SECTIONS:
        app.router.add_get(f"/admin/{section}", section_page(section))
    app.router.add_get(f"/admin/contact/{MESSAGE_ID}", section_page("contact"))
