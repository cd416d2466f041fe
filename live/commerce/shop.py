"""The commerce facade on Services (`services.commerce`): catalog, cart, checkout, orders (and their payment side),
coupons, saved addresses and analytics share one StockBoard (live availability -> the rooms' stock:update);
fulfillment is `shipping` (live/commerce/shipping: carrier, rates, labels, tracking, returns). Three sweepers."""
from __future__ import annotations

import asyncio

from db import Database
from live.commerce.addresses import AddressBook
from live.commerce.admin import AdminDesk
from live.commerce.analytics import Analytics
from live.commerce.cart import CartService
from live.commerce.catalog import CatalogService
from live.commerce.checkout import CheckoutService
from live.commerce.coupons import CouponService
from live.commerce.order_payments import OrderPayments
from live.commerce.orders import OrderService, Push
from live.commerce.payments import PaymentProviders
from live.commerce.payments.base import PaymentEvent
from live.commerce.shipping import Shipping
from live.commerce.stock import StockBoard
from live.config import Settings
from live.jobs import Jobs
from live.rooms.node import RoomService
from live.tasks import cancel_all, every


def reservation_sweep_interval(seconds: int) -> float:
    return max(1.0, min(5.0, seconds / 10))


def unpaid_sweep_interval(seconds: int) -> float:
    return max(2.0, min(60.0, seconds / 10))


RATE_SWEEP_SECONDS = 300.0  # expired shipping rates of every buyer are deleted this often


class Commerce:
    def __init__(self, settings: Settings, db: Database, rooms: RoomService, payments: PaymentProviders,
                 jobs: Jobs, flush_chat=None, push_to_user: Push | None = None, keep_pictures=None):
        self.settings = settings
        self.jobs = jobs
        self.board = StockBoard(rooms.stock_changed)

        async def stream_id(id_or_slug: str) -> str:
            return (await rooms.streams.get(id_or_slug)).id

        def live_reactions(stream_id: str) -> dict | None:
            state = rooms.streams.cached(stream_id)
            return dict(state.reaction_totals) if state is not None else None

        self.cart = CartService(db, settings.cart_reservation_seconds, self.board, stream_id,
                                max_per_buyer=settings.cart_max_per_buyer,
                                hold_cooldown_seconds=settings.cart_hold_cooldown_seconds)
        self.orders = OrderService(db, self.board, payments, push_to_user)
        # the providers' payment events applied to the orders, and the sweep of orders left unpaid
        self.order_payments = OrderPayments(db, self.orders, payments, settings.order_payment_timeout_seconds)
        self.orders.refunds.register(jobs)  # refund.send: the provider calls of the refunds, retried with backoff
        # fulfillment: the process's one carrier (quotes, address checks, labels), rates, seller settings, labels
        # (bought by jobs), voids, manual and carrier tracking, returns; the orders' shipping hooks
        self.shipping = Shipping(settings, db, self.orders)
        self.orders.shipping = self.shipping
        self.checkout = CheckoutService(db, self.board, self.orders, payments, self.shipping.quotes)
        self.catalog = CatalogService(db, self.board, keep_pictures)
        self.coupons = CouponService(db)
        self.addresses = AddressBook(db, self.shipping.carrier)
        self.analytics = Analytics(db, live_reactions, flush_chat)
        self.admin = AdminDesk(db, self.orders)
        self._tasks: list[asyncio.Task] = []

    async def apply_payment_event(self, event: PaymentEvent) -> str:
        """For the payments webhooks: "applied", "ignored" or why it was not applied (see OrderPayments)."""
        return await self.order_payments.apply_payment_event(event)

    def start(self) -> None:
        """The sweepers (an error is logged and the timer goes on)."""
        reservations = reservation_sweep_interval(self.settings.cart_reservation_seconds)
        unpaid = unpaid_sweep_interval(self.settings.order_payment_timeout_seconds)
        self._tasks = [every(lambda: reservations, self.cart.release_expired, "reservation-sweeper"),
                       every(lambda: unpaid, self.order_payments.sweep, "unpaid-order-sweeper"),
                       every(lambda: RATE_SWEEP_SECONDS, self.shipping.quotes.sweep, "shipping-rate-sweeper")]

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []
        await self.cart.batches.stop()
        await self.shipping.close()  # Shippo's HTTP session
