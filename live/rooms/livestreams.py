"""Livestreams as records: listed, read, created, edited and given products (the REST routes of
live/http/streams.py call these). Every change of a stream's editable fields, slow mode included, goes through
`change`: REST PATCH by the stream's seller and the socket's `chat:slowmode` by a moderator (ChatService.slow_mode)
alike. Going live, ending and the spotlight are the room's own (RoomService.set_status, highlight)."""
from __future__ import annotations

from asyncpg import Record

from db import Database, audit
from db import streams as streams_db
from db import users as users_db
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.errors import DomainError, not_found
from live.ids import is_uuid
from live.notify.schedule import enqueue_reminder
from live.rooms import events
from live.rooms.node import RoomService
from live.rooms.state import StreamState

SLOW_MODE = "slow_mode_seconds"


class Livestreams:
    def __init__(self, db: Database, rooms: RoomService, *, reminder_minutes: int = 15):
        self.db, self.rooms = db, rooms
        self.reminder_minutes = reminder_minutes  # followers reminded this long before a scheduled start

    async def listing(self, principal: Principal, status: str, limit: int, seller_id: str | None) -> list[Record]:
        async with self.db.tx(principal) as conn:
            return await streams_db.list_by_status(conn, status, limit, seller_id)

    async def get(self, principal: Principal, id_or_slug: str) -> tuple[Record, int]:
        """The stream's row and its viewers now (0 when this worker holds no state of it)."""
        async with self.db.tx(principal) as conn:
            row = await _row(conn, id_or_slug)
        state = self.rooms.streams.cached(row["id"])
        return row, state.viewers if state else 0

    async def create(self, principal: Principal, fields: dict, product_ids: list[str]) -> Record:
        """A stream of the caller's shop (a 409 conflict when the slug is taken), with its first products."""
        _check_ids(product_ids)
        async with self.db.tx(principal) as conn:
            seller = policy.has_shop(await users_db.seller_for_user(conn, principal.user_id))
            if await streams_db.get(conn, fields["slug"]) is not None:
                raise DomainError("conflict", "a stream with this slug exists")
            row = await streams_db.create(conn, seller["id"], fields)
            await enqueue_reminder(conn, row, self.reminder_minutes)  # when scheduled in the future
            if product_ids:
                await _attach(conn, row, product_ids)
        return row

    async def products(self, principal: Principal, id_or_slug: str) -> tuple[Record, list[dict]]:
        """The stream's row and its products with live stock."""
        async with self.db.tx(principal) as conn:
            row = await _row(conn, id_or_slug)
            return row, await streams_db.products_json(conn, await streams_db.product_ids(conn, row["id"]))

    async def attach(self, principal: Principal, id_or_slug: str, product_ids: list[str]) -> list[str]:
        """Attach products of the stream's own seller; the stream's product ids after."""
        _check_ids(product_ids)
        async with self.db.tx(principal) as conn:
            row = await _own(conn, principal, id_or_slug)
            await _attach(conn, row, product_ids)
            return await streams_db.product_ids(conn, row["id"])

    async def update(self, principal: Principal, id_or_slug: str, fields: dict) -> Record:
        """REST PATCH by the stream's seller or an admin."""
        state = await self.rooms.streams.get(id_or_slug)  # loaded, so the change reaches the other workers' copies
        policy.stream_seller(principal, state.seller_user_id, "only the stream's seller can change it")
        return await self.change(principal, state, fields)

    async def change(self, principal: Principal, state: StreamState, fields: dict, *,
                     by_moderator: bool = False) -> Record:
        """Write the fields (authorized by the caller), audit and announce: a `stream.update` row with what changed,
        a `stream.slow_mode` row when slow mode changed, then the room's copy refreshed and, for slow mode, the room
        told (`chat:slowmode`). by_moderator (the socket's chat:slowmode): written as the system, since row-level
        security lets only the seller update the row and the moderator's permission was checked already; audited
        as `stream.slow_mode` alone and announced even when the value stays."""
        async with self.db.tx(SYSTEM if by_moderator else principal) as conn:
            before = await streams_db.get(conn, state.id)
            row = await streams_db.update(conn, state.id, fields)
            if "scheduled_at" in fields and row["scheduled_at"] != before["scheduled_at"]:  # rescheduled
                await enqueue_reminder(conn, row, self.reminder_minutes)
            was, now = audit.changed({k: before[k] for k in fields}, {k: row[k] for k in fields})
            if now and not by_moderator:
                await audit.record(conn, principal.user_id, "stream.update", "livestream", row["id"],
                                   before=was, after=now)
            slow_mode = by_moderator or SLOW_MODE in now
            if slow_mode:  # one action for slow mode however it was set, to find it under its name
                await audit.record(conn, principal.user_id, "stream.slow_mode", "livestream", row["id"],
                                   before={SLOW_MODE: before[SLOW_MODE]}, after={SLOW_MODE: row[SLOW_MODE]})
        self.rooms.streams.refresh_row(state, row)
        if slow_mode:
            await self.rooms.publish(state, events.CHAT_SLOWMODE, {"stream_id": state.id, "seconds": row[SLOW_MODE]})
        return row


async def _row(conn, id_or_slug: str) -> Record:
    """The stream of an id or slug, or 404."""
    row = await streams_db.get(conn, id_or_slug)
    if row is None:
        raise not_found("stream")
    return row


async def _own(conn, principal: Principal, id_or_slug: str) -> Record:
    row = await _row(conn, id_or_slug)
    policy.stream_seller(principal, row["seller_user_id"], "only the stream's seller can change it")
    return row


def _check_ids(ids: list[str]) -> None:
    if not all(map(is_uuid, ids)):
        raise DomainError("invalid", "product_ids must be uuids")


async def _attach(conn, row: Record, product_ids: list[str]) -> None:
    if await streams_db.count_owned_products(conn, row["seller_id"], product_ids) != len(set(product_ids)):
        raise DomainError("invalid", "every product must be one of your own")
    await streams_db.attach_products(conn, row["id"], product_ids)
