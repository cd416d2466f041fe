"""The carriers behind one interface (base.Carrier): Shippo when SHIPPO_API_KEY is set, else the sandbox carrier."""
from __future__ import annotations

import aiohttp

from live.commerce.shipping.carriers.base import (
    TRACKING_STATUSES,
    Address,
    Carrier,
    CarrierError,
    Label,
    Parcel,
    Rate,
    TrackingEvent,
    WebhookRejected,
)
from live.commerce.shipping.carriers.sandbox import SandboxCarrier, signing_key
from live.config import Settings

__all__ = ["TRACKING_STATUSES", "Address", "Carrier", "CarrierError", "Label", "Parcel", "Rate", "TrackingEvent",
           "WebhookRejected", "SandboxCarrier", "carrier_for", "sandbox_for"]


def sandbox_for(settings: Settings) -> SandboxCarrier:
    """The sandbox carrier of these settings (its signing key and pace), also when Shippo is the carrier."""
    return SandboxCarrier(signing_key(settings.sandbox_carrier_secret, settings.jwt_secret),
                          settings.sandbox_carrier_pace_seconds)


def carrier_for(settings: Settings, http_session: aiohttp.ClientSession | None = None) -> Carrier:
    """Shippo when SHIPPO_API_KEY is set (on `http_session` when given, else its own, opened on first use and
    closed by its `close()`), else the sandbox carrier."""
    if settings.shippo_api_key:
        from live.commerce.shipping.carriers.shippo import ShippoCarrier

        return ShippoCarrier(settings.shippo_api_key, settings.shippo_api_base,
                             webhook_token=settings.shippo_webhook_token,
                             hmac_secret=settings.shippo_webhook_hmac_secret, session=http_session)
    return sandbox_for(settings)
