"""Fulfillment: carriers (Shippo, the sandbox carrier), rates at checkout, labels bought by jobs, carrier tracking,
the shipment and order status history, and returns. docs/shipping.md.

`Shipping` is the one home of fulfillment that `Commerce` builds (`commerce.shipping`): the process's one carrier
(Shippo with SHIPPO_API_KEY, else the sandbox) and every service that uses it. Its job handlers are registered on
the process's `Jobs` by `register_jobs` (live/container.py); `close` (Commerce.stop) closes the carrier's HTTP
session."""
from __future__ import annotations

from typing import Any

from db import Database
from live.commerce.orders import OrderService
from live.commerce.shipping.carriers import carrier_for
from live.commerce.shipping.labels import Labels
from live.commerce.shipping.quotes import Quotes
from live.commerce.shipping.returns import PUSH_JOB, ReturnService
from live.commerce.shipping.sandbox_run import SandboxRun
from live.commerce.shipping.settings import SellerShippingSettings
from live.commerce.shipping.tracking import JOB as TRACKING_JOB
from live.commerce.shipping.tracking import Tracking
from live.commerce.shipping.voids import Voids
from live.config import Settings

BUY_ATTEMPTS = 60         # runs of one shipping.buy_label job before it is dead (docs/jobs.md)
BUY_MAX_DELAY = 1800.0    # seconds between two of its runs at most


class Shipping:
    def __init__(self, settings: Settings, db: Database, orders: OrderService, carrier: Any = None):
        self.settings = settings
        self.db = db
        self.publish = orders.publish_orders  # order:update after a commit
        self.carrier = carrier if carrier is not None else carrier_for(settings)
        self.quotes = Quotes(db, self.carrier, settings.shipping_rate_ttl_seconds)  # rates for carts, checkout
        self.seller_settings = SellerShippingSettings(db, self.carrier)  # ship-from, parcel, free shipping, ...
        self.labels = Labels(self)  # buy (route, auto-purchase on payment, returns), the buy job
        self.voids = Voids(self)  # void before the first scan, cancel -> void, manual tracking
        self.tracking = Tracking(self)  # carrier webhooks -> events -> shipment and order statuses
        self.sandbox_run = SandboxRun(self)  # the sandbox carrier's timeline, delivered in process
        self.returns = ReturnService(db, orders, self.labels, self.voids)  # requests, return labels, receipts, refunds

    def register_jobs(self, jobs) -> None:
        """The shipping job kinds on the process's Jobs (docs/jobs.md)."""
        # a Shippo outage of up to about a day: 60 runs, 2 s doubling to 30 min apart (jitter 20 %): 20-25 h in all
        jobs.register("shipping.buy_label", self.labels.buy_job, max_attempts=BUY_ATTEMPTS, first_delay=2.0,
                      max_delay=BUY_MAX_DELAY, jitter=0.2)
        jobs.register("shipping.void_label", self.voids.void_job, max_attempts=10, first_delay=2.0, max_delay=600.0)
        jobs.register("shipping.register_tracking", self.voids.register_tracking_job, max_attempts=8,
                      first_delay=5.0, max_delay=3600.0)
        jobs.register("sandbox_carrier.advance", self.sandbox_run.advance_job, max_attempts=5, first_delay=1.0,
                      max_delay=60.0)
        jobs.register(TRACKING_JOB, self.tracking.apply_job, max_attempts=8, first_delay=1.0, max_delay=300.0)
        jobs.register(PUSH_JOB, self.returns.push_job, max_attempts=5, first_delay=1.0, max_delay=60.0)

    async def close(self) -> None:
        """The carrier's HTTP session (Shippo's), at shutdown."""
        close = getattr(self.carrier, "close", None)
        if close is not None:
            await close()
