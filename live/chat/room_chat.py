"""Chat and moderation: validation, rate limit, slow mode, blocked words, mutes, bans, moderators.

Every moderation change (mute, ban, unban, moderator grant or revoke, slow mode) writes its audit row (db/audit.py,
actions `stream.mute`, `stream.ban`, `stream.unban`, `stream.moderator`, `stream.slow_mode`) in the transaction of
the change."""
from __future__ import annotations

import re
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import asyncpg

from db import Database, audit
from db import chat as chat_db
from db import streams as streams_db
from db import users as users_db
from live.auth import policy
from live.auth.principal import Principal
from live.chat.writer import ChatWriter
from live.cursors import decode_cursor, encode_cursor
from live.errors import DomainError, forbidden, not_found
from live.ratelimit import RateLimiter
from live.rooms import events
from live.rooms.livestreams import Livestreams
from live.rooms.node import RoomService
from live.rooms.state import StreamState

MAX_LEN = 500
DEFAULT_BLOCKED = frozenset({"fuck", "shit", "cunt", "nigger", "faggot", "retard", "kys"})
_WORD = re.compile(r"[\w']+", re.UNICODE)


@asynccontextmanager
async def _known_user():
    """A moderation row naming a user that does not exist is a not_found, not a database error."""
    try:
        yield
    except asyncpg.ForeignKeyViolationError:
        raise not_found("user") from None


