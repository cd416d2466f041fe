"""The server-side cart: add, change, remove (REST and the live room's cart:* events), reservations that
expire by themselves, and live availability for the rooms.

Every change of a variant goes through one queue per variant (stock.Batches): the changes that wait together
are applied in one SQL statement (commerce_cart_changes), in arrival order. An add is first checked against
the variant's latest known availability (stock.StockBoard), on arrival and again when its turn comes, so in a
flash sale the buyers after the last unit are answered `out_of_stock` without the database. A retry of an add
this worker completed (same idempotency key) always goes to the database, so it is answered `duplicate` with
the cart rather than `out_of_stock`. A change by a user who does not exist is refused `unauthorized` (`unknown
user`) and changes nothing; in a batch, it fails alone (stock.Batches splits the batch)."""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Awaitable, Callable, NamedTuple

import asyncpg

from db import Database
from db import cart as cart_db
from db import inventory as inventory_db
from db.inventory import CartChange, CartLimits, StockLevel
from live.auth import policy
from live.auth.principal import SYSTEM, Principal
from live.commerce.stock import Batches, StockBoard, out_of_stock
from live.errors import DomainError, UnknownUser, not_found
from live.ids import is_uuid
from live.logging import get_logger

log = get_logger("live.commerce.cart")
MAX_LINE_QTY = 99
SWEEP_BATCH = 500
# the buyer's foreign key in the cart statement: it creates the buyer's cart before writing anything else, so a
# token of a user who does not exist (deleted, or never was) fails there. REST looks the user up first
# (Services.authenticate, remembered KNOWN_SECONDS); the room's cart events do not (no query per add)
BUYER_FK = "carts_user_id_fkey"


class Pending(NamedTuple):
    change: CartChange
    retry: bool  # an add this worker completed before (same key): never refused from the hint


class RecentKeys:
    """Idempotency keys of adds this worker completed recently (bounded), so that a retry is not refused from
    the in-memory hint but reaches the database and is answered `duplicate` with the cart."""

    def __init__(self, ttl: float = 600.0, limit: int = 100_000):
        self.ttl, self.limit = ttl, limit
        self._keys: OrderedDict[tuple[str, str], float] = OrderedDict()

    def add(self, user: str, key: str) -> None:
        self._keys[(user, key)] = time.monotonic() + self.ttl
        self._keys.move_to_end((user, key))
        while len(self._keys) > self.limit:
            self._keys.popitem(last=False)

    def seen(self, user: str, key: str) -> bool:
        until = self._keys.get((user, key))
        return until is not None and until > time.monotonic()


