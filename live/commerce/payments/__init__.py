"""Payment providers behind one interface (base.PaymentProvider), chosen by configuration.

Stripe is available with STRIPE_SECRET_KEY, Paystack with PAYSTACK_SECRET_KEY. The built-in sandbox is
available outside production (LIVE_ENV != production): it moves no money, so a production server never offers
it. The default provider is Stripe when configured, else Paystack, else the sandbox.
"""
from __future__ import annotations

from typing import Mapping

from live.commerce.payments.base import (
    PaymentEvent,
    PaymentProvider,
    PaymentRequest,
    PaymentStart,
    RefundRequest,
    RefundResult,
)
from live.commerce.payments.inbox import Apply, Receipt, WebhookInbox
from live.commerce.payments.paystack import PaystackProvider
from live.commerce.payments.sandbox import SandboxProvider
from live.commerce.payments.stripe import StripeProvider
from live.config import Settings
from live.errors import DomainError
from live.jobs import Jobs

KNOWN = ("stripe", "paystack", "sandbox")

__all__ = ["PaymentEvent", "PaymentProvider", "PaymentProviders", "PaymentRequest", "PaymentStart", "RefundRequest",
           "RefundResult"]


class PaymentProviders:
    def __init__(self, settings: Settings, db=None):
        self.inbox = WebhookInbox(db)  # stores verified webhook events once; their jobs process them once
        self._providers: dict[str, PaymentProvider] = {}
        if settings.stripe_secret_key:
            self._providers["stripe"] = StripeProvider(settings.stripe_secret_key, settings.stripe_webhook_secret,
                                                       settings.stripe_api_base)
        if settings.paystack_secret_key:
            self._providers["paystack"] = PaystackProvider(settings.paystack_secret_key, settings.paystack_api_base)
        if settings.live_env != "production":
            self._providers["sandbox"] = SandboxProvider(settings.base_url(), settings.jwt_secret, db,
                                                         receive=lambda body, headers: self.receive("sandbox", body,
                                                                                                    headers))

    def register(self, jobs: Jobs, order_side: Apply) -> None:
        """The order side that applies the stored payment events (commerce's apply_payment_event), in their
        `webhook.process` jobs: registered once by the composition root (live/container.py), since the providers
        are built before the orders that use them."""
        self.inbox.register(jobs, self.get, order_side)

    def names(self) -> list[str]:
        """The providers a checkout may use, in order of preference."""
        return [n for n in KNOWN if n in self._providers]

    def default_name(self) -> str:
        for name in ("stripe", "paystack"):
            if name in self._providers:
                return name
        return "sandbox"

    def get(self, name: str) -> PaymentProvider:
        provider = self._providers.get(name)
        if provider is not None:
            return provider
        if name in KNOWN:
            hint = ("is not offered in production" if name == "sandbox"
                    else f"is not configured (set {name.upper()}_SECRET_KEY)")
            raise DomainError("provider_unavailable", f"payment provider {name} {hint}")
        raise DomainError("provider_unavailable", f"unknown payment provider {name!r}; use one of "
                          f"{', '.join(self.names()) or 'none'}")

    async def receive(self, name: str, body: bytes, headers: Mapping[str, str]) -> Receipt:
        """A provider's webhook handed over in process (the sandbox's refunds): verified by the provider, stored
        once and processed once by its job, as `POST /webhooks/{name}` does."""
        provider = self.get(name)
        return await self.inbox.receive(provider.parse_webhook(body, headers))

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.close()
