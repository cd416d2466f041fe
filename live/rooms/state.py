"""What a worker knows about each active stream: the stream row, moderation sets, spotlight, recent chat.
Loaded once per stream (concurrent loads merged) and kept current by the room events this worker receives
(RoomService.on_event applies them). With several workers, a worker receives a room's events only while it
follows the room (has viewers in it); a state it does not follow is reloaded when older than UNFOLLOWED_TTL,
and a followed state is reloaded when following (re)starts and when another worker announces a row change."""
from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from db import Database
from db import chat as chat_db
from db import streams as streams_db
from live.auth.principal import SYSTEM
from live.errors import not_found

RECENT_CHAT = 50
UNFOLLOWED_TTL = 2.0  # seconds a stream state not kept current by room events is trusted
REACTION_KINDS = ("heart", "fire", "clap", "wow", "laugh")


@dataclass
class StreamState:
    id: str
    slug: str
    title: str
    description: str | None
    status: str
    seller_id: str
    seller_user_id: str
    seller_name: str
    livekit_room: str
    slow_mode: int
    blocked_words: frozenset[str]
    peak_viewers: int
    spotlight: dict | None = None
    moderators: set[str] = field(default_factory=set)
    bans: set[str] = field(default_factory=set)
    mutes: dict[str, float] = field(default_factory=dict)
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_CHAT))
    reaction_totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REACTION_KINDS, 0))
    reactions_saved: dict[str, int] = field(default_factory=dict)  # the totals last stored in the database
    viewers: int = 0
    loaded_at: float = 0.0  # time.monotonic() of the last load from the database

    @property
    def room(self) -> str:
        return self.id

    def public(self) -> dict:
        return {"id": self.id, "slug": self.slug, "title": self.title, "description": self.description,
                "status": self.status, "seller": {"id": self.seller_id, "name": self.seller_name,
                                                  "user_id": self.seller_user_id},
                "slow_mode_seconds": self.slow_mode, "peak_viewers": self.peak_viewers,
                "moderators": sorted(self.moderators)}

    def drop_message(self, message_id: int) -> None:
        """A deleted message leaves the recent chat."""
        for i, m in enumerate(self.recent):
            if m["id"] == message_id:
                del self.recent[i]
                return

    def muted_until(self, user_id: str) -> float | None:
        until = self.mutes.get(user_id)
        if until is None:
            return None
        if until <= time.time():
            del self.mutes[user_id]
            return None
        return until


class StreamRegistry:
    def __init__(self, db: Database, follows: Callable[[str], bool], on_row_changed: Callable[[str], None]):
        """`follows(room)`: whether this worker receives every event of the room (Broker.follows);
        `on_row_changed(stream_id)`: tell the other workers that a stream's row changed (Control.announce)."""
        self._db = db
        self._by_id: dict[str, StreamState] = {}
        self._alias: dict[str, str] = {}  # slug -> id
        self._loading: dict[str, asyncio.Future] = {}
        self.follows = follows
        self._on_row_changed = on_row_changed

    def cached(self, stream_id: str) -> StreamState | None:
        return self._by_id.get(stream_id)

    def states(self) -> list[StreamState]:
        """Every stream loaded on this worker."""
        return list(self._by_id.values())

    async def get(self, id_or_slug: str) -> StreamState:
        key = self._alias.get(id_or_slug, id_or_slug)
        state = self._by_id.get(key)
        if state is not None and (self.follows(state.id) or time.monotonic() - state.loaded_at < UNFOLLOWED_TTL):
            return state
        return await self._merged(key, self._reload(state) if state is not None else self._load(id_or_slug))

    async def reload(self, state: StreamState) -> StreamState:
        """Read the stream again from the database into the same object (references stay valid)."""
        return await self._merged(state.id, self._reload(state))

    async def _merged(self, key: str, work) -> StreamState:
        fut = self._loading.get(key)
        if fut is not None:
            work.close()
            return await asyncio.shield(fut)
        fut = self._loading[key] = asyncio.get_running_loop().create_future()
        try:
            state = await work
            fut.set_result(state)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: the waiters re-raise it
            raise
        finally:
            del self._loading[key]
        return state

    async def _fetch(self, id_or_slug: str) -> StreamState:
        async with self._db.tx(SYSTEM) as conn:
            row = await streams_db.get(conn, id_or_slug)
            if row is None:
                raise not_found("stream")
            mod = await streams_db.moderation_state(conn, row["id"])
            reactions = await streams_db.reaction_totals(conn, row["id"])
            recent = await chat_db.recent(conn, row["id"], RECENT_CHAT)
            spotlight = None
            if row["spotlight_product_id"]:
                found = await streams_db.products_json(conn, [row["spotlight_product_id"]])
                spotlight = found[0] if found else None
        state = StreamState(
            id=row["id"], slug=row["slug"], title=row["title"], description=row["description"],
            status=row["status"], seller_id=row["seller_id"], seller_user_id=row["seller_user_id"],
            seller_name=row["seller_name"], livekit_room=row["livekit_room"] or f"live-{row['slug']}",
            slow_mode=row["slow_mode_seconds"], blocked_words=frozenset(w.lower() for w in row["blocked_words"]),
            peak_viewers=row["peak_viewers"], spotlight=spotlight, moderators=mod["moderators"], bans=mod["bans"],
            mutes=mod["mutes"], loaded_at=time.monotonic())
        state.recent.extend(message_out(r) for r in recent)  # in time order (chat_db.recent), not id order
        state.reaction_totals.update({k: int(v) for k, v in reactions.items() if k in state.reaction_totals})
        state.reactions_saved = dict(state.reaction_totals)
        return state

    async def _load(self, id_or_slug: str) -> StreamState:
        state = await self._fetch(id_or_slug)
        existing = self._by_id.get(state.id)
        if existing is not None:
            return existing
        self._by_id[state.id] = state
        self._alias[state.slug] = state.id
        return state

    async def _reload(self, state: StreamState) -> StreamState:
        fresh = await self._fetch(state.id)
        for name in ("title", "description", "status", "slow_mode", "blocked_words", "spotlight", "moderators",
                     "bans", "mutes", "loaded_at"):
            setattr(state, name, getattr(fresh, name))
        state.peak_viewers = max(state.peak_viewers, fresh.peak_viewers)
        for kind, n in fresh.reaction_totals.items():  # totals only grow
            state.reaction_totals[kind] = max(state.reaction_totals.get(kind, 0), n)
        # chat: the database's, plus what this worker has that the (batched) writes have not stored yet
        newest = max((m["ts"] for m in fresh.recent), default=0.0)
        ids = {m["id"] for m in fresh.recent}
        fresh.recent.extend(m for m in state.recent if m["ts"] > newest and m["id"] not in ids)
        state.recent = fresh.recent
        return state

    def refresh_row(self, state: StreamState, row) -> None:
        state.title, state.description, state.status = row["title"], row["description"], row["status"]
        state.slow_mode = row["slow_mode_seconds"]
        state.blocked_words = frozenset(w.lower() for w in row["blocked_words"])
        self._on_row_changed(state.id)

    def forget(self, stream_id: str) -> None:
        state = self._by_id.pop(stream_id, None)
        if state is not None:
            self._alias.pop(state.slug, None)


def message_out(row) -> dict:
    return {"id": row["id"], "seq": row["seq"], "stream_id": row["stream_id"], "user": row["user"],
            "text": row["text"], "ts": row["created_at"].timestamp()}