class ChatService:
    def __init__(self, db: Database, rooms: RoomService, streams: Livestreams, writer: ChatWriter,
                 limiter: RateLimiter, *, rate: int = 5, per: float = 10.0):
        self.db, self.rooms, self.streams, self.writer, self.limiter = db, rooms, streams, writer, limiter
        self.rate, self.per = rate, per

    async def send(self, principal: Principal, id_or_slug: str, text: str) -> dict:
        policy.signed_in(principal, "sign in to chat")
        text = text.strip()
        if not 1 <= len(text) <= MAX_LEN:
            raise DomainError("invalid", f"text must be 1 to {MAX_LEN} characters")
        state = await self.rooms.streams.get(id_or_slug)
        uid = principal.user_id
        if state.status != "live":
            raise DomainError("stream_not_live", "the stream is not live")
        if uid in state.bans:
            raise DomainError("banned", "you are banned from this stream")
        until = state.muted_until(uid)
        if until is not None:
            raise DomainError("muted", f"you are muted for {int(until - time.time()) + 1} more seconds")
        staff = policy.moderates(principal, state)
        words = {w.lower() for w in _WORD.findall(text)}
        if words & DEFAULT_BLOCKED or words & state.blocked_words:
            raise DomainError("invalid", "the message contains a blocked word")
        if not staff:  # both limits are global when workers share Redis (live/ratelimit.py)
            wait = await self.limiter.spaced(f"slow:{state.id}:{uid}", state.slow_mode)
            if wait > 0:
                raise DomainError("rate_limited", f"slow mode: wait {wait:.0f} s")
            if not await self.limiter.hit(f"chat:{state.id}:{uid}", self.rate, self.per):
                raise DomainError("rate_limited", f"at most {self.rate} messages per {self.per:g} s")
        now = time.time()
        msg_id = await self.writer.next_id()
        message = {"id": msg_id, "stream_id": state.id,
                   "user": {"id": uid, "name": principal.name, "role": principal.role}, "text": text, "ts": now}
        env = await self.rooms.publish(state, events.CHAT_NEW, message)  # the room's state takes it from the event
        message["seq"] = env.seq
        self.writer.add(msg_id, state.id, uid, text, env.seq, datetime.fromtimestamp(now, timezone.utc))
        return message

    async def delete(self, principal: Principal, id_or_slug: str, message_id: int) -> None:
        state = await self._moderated(principal, id_or_slug)
        if not await self.writer.delete_pending(message_id, state.id):
            async with self.db.tx(principal) as conn:
                if not await chat_db.mark_deleted(conn, state.id, message_id, principal.user_id):
                    raise not_found("message")
        await self.rooms.publish(state, events.CHAT_DELETED, {"stream_id": state.id, "id": message_id})

    async def mute(self, principal: Principal, id_or_slug: str, user_id: str, seconds: int) -> float:
        state = await self._moderated(principal, id_or_slug)
        self._not_staff_target(state, user_id)
        before = state.muted_until(user_id)
        until = time.time() + seconds
        async with _known_user(), self.db.tx(principal) as conn:
            await self._not_admin_target(conn, principal, user_id)
            await streams_db.mute(conn, state.id, user_id, principal.user_id, seconds)
            await audit.record(conn, principal.user_id, "stream.mute", "livestream", state.id, user_id=user_id,
                               before={"muted_until": before}, after={"muted_until": until, "seconds": seconds})
        await self.rooms.publish(state, events.USER_MUTED,
                                 {"stream_id": state.id, "user_id": user_id, "seconds": seconds})
        return until

    async def ban(self, principal: Principal, id_or_slug: str, user_id: str, reason: str | None) -> StreamState:
        state = await self._moderated(principal, id_or_slug)
        self._not_staff_target(state, user_id)
        async with _known_user(), self.db.tx(principal) as conn:
            await self._not_admin_target(conn, principal, user_id)
            await streams_db.ban(conn, state.id, user_id, principal.user_id, reason)
            await self.rooms.media.rooms.enqueue_remove(conn, state.livekit_room, user_id)  # out of the video too
            await audit.record(conn, principal.user_id, "stream.ban", "livestream", state.id, user_id=user_id,
                               before={"banned": user_id in state.bans}, after={"banned": True, "reason": reason})
        await self.rooms.publish(state, events.USER_BANNED, {"stream_id": state.id, "user_id": user_id})
        return state

    async def unban(self, principal: Principal, id_or_slug: str, user_id: str) -> bool:
        """Lift a ban (the socket's user:unban and REST DELETE .../bans/{user_id}); whether there was one. Unbanning
        a user who is not banned changes nothing and succeeds (no audit row, no room event), unless the room state
        holds a ban the database does not (a ban and an unban raced on two workers and their events arrived in the
        other order): the event then clears it on every worker."""
        state = await self._moderated(principal, id_or_slug)
        async with self.db.tx(principal) as conn:
            lifted = await streams_db.unban(conn, state.id, user_id)
            if lifted:
                await audit.record(conn, principal.user_id, "stream.unban", "livestream", state.id, user_id=user_id,
                                   before={"banned": True}, after={"banned": False})
        if lifted or user_id in state.bans:  # every worker's room state drops the ban (live/rooms/events.py)
            await self.rooms.publish(state, events.USER_UNBANNED, {"stream_id": state.id, "user_id": user_id})
        return lifted

    async def bans(self, principal: Principal, id_or_slug: str, cursor: str | None, limit: int) -> dict:
        """A page of the stream's bans, newest first, for its seller, moderators and admins."""
        state = await self._moderated(principal, id_or_slug)
        before = tuple(decode_cursor(cursor, "ts", "uuid")) if cursor else None
        async with self.db.tx(principal) as conn:
            rows = await streams_db.bans(conn, state.id, before, limit + 1)
        page = rows[:limit]
        last = page[-1] if len(rows) > limit else None
        return {"items": page,
                "next_cursor": encode_cursor(last["created_at"].isoformat(), last["user"]["id"]) if last else None}

    async def slow_mode(self, principal: Principal, id_or_slug: str, seconds: int) -> None:
        """A moderator's chat:slowmode: the same change as REST PATCH slow_mode_seconds (Livestreams.change)."""
        state = await self._moderated(principal, id_or_slug)
        await self.streams.change(principal, state, {"slow_mode_seconds": seconds}, by_moderator=True)

    async def history(self, principal: Principal, id_or_slug: str, limit: int, before: int | None) -> list:
        """A page of the stream's chat, newest last, messages still being written included."""
        await self.writer.flush()
        async with self.db.tx(principal) as conn:
            row = await streams_db.get(conn, id_or_slug)
            if row is None:
                raise not_found("stream")
            return await chat_db.recent(conn, row["id"], limit, before)

    async def set_moderator(self, principal: Principal, id_or_slug: str, user_id: str, on: bool) -> None:
        state = await self.rooms.owned(principal, id_or_slug)
        async with _known_user(), self.db.tx(principal) as conn:
            await streams_db.set_moderator(conn, state.id, user_id, principal.user_id, on)
            await audit.record(conn, principal.user_id, "stream.moderator", "livestream", state.id, user_id=user_id,
                               before={"moderator": user_id in state.moderators}, after={"moderator": on})
        await self.rooms.publish(state, events.MODERATOR_ADDED if on else events.MODERATOR_REMOVED,
                                 {"stream_id": state.id, "user_id": user_id})

    async def _moderated(self, principal: Principal, id_or_slug: str) -> StreamState:
        policy.signed_in(principal)
        state = await self.rooms.streams.get(id_or_slug)
        policy.stream_moderator(principal, state)
        return state

    @staticmethod
    def _not_staff_target(state: StreamState, user_id: str) -> None:
        if user_id == state.seller_user_id:
            raise forbidden("the stream's seller cannot be muted or banned")

    @staticmethod
    async def _not_admin_target(conn, principal: Principal, user_id: str) -> None:
        """Nobody below admin mutes or bans an admin (the target's role as stored, in the change's transaction)."""
        if principal.is_admin:
            return
        target = await users_db.get(conn, user_id)
        if target is not None and target["role"] == "admin":
            raise forbidden("an admin cannot be muted or banned by a moderator or seller")
