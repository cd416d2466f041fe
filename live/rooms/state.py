"""What a worker knows about each active stream: the stream row, moderation sets, spotlight, recent chat.
Loaded once per stream (concurrent loads merged) and kept current by the services that change it."""
from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from db import Database
from db import chat as chat_db
from db import streams as streams_db
from live.auth.principal import SYSTEM, Principal
from live.errors import not_found

RECENT_CHAT = 50
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
    viewers: int = 0

    @property
    def room(self) -> str:
        return self.id

    def public(self) -> dict:
        return {"id": self.id, "slug": self.slug, "title": self.title, "description": self.description,
                "status": self.status, "seller": {"id": self.seller_id, "name": self.seller_name,
                                                  "user_id": self.seller_user_id},
                "slow_mode_seconds": self.slow_mode, "peak_viewers": self.peak_viewers}

    def is_owner(self, p: Principal) -> bool:
        return p.user_id is not None and (p.user_id == self.seller_user_id or p.role == "admin")

    def can_moderate(self, p: Principal) -> bool:
        return self.is_owner(p) or (p.user_id is not None and p.user_id in self.moderators)

    def muted_until(self, user_id: str) -> float | None:
        until = self.mutes.get(user_id)
        if until is None:
            return None
        if until <= time.time():
            del self.mutes[user_id]
            return None
        return until


class StreamRegistry:
    def __init__(self, db: Database):
        self._db = db
        self._by_id: dict[str, StreamState] = {}
        self._alias: dict[str, str] = {}  # slug -> id
        self._loading: dict[str, asyncio.Future] = {}

    def cached(self, stream_id: str) -> StreamState | None:
        return self._by_id.get(stream_id)

    def states(self) -> list[StreamState]:
        """Every stream loaded on this worker."""
        return list(self._by_id.values())

    async def get(self, id_or_slug: str) -> StreamState:
        key = self._alias.get(id_or_slug, id_or_slug)
        state = self._by_id.get(key)
        if state is not None:
            return state
        fut = self._loading.get(key)
        if fut is None:
            fut = self._loading[key] = asyncio.get_running_loop().create_future()
            try:
                state = await self._load(id_or_slug)
                fut.set_result(state)
            except BaseException as exc:
                fut.set_exception(exc)
                fut.exception()  # retrieved: the waiters re-raise it
                raise
            finally:
                del self._loading[key]
            return state
        return await asyncio.shield(fut)

    async def _load(self, id_or_slug: str) -> StreamState:
        async with self._db.tx(SYSTEM) as conn:
            row = await streams_db.get(conn, id_or_slug)
            if row is None:
                raise not_found("stream")
            mod = await streams_db.moderation_state(conn, row["id"])
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
            mutes=mod["mutes"])
        state.recent.extend(message_out(r) for r in recent)
        existing = self._by_id.get(state.id)
        if existing is not None:
            return existing
        self._by_id[state.id] = state
        self._alias[state.slug] = state.id
        return state

    def refresh_row(self, state: StreamState, row) -> None:
        state.title, state.description, state.status = row["title"], row["description"], row["status"]
        state.slow_mode = row["slow_mode_seconds"]
        state.blocked_words = frozenset(w.lower() for w in row["blocked_words"])

    def forget(self, stream_id: str) -> None:
        state = self._by_id.pop(stream_id, None)
        if state is not None:
            self._alias.pop(state.slug, None)


def message_out(row) -> dict:
    return {"id": row["id"], "seq": row["seq"], "stream_id": row["stream_id"], "user": row["user"],
            "text": row["text"], "ts": row["created_at"].timestamp()}
