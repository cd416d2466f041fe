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
from collections import OrderedDict
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
        r = await inventory_db.cart_change(self.db, user, variant_id, mode, qty, stream_id, key,
                                           self.reservation_seconds, MAX_LINE_QTY)
        status = r["status"]
        if "version" in r and r.get("available") is not None:
            await self.board.seen(StockLevel(variant_id, r["available"], r["version"]))
        if status == "ok":
            return {"cart": r["cart"]}
        if status == "duplicate":
            return {"cart": r["cart"] or cart_db.EMPTY, "duplicate": True}
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

    async def run_sweeper(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.release_expired()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reservation_sweep_failed")
