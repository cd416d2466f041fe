"""The web app's pages (docs/web.md): server-rendered Jinja2 shells (templates/) that load small ES modules
(static/js/) which talk to the server through the public REST and Socket.IO contract, like any other client.

Routes: `GET /signin`, `GET /studio/live/{stream}` (the seller's go-live page), `GET /live/{stream}` (watch),
`GET /static/{path}` (assets.py). `{stream}` is a stream's id or slug (letters, digits and `-`, 1-120
characters); anything else matches no route (404). The other pages are their modules': `/` and `/replay/{stream}`
(discover.py), `/studio` and `/studio/...` (studio.py), `/checkout` and `/orders/{id}` (shop.py), `/account` and
`/account/...` (account.py), `/admin` and `/admin/...` (admin.py), `/favicon.ico` (favicon.py). A shell holds no
user data: who is signed in and what the stream is are read by the page's script (REST, the join ack), so a shell
is the same for everyone and carries no secret."""
from __future__ import annotations

import jinja2
from aiohttp import web

from live import __version__
from live.config import Settings
from live.web import account, admin, discover, favicon, shop, studio
from live.web.assets import Assets
from live.web.livekit_csp import policy as livekit_policy

STREAM = r"{stream:[A-Za-z0-9-]{1,120}}"  # docs/protocol.md: an id or a slug

_env = jinja2.Environment(loader=jinja2.PackageLoader("live.web", "templates"),
                          autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined)


class Pages:
    def __init__(self, settings: Settings, assets: Assets):
        self.dev = settings.live_env != "production"  # the sign-in page links the development mailbox
        self.assets = assets
        self.video_csp = livekit_policy(settings.livekit_url)  # None: the app's policy (embedded media)

    def render(self, template: str, **context) -> web.Response:
        html = _env.get_template(template).render(asset=self.assets.url, dev=self.dev, version=__version__,
                                                  **context)
        # a shell is the same for everyone, but its asset URLs change with a deploy: always revalidate
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})

    async def signin(self, request: web.Request) -> web.Response:
        return self.render("signin.html", title="Sign in")

    async def studio_live(self, request: web.Request) -> web.Response:
        return self.video(self.render("studio_live.html", title="Go live", stream=request.match_info["stream"]))

    async def watch(self, request: web.Request) -> web.Response:
        return self.video(self.render("watch.html", title="Watch", stream=request.match_info["stream"]))

    def video(self, resp: web.Response) -> web.Response:
        """A page that publishes or plays video may open the LiveKit server's connections (livekit_csp.py)."""
        if self.video_csp:
            resp.headers["Content-Security-Policy"] = self.video_csp
        return resp


def register(app: web.Application, settings: Settings) -> None:
    assets = Assets.load()
    pages = Pages(settings, assets)
    app.router.add_get("/signin", pages.signin)
    app.router.add_get(f"/studio/live/{STREAM}", pages.studio_live)
    app.router.add_get(f"/live/{STREAM}", pages.watch)
    studio.register(app, pages)  # /studio/orders
    shop.register(app, pages)  # /checkout, /orders/{id}
    account.register(app, pages)  # /account/...
    admin.register(app, pages)  # /admin/...
    discover.register(app, pages)  # /, /replay/{stream}
    favicon.register(app, pages)  # /favicon.ico
    app.router.add_get("/static/{path:.+}", assets.serve)
