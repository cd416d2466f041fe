"""Room events: their names, declared once, and the one place where an event changes a worker's cached room state.

Services publish room events (RoomService.publish) and never change a StreamState themselves: every event a
worker receives from its broker goes through `apply` (RoomService.on_event), whoever published it. The events in
`AT_ONCE` are also applied by the publishing worker as soon as its publish returns, since its next check (the
banned user's join, the muted user's message) must see them before a shared broker brings the event back.
"""
from __future__ import annotations

import time
from typing import Callable, Protocol

from live.rooms.state import StreamState

CHAT_NEW = "chat:new"
CHAT_DELETED = "chat:deleted"
USER_MUTED = "user:muted"
USER_BANNED = "user:banned"
USER_UNBANNED = "user:unbanned"
MODERATOR_ADDED = "moderator:added"
MODERATOR_REMOVED = "moderator:removed"
CHAT_SLOWMODE = "chat:slowmode"
STREAM_STATUS = "stream:status"
PRODUCT_HIGHLIGHTED = "product:highlighted"
PRODUCT_UNHIGHLIGHTED = "product:unhighlighted"
STOCK_UPDATE = "stock:update"
REACTIONS = "reactions"
VIEWER_COUNT = "viewer:count"
# sent to sockets, never applied to a room's state
ORDER_UPDATE = "order:update"
NOTIFICATION_NEW = "notification:new"  # a user's new in-app notification (live/notify), to every socket of theirs
SERVER_RECONNECT = "server:reconnect"


def _chat_new(state: StreamState, d: dict) -> None:
    if not any(m["id"] == d["id"] for m in state.recent):
        state.recent.append(d)


def _muted(state: StreamState, d: dict) -> None:
    state.mutes[d["user_id"]] = time.time() + d["seconds"]


def _status(state: StreamState, d: dict) -> None:
    state.status = d["status"]
    if state.status == "ended":
        state.spotlight = None


def _spotlight(state: StreamState, product: dict | None) -> None:
    state.spotlight = product


def _stock(state: StreamState, d: dict) -> None:
    if state.spotlight is not None and state.spotlight["id"] == d["product_id"]:
        for v in state.spotlight["variants"]:
            if v["id"] == d["variant_id"]:
                v["available"] = d["available"]


def _set(name: str, key: str) -> Callable[[StreamState, dict], None]:
    def apply(state: StreamState, d: dict) -> None:
        setattr(state, name, d[key])
    return apply


APPLY: dict[str, Callable[[StreamState, dict], None]] = {
    CHAT_NEW: _chat_new,
    CHAT_DELETED: lambda state, d: state.drop_message(d["id"]),
    USER_MUTED: _muted,
    USER_BANNED: lambda state, d: state.bans.add(d["user_id"]),
    USER_UNBANNED: lambda state, d: state.bans.discard(d["user_id"]),
    MODERATOR_ADDED: lambda state, d: state.moderators.add(d["user_id"]),
    MODERATOR_REMOVED: lambda state, d: state.moderators.discard(d["user_id"]),
    CHAT_SLOWMODE: _set("slow_mode", "seconds"),
    STREAM_STATUS: _status,
    PRODUCT_HIGHLIGHTED: lambda state, d: _spotlight(state, d["product"]),
    PRODUCT_UNHIGHLIGHTED: lambda state, d: _spotlight(state, None),
    STOCK_UPDATE: _stock,
    REACTIONS: lambda state, d: state.reaction_totals.update(d["totals"]),
    VIEWER_COUNT: _set("viewers", "count"),
}
STATEFUL = frozenset(APPLY)  # the events that change what a worker knows about the room
AT_ONCE = frozenset({CHAT_DELETED, USER_MUTED, USER_BANNED, USER_UNBANNED, MODERATOR_ADDED, MODERATOR_REMOVED,
                     STREAM_STATUS, PRODUCT_HIGHLIGHTED, PRODUCT_UNHIGHLIGHTED})


def apply(state: StreamState, event: str, data: dict) -> None:
    """Apply one room event (its decoded data) to the room's cached state."""
    APPLY[event](state, data)


class RoomListener(Protocol):
    """What the room layer asks of the transport on this worker (the Socket.IO gateway): given once to
    RoomService by the container, the one way the room layer calls back up."""

    def kick_banned(self, room: str, user_id: str) -> None:
        """A user was banned from a room (here or on another worker): their sockets here leave it."""
        ...

    def deliver_to_user(self, user_id: str, packet: bytes) -> int:
        """Write an encoded event to the sockets a user has on this worker; how many."""
        ...
