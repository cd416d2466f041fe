"""The room node (`RoomService`, the room layer's orchestrator, as Centrifuge's node.go): join with snapshot or
recovery, leave, viewer counts, reactions, stream control, spotlight and stock updates. Transport-independent: the
Socket.IO gateway and REST routes call it.

The broker hands every room event this worker receives to `on_event`, which applies it to the cached room
state (so the state of a followed room is current on every worker, whoever published) and then to the hub.

When another worker changes a stream's row it announces it and this worker reads the row again
(`reload_soon`). Such a read can finish after room events this worker applied meanwhile (slow mode set to 30, then
back to 0 a few milliseconds later: the read of 30 lands after the event of 0), so the events applied while the
row was being read are applied again on top of it; and a request that comes while a read is in flight (that read
may predate the change) reads the row once more after it."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson

from db import Database, audit
from db import analytics as analytics_db
from db import streams as streams_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.errors import DomainError, not_found
from live.ids import is_uuid
from live.logging import get_logger
from live.media.embedded import EmbeddedMedia
from live.media.livekit import LiveKitTokens
from live.notify.follows import enqueue_live_now
from live.rooms import events
from live.rooms.broker import Broker, Envelope
from live.rooms.events import RoomListener
from live.rooms.hub import Hub
from live.rooms.presence import Presence
from live.rooms.state import REACTION_KINDS, StreamRegistry, StreamState
from live.rooms.transport import LeanSocket
from live.tasks import cancel_all, every

log = get_logger("live.rooms")
COUNT_INTERVAL = 1.0
REACTION_INTERVAL = 0.25
REACTION_SAVE_INTERVAL = 5.0  # seconds between stores of the cumulative reaction totals
VIEWER_SAMPLE_SECONDS = 30  # a live stream's viewer count stored once per slot of this many seconds (analytics)
UNSUBSCRIBE_DELAY = 5.0
RECOVERY_TRIES = 5
STATUS_FIELDS = ("status", "started_at", "ended_at", "spotlight_product_id")  # what start and end change


class RoomService:
    def __init__(self, db: Database, hub: Hub, presence: Presence, streams: StreamRegistry, media: LiveKitTokens,
                 broker: Broker, listener: RoomListener | None = None, embedded: EmbeddedMedia | None = None):
        """`listener` is the transport (the gateway) told about what it must do on this worker; a process
        without sockets (the CLI) has none. `embedded` is the embedded media server (WHIP/WHEP), which serves the
        video when LiveKit is not configured (`media.enabled` false). The container registers this service as the
        broker's handler."""
        self.db, self.hub, self.presence, self.streams, self.media = db, hub, presence, streams, media
        self.embedded = embedded
        self._media_rooms: set[str] = set()  # rooms followed because this worker holds their publisher (WHIP)
        self._media_tasks: set[asyncio.Task] = set()
        if embedded is not None:  # a publisher observer (server.py): the room followed while its publisher is here
            embedded.observers.append(SimpleNamespace(started=lambda s: self.follow_media(s.stream_id, True),
                                                      ended=lambda s: self.follow_media(s.stream_id, False)))
        self.broker, self.listener = broker, listener
        self._reactions: dict[str, dict[str, int]] = {}
        self._unsubscribe: dict[str, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task] = []
        self._reloads: dict[str, asyncio.Task] = {}  # room -> its row being read again (reload_soon)
        self._reload_again: set[str] = set()  # rooms asked to reload while their read was in flight
        self._applied: dict[str, list[Envelope]] = {}  # room -> room events applied while its row is read

    # ---- lifecycle ----

    def start(self) -> None:
        self._tasks = [every(lambda: COUNT_INTERVAL, self.publish_counts, "viewer-counts"),
                       every(lambda: REACTION_INTERVAL, self.publish_reactions, "reactions"),
                       every(lambda: REACTION_SAVE_INTERVAL, self.save_reactions, "reaction-totals"),
                       every(lambda: VIEWER_SAMPLE_SECONDS, self.save_viewer_samples, "viewer-samples")]

    async def stop(self) -> None:
        await cancel_all([*self._tasks, *self._reloads.values(), *self._media_tasks])
        await self.presence.leave_all()  # this worker's viewers stop counting now, not after a timeout

    # ---- room events received by this worker ----

    def on_event(self, room: str, env: Envelope) -> None:
        """The broker's subscriber: update the room's state, then deliver to local viewers."""
        if env.event in events.STATEFUL:
            state = self.streams.cached(room)
            if state is not None:
                self._apply_logged(state, env)
                applied = self._applied.get(room)
                if applied is not None:
                    applied.append(env)
        self.hub.deliver(room, env)

    def _apply_logged(self, state: StreamState, env: Envelope) -> None:
        try:
            self.apply(state, env)
        except Exception:
            log.exception("room_event_apply_failed", room_event=env.event)

    # ---- the control channel's handler (live/rooms/control.py) ----

    def on_user_push(self, user_id: str, packet: bytes) -> None:
        if self.listener is not None:
            self.listener.deliver_to_user(user_id, packet)

    def on_users_push(self, pushes: list[tuple[str, bytes]]) -> None:
        if self.listener is not None:
            for user_id, packet in pushes:
                self.listener.deliver_to_user(user_id, packet)

    def on_reload(self, stream_id: str) -> None:
        self.reload_soon(stream_id)

    def reload_soon(self, room: str) -> asyncio.Task | None:
        """Another worker changed this stream's row (the broker's control message): read it again, if it is
        loaded here. Returns the task that reads it (the one in flight, when there is one: it reads the row
        once more after its current read), or None."""
        if self.streams.cached(room) is None:
            return None
        task = self._reloads.get(room)
        if task is not None:
            self._reload_again.add(room)  # the read in flight may have started before that change
            return task
        task = self._reloads[room] = asyncio.get_running_loop().create_task(self._reload_row(room))
        return task

    async def _reload_row(self, room: str) -> None:
        try:
            while (state := self.streams.cached(room)) is not None:
                self._reload_again.discard(room)
                applied = self._applied[room] = []
                try:
                    await self.streams.reload(state)
                finally:
                    del self._applied[room]
                for env in applied:  # newer than what the read may have found: they stay
                    self._apply_logged(state, env)
                if room not in self._reload_again:
                    return
        except Exception:
            log.exception("room_reload_failed", room=room)
        finally:
            self._reloads.pop(room, None)
            self._reload_again.discard(room)

    def apply(self, state: StreamState, env: Envelope) -> None:
        """Apply a room event to the room's state (live/rooms/events.py); a ban also makes the listener (the
        gateway) take the banned user's sockets here out of the room."""
        data = orjson.loads(env.packet[2:])[1]
        events.apply(state, env.event, data)
        if env.event == events.USER_BANNED and self.listener is not None:
            self.listener.kick_banned(state.room, data["user_id"])
        self._media_event(env.event, data)

    # ---- the embedded media server follows the stream's moderation and life ----

    def _media_event(self, event: str, data: dict) -> None:
        """A ban ends the banned user's WHEP sessions of the stream held here; the end of the stream ends its
        WHIP session and its viewers here (the worker holding them follows the room: `follow_media`)."""
        media = self.embedded
        if media is None:
            return
        if event == events.USER_BANNED and media.holds(data["stream_id"], data["user_id"]):
            self._media_task(media.ban(data["stream_id"], data["user_id"]))
        elif event == events.STREAM_STATUS and data["status"] == "ended" and media.holds(data["stream_id"]):
            self._media_task(media.end_stream(data["stream_id"]))

    def _media_task(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._media_tasks.add(task)
        task.add_done_callback(self._media_tasks.discard)

    async def follow_media(self, room: str, publishing: bool) -> None:
        """This worker's publisher of the room came up (`publishing`) or ended. While it publishes, the worker
        receives the room's events (a shared broker's subscription) even with no socket of the room here, so a
        ban or the end of the stream reaches its sessions."""
        if publishing:
            self._media_rooms.add(room)
            timer = self._unsubscribe.pop(room, None)
            if timer is not None:
                timer.cancel()
            if self.streams.cached(room) is None:
                await self.streams.get(room)
            if not self.broker.follows(room):
                await self.broker.subscribe(room)
            if room not in self._media_rooms:  # the publisher ended while this awaited: do not follow for good
                self._schedule_unsubscribe(room)
            # the stream may have ended before this worker followed the room (an event it did not receive)
            state = await self.streams.reload(await self.streams.get(room))
            if state.status == "ended" and self.embedded is not None:
                self._media_task(self.embedded.end_stream(room))
        else:
            self._media_rooms.discard(room)
            self._schedule_unsubscribe(room)

    async def on_follow(self, room: str, history: list[Envelope]) -> None:
        """A shared broker starts (again) receiving this room's events: what this worker knew may be stale.
        Reload the state from the database, add the chat the history has and the writers may not have
        stored yet, and take the reaction totals from the broker."""
        state = self.streams.cached(room)
        if state is None:
            return
        await self.streams.reload(state)
        for env in history:
            if env.event in (events.CHAT_NEW, events.CHAT_DELETED):
                self.apply(state, env)
        state.recent = type(state.recent)(sorted(state.recent, key=lambda m: (m["ts"], m["id"])),
                                          maxlen=state.recent.maxlen)
        totals = await self.broker.totals(room, "totals")
        if totals:
            state.reaction_totals.update(totals)

    # ---- join / leave ----

    async def join(self, sid: str, sock: LeanSocket, principal: Principal, state: StreamState,
                   last_seq: int | None, epoch: str | None) -> dict:
        """Put the socket in the room (the state from `streams.get`) and make its ack: the events it missed
        since last_seq when the history still has them all, else a snapshot."""
        if principal.user_id is not None and principal.user_id in state.bans:
            raise DomainError("banned", "you are banned from this stream")
        room = state.room
        timer = self._unsubscribe.pop(room, None)
        if timer is not None:
            timer.cancel()
        if self.hub.local_count(room) == 0:
            await self.broker.subscribe(room)  # a shared broker reloads the state as it starts following
            if principal.user_id is not None and principal.user_id in state.bans:
                self._schedule_unsubscribe(room)
                raise DomainError("banned", "you are banned from this stream")
        missed = None
        if last_seq is not None and epoch == self.broker.epoch:
            for _ in range(RECOVERY_TRIES):  # a shared broker reads its history with a round trip: events
                missed, seq = await self.broker.since(room, last_seq)  # delivered meanwhile must be included
                if missed is None or seq == await self.broker.current(room):
                    break
            else:
                missed = None
        seq = await self.broker.current(room)  # no await between this, the snapshot and hub.add
        self.hub.add(room, sid, sock, seq)
        ack: dict = {"seq": seq, "epoch": self.broker.epoch}
        if missed is not None:
            ack["recovered"] = True
            ack["events"] = [orjson.loads(e.packet[2:]) for e in missed]  # [[event, data], ...] in seq order
        else:
            ack["recovered"] = False
            ack.update(self.snapshot(state))
        ack["media"] = self._media(sid, principal, state)
        return ack

    def _media(self, sid: str, principal: Principal, state: StreamState) -> dict:
        """The ack's `media`: LiveKit's URL and a token when LiveKit is configured, else the embedded server's
        WHEP endpoint (and WHIP for the stream's seller or an admin)."""
        publisher = policy.owns(principal, state.seller_user_id)
        if not self.media.enabled:
            return EmbeddedMedia.media_for(state.id, publisher)
        identity = principal.user_id or f"anon-{sid}"
        return self.media.media_for(state.livekit_room, identity, principal.name or "viewer", publisher=publisher)

    def media_refresh(self, sid: str, principal: Principal, state: StreamState, *, joined: bool) -> dict:
        """The join ack's `media` again for a socket in the room (`media:refresh`: a new LiveKit token; the
        embedded server's endpoints, which need none); a banned user gets none."""
        if principal.user_id is not None and principal.user_id in state.bans:
            raise DomainError("banned", "you are banned from this stream")
        if not joined:
            raise DomainError("invalid", "join the stream first")
        return self._media(sid, principal, state)

    def snapshot(self, state: StreamState) -> dict:
        return {"stream": state.public(), "viewers": state.viewers, "spotlight": state.spotlight,
                "chat": list(state.recent), "reactions": dict(state.reaction_totals)}

    def leave(self, room: str, sid: str) -> None:
        if self.hub.remove(room, sid):
            self._schedule_unsubscribe(room)

    def _schedule_unsubscribe(self, room: str) -> None:
        if room not in self._unsubscribe and self.hub.local_count(room) == 0 and room not in self._media_rooms:
            loop = asyncio.get_running_loop()
            self._unsubscribe[room] = loop.call_later(UNSUBSCRIBE_DELAY, self._maybe_unsubscribe, room)

    def _maybe_unsubscribe(self, room: str) -> None:
        self._unsubscribe.pop(room, None)
        if self.hub.local_count(room) == 0 and room not in self._media_rooms:
            asyncio.get_running_loop().create_task(self.broker.unsubscribe(room))

    async def publish(self, state: StreamState, event: str, data: dict, *, latest_key: str | None = None):
        """Publish a room event; the state takes it when the broker delivers it (`on_event`), and the events of
        events.AT_ONCE also here and now (a shared broker delivers them when Redis sends them back)."""
        env = await self.broker.publish(state.room, event, data, latest_key=latest_key)
        if env is not None and event in events.AT_ONCE and self.broker.shared:
            self._apply_logged(state, env)
        return env

    # ---- viewer counts and reactions (timers, not per event) ----

    async def publish_counts(self) -> None:
        local = {room: len(r.members) for room, r in self.hub.rooms.items()}  # presence adds the rooms left
        for room, (count, announce) in (await self.presence.tally(local)).items():
            self.hub.set_audience(room, count)  # the sweep's budget divided by this worker's share of the room
            state = self.streams.cached(room)
            if state is None:
                continue
            state.viewers = count
            if not announce:
                continue
            # a shared broker drops it if another worker announced a newer total meanwhile (presence.py)
            await self.broker.publish(room, events.VIEWER_COUNT, {"stream_id": room, "count": count},
                                      latest_key="viewers", guard=self.presence.announce_guard(room, count))
            if count > state.peak_viewers:
                state.peak_viewers = count
                async with self.db.tx(SYSTEM) as conn:
                    await streams_db.raise_peak(conn, room, count)

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
            increments = {k: counts.get(k, 0) for k in REACTION_KINDS}  # every kind: totals list them all
            await self.broker.publish(room, events.REACTIONS, {"stream_id": room, "counts": counts},
                                      latest_key="reactions",
                                      counters=("totals", increments, dict(state.reaction_totals)))

    async def save_reactions(self) -> None:
        """Store the rooms' cumulative reaction totals that changed since last stored (seller analytics, and the
        totals a room starts from after a restart)."""
        for state in self.streams.states():
            totals = dict(state.reaction_totals)
            if totals != state.reactions_saved:
                async with self.db.tx(SYSTEM) as conn:
                    await streams_db.save_reaction_totals(conn, state.id, totals)
                state.reactions_saved = totals

    async def save_viewer_samples(self) -> None:
        """Store the viewer count of every live stream this worker has viewers of, in one statement (nothing
        when no stream is watched). `state.viewers` is the stream's total over every worker (the presence tally of
        publish_counts); another worker writing the same 30 s slot leaves one row (db/analytics.py)."""
        samples = [(s.id, s.viewers) for s in self.streams.states()  # a room of the hub has viewers here
                   if s.status == "live" and s.viewers > 0 and s.room in self.hub.rooms]
        if samples:
            async with self.db.tx(SYSTEM) as conn:
                await analytics_db.save_viewer_samples(conn, samples, VIEWER_SAMPLE_SECONDS)

    # ---- seller controls ----

    async def owned(self, principal: Principal, id_or_slug: str) -> StreamState:
        state = await self.streams.get(id_or_slug)
        policy.stream_seller(principal, state.seller_user_id)
        return state

    async def set_status(self, principal: Principal, id_or_slug: str, status: str) -> StreamState:
        state = await self.owned(principal, id_or_slug)
        if status == "live" and state.status == "ended":
            raise DomainError("conflict", "an ended stream cannot go live again")
        async with self.db.tx(principal) as conn:
            before = await streams_db.get(conn, state.id)
            row = await streams_db.set_status(conn, state.id, status)
            was, now = audit.changed({f: before[f] for f in STATUS_FIELDS}, {f: row[f] for f in STATUS_FIELDS})
            await audit.record(conn, principal.user_id, "stream.start" if status == "live" else "stream.end",
                               "livestream", state.id, before=was, after=now)
            if status == "live" and before["status"] != "live":  # followers told by a job (live/notify/follows.py)
                await enqueue_live_now(conn, state.id)
                await self.media.rooms.enqueue_egress(conn, state.id, state.livekit_room)  # LIVEKIT_EGRESS records it
            if status == "ended" and before["status"] != "ended":  # LiveKit room and ingress deleted by jobs
                await self.media.rooms.enqueue_ended(conn, state.id, state.livekit_room)
        self.streams.refresh_row(state, row)
        await self.publish(state, events.STREAM_STATUS, {"stream_id": state.id, "status": state.status})
        return state

    async def highlight(self, principal: Principal, id_or_slug: str, product_id: str | None) -> dict | None:
        state = await self.owned(principal, id_or_slug)
        async with self.db.tx(principal) as conn:
            product = None
            if product_id is not None:
                if not is_uuid(product_id):
                    raise not_found("product")
                found = await streams_db.products_json(conn, [product_id])
                if not found or found[0]["seller_id"] != state.seller_id:
                    raise not_found("product")
                product = found[0]
                await streams_db.attach_product(conn, state.id, product_id)
            await streams_db.set_spotlight(conn, state.id, product_id)
        if product is None:
            await self.publish(state, events.PRODUCT_UNHIGHLIGHTED, {"stream_id": state.id})
        else:
            await self.publish(state, events.PRODUCT_HIGHLIGHTED, {"stream_id": state.id, "product": product})
        return product

    async def stock_changed(self, variant_id: str, available: int) -> None:
        """Called by commerce when a variant's availability changes: rooms spotlighting it are told (every
        worker that has the room's state applies the event to its spotlight, see `apply`)."""
        if self.broker.shared:  # other workers may hold rooms this one never loaded: ask the database
            async with self.db.tx(SYSTEM) as conn:
                spotlit = await streams_db.streams_spotlighting(conn, variant_id)
        else:  # rooms nobody watches too: their snapshots must not go stale
            spotlit = [(s.room, s.spotlight["id"]) for s in self.streams.states()
                       if s.spotlight is not None and any(v["id"] == variant_id for v in s.spotlight["variants"])]
        for stream_id, product_id in spotlit:
            await self.broker.publish(stream_id, events.STOCK_UPDATE, {
                "stream_id": stream_id, "product_id": product_id, "variant_id": variant_id,
                "available": available}, latest_key=f"stock:{variant_id}")
