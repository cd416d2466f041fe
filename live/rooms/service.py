"""Room domain service: join with snapshot or recovery, leave, viewer counts, reactions, stream control,
spotlight and stock updates. Transport-independent: the Socket.IO gateway and REST routes call it."""
from __future__ import annotations

import asyncio
import contextlib

import orjson
from typing import Protocol

from db import Database
from db import streams as streams_db
from live.auth.principal import SYSTEM, Principal
from live.errors import DomainError, forbidden, not_found
from live.logging import get_logger
from live.media.livekit import LiveKitTokens
from live.rooms.broker import Broker
from live.rooms.hub import Hub
from live.rooms.state import REACTION_KINDS, StreamRegistry, StreamState
from live.rooms.transport import LeanSocket

log = get_logger("live.rooms")
COUNT_INTERVAL = 1.0
REACTION_INTERVAL = 0.25
UNSUBSCRIBE_DELAY = 5.0


class Presence(Protocol):
    async def count(self, room: str) -> int: ...


class LocalPresence:
    """Viewer counts for one worker: the sockets in the local hub."""

    def __init__(self, hub: Hub):
        self._hub = hub

    async def count(self, room: str) -> int:
        return self._hub.local_count(room)


class RoomService:
    def __init__(self, db: Database, hub: Hub, broker: Broker, presence: Presence, streams: StreamRegistry,
                 media: LiveKitTokens):
        self.db, self.hub, self.broker, self.presence, self.streams, self.media = (
            db, hub, broker, presence, streams, media)
        self._reactions: dict[str, dict[str, int]] = {}
        self._counted: dict[str, int] = {}
        self._unsubscribe: dict[str, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task] = []

    # ---- lifecycle ----

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._every(lambda: COUNT_INTERVAL, self.publish_counts), name="viewer-counts"),
                       asyncio.create_task(self._every(lambda: REACTION_INTERVAL, self.publish_reactions), name="reactions")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    # ---- join / leave ----

    async def join(self, sid: str, sock: LeanSocket, principal: Principal, id_or_slug: str,
                   last_seq: int | None, epoch: str | None) -> tuple[StreamState, dict]:
        state = await self.streams.get(id_or_slug)
        if principal.user_id is not None and principal.user_id in state.bans:
            raise DomainError("banned", "you are banned from this stream")
        room = state.room
        timer = self._unsubscribe.pop(room, None)
        if timer is not None:
            timer.cancel()
        first_local = self.hub.local_count(room) == 0
        if first_local:
            await self.broker.subscribe(room)
        if last_seq is not None and epoch == self.broker.epoch:
            missed, seq = await self.broker.since(room, last_seq)
        else:
            missed, seq = None, (await self.broker.since(room, 0))[1]
        self.hub.add(room, sid, sock, seq)
        ack: dict = {"seq": seq, "epoch": self.broker.epoch}
        if missed is not None:
            ack["recovered"] = True
            ack["events"] = [orjson.loads(e.packet[2:]) for e in missed]  # [[event, data], ...] in seq order
        else:
            ack["recovered"] = False
            ack.update(self.snapshot(state))
        identity = principal.user_id or f"anon-{sid}"
        ack["media"] = self.media.media_for(state.livekit_room, identity, principal.name or "viewer",
                                            publisher=state.is_owner(principal))
        return state, ack

    def snapshot(self, state: StreamState) -> dict:
        return {"stream": state.public(), "viewers": state.viewers, "spotlight": state.spotlight,
                "chat": list(state.recent), "reactions": dict(state.reaction_totals)}

    def leave(self, room: str, sid: str) -> None:
        if self.hub.remove(room, sid) and room not in self._unsubscribe:
            loop = asyncio.get_running_loop()
            self._unsubscribe[room] = loop.call_later(UNSUBSCRIBE_DELAY, self._maybe_unsubscribe, room)

    def _maybe_unsubscribe(self, room: str) -> None:
        self._unsubscribe.pop(room, None)
        if self.hub.local_count(room) == 0:
            asyncio.get_running_loop().create_task(self.broker.unsubscribe(room))

    async def publish(self, state: StreamState, event: str, data: dict, *, latest_key: str | None = None):
        return await self.broker.publish(state.room, event, data, latest_key=latest_key)

    # ---- viewer counts and reactions (timers, not per event) ----

    @staticmethod
    async def _every(interval, fn) -> None:
        """Run fn every interval() seconds; an error is logged and the loop goes on."""
        while True:
            await asyncio.sleep(interval())
            try:
                await fn()
            except Exception:
                log.exception("room_timer_error", timer=fn.__name__)

    async def publish_counts(self) -> None:
        for room in list(self.hub.rooms):
            state = self.streams.cached(room)
            if state is None:
                continue
            count = await self.presence.count(room)
            state.viewers = count
            if self._counted.get(room) == count:
                continue
            self._counted[room] = count
            await self.publish(state, "viewer:count", {"stream_id": room, "count": count}, latest_key="viewers")
            if count > state.peak_viewers:
                state.peak_viewers = count
                async with self.db.tx(SYSTEM) as conn:
                    await streams_db.raise_peak(conn, room, count)
        for room in [r for r in self._counted if r not in self.hub.rooms]:
            del self._counted[room]
            state = self.streams.cached(room)
            if state is not None:  # the last local viewer left: the count is not stuck at its last value
                state.viewers = await self.presence.count(room)

    def react(self, state: StreamState, kind: str) -> None:
        if kind not in REACTION_KINDS:
            raise DomainError("invalid", f"kind must be one of {', '.join(REACTION_KINDS)}")
        counts = self._reactions.setdefault(state.room, {})
        counts[kind] = counts.get(kind, 0) + 1

    async def publish_reactions(self) -> None:
        pending, self._reactions = self._reactions, {}
        for room, counts in pending.items():
            state = self.streams.cached(room)
            if state is None:
                continue
            for k, n in counts.items():
                state.reaction_totals[k] += n
            await self.publish(state, "reactions", {"stream_id": room, "counts": counts,
                                                    "totals": dict(state.reaction_totals)}, latest_key="reactions")

    # ---- seller controls ----

    async def owned(self, principal: Principal, id_or_slug: str) -> StreamState:
        state = await self.streams.get(id_or_slug)
        if not state.is_owner(principal):
            raise forbidden("only the stream's seller can do that")
        return state

    async def set_status(self, principal: Principal, id_or_slug: str, status: str) -> StreamState:
        state = await self.owned(principal, id_or_slug)
        if status == "live" and state.status == "ended":
            raise DomainError("conflict", "an ended stream cannot go live again")
        async with self.db.tx(principal) as conn:
            row = await streams_db.set_status(conn, state.id, status)
        self.streams.refresh_row(state, row)
        if status == "ended":
            state.spotlight = None
        await self.publish(state, "stream:status", {"stream_id": state.id, "status": state.status})
        return state

    async def highlight(self, principal: Principal, id_or_slug: str, product_id: str | None) -> dict | None:
        state = await self.owned(principal, id_or_slug)
        async with self.db.tx(principal) as conn:
            product = None
            if product_id is not None:
                if not streams_db.is_uuid(product_id):
                    raise not_found("product")
                found = await streams_db.products_json(conn, [product_id])
                if not found or found[0]["seller_id"] != state.seller_id:
                    raise not_found("product")
                product = found[0]
                await streams_db.attach_product(conn, state.id, product_id)
            await streams_db.set_spotlight(conn, state.id, product_id)
        state.spotlight = product
        if product is None:
            await self.publish(state, "product:unhighlighted", {"stream_id": state.id})
        else:
            await self.publish(state, "product:highlighted", {"stream_id": state.id, "product": product})
        return product

    async def stock_changed(self, variant_id: str, available: int) -> None:
        """Called by commerce when a variant's availability changes: rooms spotlighting it are told."""
        for state in self.streams.states():  # rooms nobody watches here too: their snapshots must not go stale
            room = state.room
            if state.spotlight is None:
                continue
            for v in state.spotlight["variants"]:
                if v["id"] == variant_id:
                    v["available"] = available
                    await self.publish(state, "stock:update", {
                        "stream_id": room, "product_id": state.spotlight["id"], "variant_id": variant_id,
                        "available": available}, latest_key=f"stock:{variant_id}")
