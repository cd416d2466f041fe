"""The caller's in-app notifications: a cursor-paged list (all or unread only) with the unread count, and marking
them read (live/notify/inbox.py). New ones also arrive as the socket event `notification:new`."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from live.http.api import API, Api, Call
from live.notify.inbox import MARK_MAX, PAGE_DEFAULT, PAGE_MAX

api = Api()
MAX_ID = 2**63 - 1


class NotificationsQuery(BaseModel):
    limit: int = Field(default=PAGE_DEFAULT, ge=1, le=PAGE_MAX)
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")
    unread: bool = Field(default=False, description="only the unread ones")


class NotificationOut(BaseModel):
    id: int
    kind: str = Field(description="the kind's name (docs/notifications.md), e.g. order.confirmed")
    title: str
    url: str = Field(description="path of the page it is about, e.g. /account/orders/<id>")
    data: dict[str, Any]
    created_at: str
    read_at: str | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None
    unread: int = Field(description="the caller's unread notifications (counted up to 1,000)")


class MarkRead(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] = Field(default_factory=list, max_length=MARK_MAX,
                           description=f"at most {MARK_MAX} ids of the caller's notifications")
    all: bool = Field(default=False, description="mark every notification read")

    @model_validator(mode="after")
    def _one(self) -> "MarkRead":
        if not self.ids and not self.all:
            raise ValueError("give ids or all: true")
        if any(not 1 <= i <= MAX_ID for i in self.ids):
            raise ValueError("an id is out of range")
        return self


class UnreadOut(BaseModel):
    unread: int


@api.route("GET", f"{API}/me/notifications", summary="Your notifications, newest first", tag="notifications",
           auth="user", query=NotificationsQuery, response=NotificationPage)
async def my_notifications(call: Call):
    q = call.query
    return await call.services.notices.inbox.page(call.principal, limit=q.limit, cursor=q.cursor, unread=q.unread)


@api.route("POST", f"{API}/me/notifications/read", summary="Mark your notifications read (by id, or all)",
           tag="notifications", auth="user", body=MarkRead, response=UnreadOut, errors=(422,))
async def mark_read(call: Call):
    b = call.body
    return await call.services.notices.inbox.mark_read(call.principal, ids=b.ids, everything=b.all)
