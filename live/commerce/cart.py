"""The server-side cart: add, change, remove (REST and the live room's cart:* events), reservations that
expire by themselves, and live availability for the rooms.

Adding reserves the units for `cart_reservation_seconds` in one SQL statement (commerce_cart_change). A
variant's latest known availability is kept in memory for a second so that, in a flash sale, buyers arriving
after the last unit answer `out_of_stock` without touching the database; any availability this worker learns
(a release, an expiry, a seller's adjustment) replaces it at once, and it expires after HINT_SECONDS anyway
(changes made by another worker). A retry of an add this worker completed (same idempotency key) always goes
to the database, so it is answered `duplicate` with the cart rather than `out_of_stock`."""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from typing import Awaitable, Callable

from db import Database
from db import cart as cart_db
from db import inventory as inventory_db
from db.inventory import StockLevel
from live.auth.principal import Principal
from live.errors import DomainError, not_found, unauthorized
from live.logging import get_logger

log = get_logger("live.commerce.cart")
MAX_LINE_QTY = 99
GATE_PER_VARIANT = 2
HINT_SECONDS = 1.0
SWEEP_BATCH = 500

StockListener = Callable[[str, int], Awaitable[None]]


def out_of_stock(available: int | None) -> DomainError:
    if not available or available <= 0:
        return DomainError("out_of_stock", "sold out")
    return DomainError("out_of_stock", f"only {available} left")


class StockBoard:
    """What this worker knows of each variant's availability: the newest version it has seen, a short-lived
    hint used only to refuse, and the listener (the rooms' stock:update) told of every newer value."""

    def __init__(self, listener: StockListener | None = None):
        self.listener = listener
        self._known: dict[str, tuple[int, int, float]] = {}  # variant -> (version, available, hint until)

    def refuses(self, variant_id: str, qty: int) -> int | None:
        """The known availability when it is fresh and below qty (answer out_of_stock), else None."""
        known = self._known.get(variant_id)
        if known is not None and known[1] < qty and known[2] > time.monotonic():
            return known[1]
        return None

    async def seen(self, levels: list[StockLevel] | StockLevel) -> None:
        """Record availabilities read from committed changes; publish the ones newer than what we had."""
        for level in levels if isinstance(levels, list) else [levels]:
            known = self._known.get(level.variant_id)
            if known is not None and known[0] >= level.version:
                continue  # an older result reaching us late: never publish it over a newer one
            self._known[level.variant_id] = (level.version, level.available, time.monotonic() + HINT_SECONDS)
            if known is not None and known[1] == level.available:
                continue
            if self.listener is not None:
                try:
                    await self.listener(level.variant_id, level.available)
                except Exception:
                    log.exception("stock_listener_failed", variant_id=level.variant_id)

    def forget(self) -> None:
        self._known.clear()


class Gate:
    """A FIFO semaphore whose enter and leave are O(1) with thousands of waiters."""

    __slots__ = ("free", "waiters", "users")

    def __init__(self, slots: int):
        self.free = slots
        self.waiters: deque[asyncio.Future] = deque()
        self.users = 0

    async def enter(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await fut  # leave() hands its slot over by resolving it
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.leave()  # handed a slot while being cancelled: pass it on
            else:
                self.waiters.remove(fut)
            raise

    def leave(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.free += 1


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
                 resolve_stream: Callable[[str], Awaitable[str]]):
        self._keys = RecentKeys(ttl=max(600.0, reservation_seconds))
        self._gates: dict[str, Gate] = {}
        self.db = db
        self.reservation_seconds = reservation_seconds
        self.board = board
        self._resolve_stream = resolve_stream

    @staticmethod
    def _buyer(principal: Principal) -> str:
        if not principal.authenticated:
            raise unauthorized("sign in to use a cart")
        return principal.user_id

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
        known = self.board.refuses(variant_id, qty)
        if known is not None and not (key and self._keys.seen(user, key)):
            raise out_of_stock(known)  # a retry of an add this worker made goes on, to answer `duplicate`
        stream_id = await self._resolve_stream(stream) if stream else None
        result = await self._change(user, variant_id, "add", qty, stream_id, key)
        if key:
            self._keys.add(user, key)
        return result

    async def set_quantity(self, principal: Principal, variant_id: str, qty: int, *, stream: str | None = None) -> dict:
        user = self._buyer(principal)
        if not 0 <= qty <= MAX_LINE_QTY:
            raise DomainError("invalid", f"qty must be between 0 and {MAX_LINE_QTY}")
        stream_id = await self._resolve_stream(stream) if stream else None
        return await self._change(user, variant_id, "set", qty, stream_id, None)

    async def remove(self, principal: Principal, variant_id: str) -> dict:
        return await self._change(self._buyer(principal), variant_id, "set", 0, None, None)

    async def _change(self, user: str, variant_id: str, mode: str, qty: int, stream_id: str | None,
                      key: str | None) -> dict:
        """At most GATE_PER_VARIANT changes of one variant at a time go to the database (they would queue on
        its row lock there anyway); the others wait here in order, holding no pooled connection, and once let
        in most of them are answered from what the ones before them learned."""
        gate = self._gates.get(variant_id)
        if gate is None:
            gate = self._gates[variant_id] = Gate(GATE_PER_VARIANT)
        gate.users += 1
        try:
            await gate.enter()
            try:
                return await self._change_now(user, variant_id, mode, qty, stream_id, key)
            finally:
                gate.leave()
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._gates[variant_id]

    async def _change_now(self, user: str, variant_id: str, mode: str, qty: int, stream_id: str | None,
                          key: str | None) -> dict:
        if mode == "add" and not (key and self._keys.seen(user, key)):
            # asked again now that it is our turn: in a flash sale thousands wait, and the answer for most of
            # them became known while they waited
            known = self.board.refuses(variant_id, qty)
            if known is not None:
                raise out_of_stock(known)
        async with self.db.pool.acquire() as conn:
            r = await inventory_db.cart_change(conn, user, variant_id, mode, qty, stream_id, key,
                                               self.reservation_seconds, MAX_LINE_QTY)
            status = r["status"]
            cart = None
            if status in ("ok", "duplicate"):  # committed: the row lock is gone, the cart is read after it
                cart = await cart_db.by_id(conn, r.get("cart_id")) or cart_db.EMPTY
        if "version" in r and r.get("available") is not None:
            await self.board.seen(StockLevel(variant_id, r["available"], r["version"]))
        if status == "ok":
            return {"cart": cart}
        if status == "duplicate":
            return {"cart": cart, "duplicate": True}
        if status == "out_of_stock":
            raise out_of_stock(r.get("available"))
        if status == "not_found":
            raise not_found("variant")
        if status == "not_in_cart":
            raise DomainError("not_found", "this variant is not in your cart")
        if status == "currency_mismatch":
            raise DomainError("conflict", f"your cart is in {r['currency']}: check it out or empty it first")
        if status == "too_many":
            raise DomainError("invalid", f"at most {MAX_LINE_QTY} of one variant per cart")
        raise RuntimeError(f"unexpected cart change status {status!r}")

    # ---- expiry ----

    async def release_expired(self) -> int:
        """Return every expired reservation to stock (in batches); the number of variants changed."""
        changed = 0
        while True:
            levels = await inventory_db.release_expired(self.db, SWEEP_BATCH)
            if not levels:
                return changed
            changed += len(levels)
            await self.board.seen(levels)
