"""Notification preferences over REST, and the unsubscribe links of the mails.

`GET/PUT /api/v1/me/notification-preferences`: every kind the caller can get with its email and push choice; a PUT
sets some of them (kind `*`: every optional kind); a transactional kind turned off is a 422 naming it.

`GET /unsubscribe?t=<token>`: a page with a confirm button (a link opened by a mail scanner turns nothing off);
`POST /unsubscribe?t=<token>`: the RFC 8058 one-click unsubscribe (mail providers post the form body
`List-Unsubscribe=One-Click`; the page's button posts the same), safe to repeat. The signed token is the
authorization (live/notify/unsubscribe.py). A bad or missing token: 400 (an HTML page for a browser, else the JSON
error). The body of the POST is not needed and is read up to MAX_UNSUBSCRIBE_BODY bytes (413 past it)."""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from live.appkeys import SERVICES
from live.errors import DomainError
from live.http.api import API, Api, Call, read_body
from live.notify.prefs import MAX_ITEMS
from live.notify.unsubscribe import MAX_TOKEN, BadToken

api = Api()
PATH = "/unsubscribe"
MAX_UNSUBSCRIBE_BODY = 4096


class PrefItem(BaseModel):
    kind: str
    label: str
    transactional: bool = Field(description="always sent; cannot be turned off")
    email: bool
    push: bool


class Channels(BaseModel):
    email: bool
    push: bool


class PrefsOut(BaseModel):
    items: list[PrefItem]
    all_optional: Channels = Field(description="false after an unsubscribe from all optional emails")


class PrefSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(pattern=r"^(\*|[a-z_]{1,40}\.[a-z_]{1,40})$", description="a kind, or * for every optional kind")
    email: StrictBool | None = Field(default=None, description="null or absent: unchanged")
    push: StrictBool | None = None


class PrefsPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[PrefSet] = Field(min_length=1, max_length=MAX_ITEMS)


@api.route("GET", f"{API}/me/notification-preferences", summary="My notification preferences", tag="notifications",
           auth="user", response=PrefsOut)
async def get_preferences(call: Call):
    return await call.services.outbox.prefs.get(call.principal)


@api.route("PUT", f"{API}/me/notification-preferences", summary="Change my notification preferences",
           tag="notifications", auth="user", body=PrefsPut, response=PrefsOut, errors=(422,))
async def put_preferences(call: Call):
    items = [(i.kind, i.email, i.push) for i in call.body.items]
    return await call.services.outbox.prefs.put(call.principal, items)


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def _page(request: web.Request, status: int = 200, **context) -> web.Response:
    mailer = request.app[SERVICES].outbox
    renderer = mailer.renderer
    html = renderer.env.get_template("unsubscribe.html").render(
        shop_name=renderer.shop_name, prefs_url=renderer.link("/account/preferences"), **context)
    return web.Response(text=html, status=status, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _bad(request: web.Request, message: str) -> web.Response:
    if _wants_html(request):
        return _page(request, 400, title="This link does not work", state="bad", message=message)
    raise DomainError("invalid", message)


def _token(request: web.Request) -> str:
    token = request.query.get("t", "")
    if len(token) > MAX_TOKEN:
        return ""
    return token


async def unsubscribe_page(request: web.Request) -> web.Response:
    prefs = request.app[SERVICES].outbox.prefs
    token = _token(request)
    try:
        _, _, what = prefs.describe(token)
    except BadToken as exc:
        return _bad(request, str(exc))
    return _page(request, title="Unsubscribe", state="confirm", what=what, action=f"{PATH}?t={token}")


async def unsubscribe_post(request: web.Request) -> web.Response:
    await read_body(request, MAX_UNSUBSCRIBE_BODY)  # List-Unsubscribe=One-Click (RFC 8058), or nothing
    prefs = request.app[SERVICES].outbox.prefs
    try:
        what = await prefs.unsubscribe_token(_token(request))
    except BadToken as exc:
        return _bad(request, str(exc))
    if _wants_html(request):
        return _page(request, title="You are unsubscribed", state="done", what=what)
    return web.json_response({"unsubscribed": what})


def register(app: web.Application) -> None:
    app.router.add_get(PATH, unsubscribe_page)
    app.router.add_post(PATH, unsubscribe_post)
