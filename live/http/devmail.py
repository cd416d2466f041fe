"""The development mailbox's pages (live/notify/devmail.py): `GET /dev/mailbox` (the list, newest first),
`GET /dev/mailbox/{id}` (one message: headers, the HTML part in a sandboxed iframe, the plain text) and
`GET /api/v1/dev/mailbox` (the list as JSON, for the web app's "read your code" link). No auth: development
only. With LIVE_ENV=production every /dev/ path (and the JSON route) answers 404 JSON and nothing is read."""
from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from live.appkeys import SERVICES
from live.errors import not_found
from live.http.api import API, Api, Call

api = Api()
# the message page frames the mail's HTML (srcdoc, no scripts); its images and inline styles may load
MESSAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:; frame-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class MailboxQuery(BaseModel):
    to: str | None = Field(default=None, min_length=1, max_length=320, description="only messages whose To "
                           "header contains this (e.g. the address a sign-in code went to)")
    limit: int = Field(default=50, ge=1, le=500)


class MailboxEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    message_id: str
    sender: str = Field(alias="from")
    to: str
    subject: str
    size: int
    received_at: str
    text: str = Field(description="the plain-text part's first 2,000 characters")
    url: str = Field(description="the message's page")


class MailboxPage(BaseModel):
    items: list[MailboxEntry]


def _mailbox(services):
    box = services.devmail
    if box is None:  # production
        raise not_found("development mailbox")
    return box


@api.route("GET", f"{API}/dev/mailbox", summary="Development only (404 in production): the messages the "
           "development mailbox received, newest first", tag="dev", query=MailboxQuery, response=MailboxPage,
           errors=(404,))
async def dev_mailbox(call: Call):
    from live.notify.devmail import entry

    box = _mailbox(call.services)
    items = await asyncio.to_thread(box.list, call.query.limit, call.query.to)
    return {"items": [entry(m) for m in items]}


async def mailbox_page(request: web.Request) -> web.Response:
    box = _mailbox(request.app[SERVICES])
    html = await asyncio.to_thread(lambda: box.render_list(box.list()))
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


async def message_page(request: web.Request) -> web.Response:
    box = _mailbox(request.app[SERVICES])
    message = await asyncio.to_thread(box.get, request.match_info["id"])
    if message is None:
        raise not_found("message")
    html = await asyncio.to_thread(box.render_message, message)
    return web.Response(text=html, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": MESSAGE_CSP})


async def dev_other(request: web.Request) -> web.Response:
    raise not_found("page")


def register(app: web.Application) -> None:
    app.router.add_get("/dev/mailbox", mailbox_page)
    app.router.add_get("/dev/mailbox/{id}", message_page)
    app.router.add_route("*", "/dev/{tail:.*}", dev_other)