class CartService:
    def __init__(self, db: Database, reservation_seconds: int, board: StockBoard,
                 resolve_stream: Callable[[str], Awaitable[str]], *, max_per_buyer: int = 5,
                 hold_cooldown_seconds: int = 3600):
        self._keys = RecentKeys(ttl=max(600.0, reservation_seconds))
        self.db = db
        self.limits = CartLimits(reservation_seconds, MAX_LINE_QTY, max_per_buyer, hold_cooldown_seconds)
        self.board = board
        self._resolve_stream = resolve_stream
        self.batches: Batches[Pending, dict] = Batches(self._apply, self._screen)

    @staticmethod
    def _buyer(principal: Principal) -> str:
        return policy.signed_in(principal, "sign in to use a cart").user_id

    async def get(self, principal: Principal) -> dict:
        user = self._buyer(principal)
        async with self.db.tx(principal) as conn:
            cart = await cart_db.active_json(conn, user)
        return cart or cart_db.EMPTY

    async def add(self, principal: Principal, variant_id: str, qty: int, *, stream: str | None = None,
                  key: str | None = None) -> dict:
        user = self._buyer(principal)
        if not 1 <= qty <= MAX_LINE_QTY:
            raise DomainError("invalid", f"qty must be between 1 and {MAX_LINE_QTY}")
        retry = bool(key and self._keys.seen(user, key))
        known = None if retry else self.board.refuses(variant_id, qty)
        if known is not None:
            raise out_of_stock(known)
        stream_id = await self._stream(stream)
        result = self._outcome(await self.batches.submit(
            variant_id, Pending(CartChange(user, "add", qty, stream_id, key), retry)))
        if key:
            self._keys.add(user, key)
        return result

    async def set_quantity(self, principal: Principal, variant_id: str, qty: int, *, stream: str | None = None) -> dict:
        user = self._buyer(principal)
        if not 0 <= qty <= MAX_LINE_QTY:
            raise DomainError("invalid", f"qty must be between 0 and {MAX_LINE_QTY}")
        stream_id = await self._stream(stream)
        return self._outcome(await self.batches.submit(
            variant_id, Pending(CartChange(user, "set", qty, stream_id), False)))

    async def remove(self, principal: Principal, variant_id: str) -> dict:
        user = self._buyer(principal)
        return self._outcome(await self.batches.submit(variant_id, Pending(CartChange(user, "set", 0), False)))

    async def _stream(self, stream: str | None) -> str | None:
        """The stream an add names (id or slug) as an id, for attribution only: the statement keeps it only if the
        stream is live and shows the product; an unknown slug is no stream (never an error: the add goes on)."""
        if not stream:
            return None
        if is_uuid(stream):
            return stream.lower()
        try:
            return await self._resolve_stream(stream)
        except DomainError:
            return None

    def _screen(self, variant_id: str, p: Pending) -> dict | None:
        """Asked again when the change's turn comes: in a flash sale thousands wait, and the answer for most of
        them became known while they waited."""
        if p.change.mode == "add" and not p.retry:
            known = self.board.refuses(variant_id, p.change.qty)
            if known is not None:
                return {"status": "out_of_stock", "available": known}
        return None

    async def _apply(self, variant_id: str, batch: list[Pending]) -> list[dict]:
        """One statement for the batch. The newest availability is published at once (the buyers arriving
        meanwhile are refused from it); then the carts of the changes done are read after the commit (the row
        lock is gone by then), in one query on the same connection."""
        async with self.db.pool.acquire() as conn:
            try:
                results = await inventory_db.cart_changes(conn, variant_id, [p.change for p in batch], self.limits)
            except asyncpg.ForeignKeyViolationError as exc:
                if exc.constraint_name == BUYER_FK:  # a buyer with no users row: the batch is split to find it
                    raise UnknownUser() from None
                raise
            versioned = [r for r in results if r["version"] is not None and r["available"] is not None]
            if versioned:
                newest = max(versioned, key=lambda r: r["version"])
                await self.board.seen([StockLevel(variant_id, newest["available"], newest["version"])])
            carts = await cart_db.by_ids(conn, list({r["cart_id"] for r in results if r["cart_id"]}))
        for r in results:
            if r["status"] in ("ok", "duplicate"):
                r["cart"] = carts.get(r["cart_id"]) or cart_db.EMPTY
        return results

    @staticmethod
    def _outcome(r: dict) -> dict:
        status = r["status"]
        if status == "ok":
            return {"cart": r["cart"]}
        if status == "duplicate":
            return {"cart": r["cart"], "duplicate": True}
        if status == "out_of_stock":
            raise out_of_stock(r.get("available"))
        if status == "not_found":
            raise not_found("variant")
        if status == "not_in_cart":
            raise DomainError("not_found", "this variant is not in your cart")
        if status == "currency_mismatch":
            raise DomainError("conflict", f"your cart is in {r['detail']}: check it out or empty it first")
        if status == "too_many":
            raise DomainError("limit_exceeded", f"at most {r['detail']} of this item per buyer")
        if status == "hold_expired":
            raise DomainError("hold_expired", "your hold on this item has ended: check out to buy it if it is still "
                              f"available, or hold it again after {r['detail']}")
        raise RuntimeError(f"unexpected cart change status {status!r}")

    # ---- expiry ----

    async def release_expired(self) -> int:
        """Return every expired reservation to stock (in batches); the number of variants changed. Holds past
        their cool-down are forgotten on the way (one batch a round)."""
        async with self.db.tx(SYSTEM) as conn:
            await cart_db.purge_holds(conn, self.limits.cooldown, SWEEP_BATCH)
        changed = 0
        while True:
            levels = await inventory_db.release_expired(self.db, SWEEP_BATCH)
            if not levels:
                return changed
            changed += len(levels)
            await self.board.seen(levels)
