"""Configuration from the environment, validated once at start-up.

`Settings` is a pydantic-settings model: each field is read from the environment variable of its name in
capitals (`port` from PORT), except `data_dir` (LIVE_DATA_DIR). Every variable is listed in `.env.example`. A bad
value stops the start with one line naming the variable (`ConfigError`). Unset optional integrations fall back to
safe local defaults (embedded PostgreSQL, in-process pub/sub, LiveKit dev keys, the sandbox payment provider,
emails printed to the log).
"""
from __future__ import annotations

import os
import re
import secrets
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Mapping
from urllib.parse import urlparse

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from live import config_checks as checks


class ConfigError(Exception):
    """A configuration value is missing or invalid; str(self) is one line naming the variable."""


def _url(value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    parsed = urlparse(value)
    if parsed.scheme not in schemes:
        raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    if parsed.scheme not in ("unix",) and not (parsed.hostname or parsed.path):
        raise ValueError("has no host")
    return value


# Numeric settings that must lie in a range: (low, high, the message naming it), one validator for all of them.
_RANGES: dict[str, tuple[float, float, str]] = {
    "port": (0, 65535, "must be between 0 and 65535"),
    "cart_reservation_seconds": (10, 7 * 24 * 3600, "must be between 10 seconds and 7 days"),
    "order_payment_timeout_seconds": (10, 7 * 24 * 3600, "must be between 10 seconds and 7 days"),
    "cart_max_per_buyer": (1, 99, "must be between 1 and 99"),
    "cart_hold_cooldown_seconds": (0, 7 * 24 * 3600, "must be between 0 and 7 days"),
    **dict.fromkeys(("http_head_timeout_seconds", "http_keepalive_seconds", "ws_connect_timeout_seconds",
                     "http_body_timeout_seconds"), (0.05, 3600, "must be between 0.05 and 3600 seconds")),
    "max_pending_connections_per_ip": (0, 1_000_000, "must be between 0 (no cap) and 1000000"),
    "http_max_body_bytes": (1024, 1024 * 1024, "must be between 1024 and 1048576 bytes"),
    "socket_event_rate": (0.1, 10_000, "must be between 0.1 and 10000 events per second"),
    **dict.fromkeys(("socket_event_burst", "socket_flood_disconnect"), (1, 100_000, "must be between 1 and 100000")),
    "auth_refresh_seconds": (0.05, 300, "must be between 0.05 and 300 seconds"),
    "shipping_rate_ttl_seconds": (30, 24 * 3600, "must be between 30 seconds and 24 hours"),
    "sandbox_carrier_pace_seconds": (0.05, 86_400, "must be between 0.05 and 86400 seconds"),
    "tracking_webhook_concurrency": (1, 64, "must be between 1 and 64"),
    "jobs_concurrency": (2, 256, "must be between 2 and 256"),
    "jobs_heartbeat_seconds": (1, 3600, "must be between 1 and 3600 seconds"),
    "smtp_idle_seconds": (1, 3600, "must be between 1 and 3600 seconds"),
    "push_max_subscriptions": (1, 100, "must be between 1 and 100"),
    "push_ttl_seconds": (0, 28 * 24 * 3600, "must be between 0 and 28 days"),
    "push_timeout_seconds": (0.5, 120, "must be between 0.5 and 120 seconds"),
    "mailbox_max_messages": (1, 100_000, "must be between 1 and 100000"),
    "follow_email_interval_seconds": (0, 7 * 24 * 3600, "must be between 0 and 7 days"),
    "stream_reminder_minutes": (1, 7 * 24 * 60, "must be between 1 minute and 7 days"),
    "cover_max_bytes": (1024, 32 * 1024 * 1024, "must be between 1024 and 33554432 bytes"),
    "follow_max": (1, 1_000_000, "must be between 1 and 1000000"),
    "stock_low_threshold": (0, 1_000_000, "must be between 0 (off) and 1000000"),
}


# Web Push endpoints a browser may hand us (PUSH_ENDPOINT_HOSTS): the push services of Chrome/Edge/Opera/Samsung
# (FCM), Firefox, Safari and Windows; a name matches itself and its subdomains
DEFAULT_PUSH_HOSTS = ("fcm.googleapis.com", "push.services.mozilla.com", "push.apple.com", "notify.windows.com")


class Settings(BaseSettings):
    # a field's alias is its variable; comma-separated lists arrive as text (NoDecode), not as JSON
    model_config = SettingsConfigDict(alias_generator=str.upper, case_sensitive=True, extra="ignore", frozen=True)

    live_env: str = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Field(Path(".live"), alias="LIVE_DATA_DIR")
    log_level: str = "info"
    database_url: str | None = None
    redis_url: str | None = None
    jwt_secret: str = ""
    jwt_ttl_seconds: int = 7 * 24 * 3600
    jwt_issuer: str = "live"
    jwt_jwks_url: str | None = None
    jwt_external_issuer: str | None = None
    jwt_external_audience: str | None = None
    livekit_url: str = ""  # unset or empty: the embedded media server (WHIP/WHEP); set: LiveKit serves the video
    livekit_api_key: str = "devkey"
    livekit_api_secret: str = "secret"
    livekit_egress: bool = False  # LiveKit records each stream that goes live (room composite, MP4): its replay
    livekit_egress_filepath: str = "recordings/{room_name}-{time}.mp4"  # where the egress writes it (its templates)
    hub_budget: float = Field(0.5, ge=0.05, le=0.95)  # share of a worker a busy room's writes may take (rooms)
    hub_max_sweep_ms: int = Field(250, ge=20, le=2000)  # a room's sweep of all its viewers takes at most this long
    media_max_sessions: int = Field(100, ge=1, le=10000)  # embedded media: WHIP + WHEP peer connections per worker
    media_forward_host: str = "127.0.0.1"  # with REDIS_URL: the address of each worker's media forward listener
    recordings_enabled: bool = True  # embedded media: record every publishing session (docs/media.md "Recordings")
    recording_max_seconds: int = Field(4 * 3600, ge=10, le=24 * 3600)  # one recording's media time at most
    recording_max_bytes: int = Field(4 * 1024**3, ge=1024**2, le=64 * 1024**3)  # one recording's frames at most
    recording_min_free_bytes: int = Field(2 * 1024**3, ge=0, le=1024**4)  # no recording below this free disk space
    thumbnail_interval: float = Field(5.0, ge=1.0, le=300.0)  # embedded media: seconds between live thumbnails
    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None  # Stripe.js's key (pk_...), given to /checkout's Payment Element
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    paystack_secret_key: str | None = None
    paystack_api_base: str = "https://api.paystack.co"
    shippo_api_key: str | None = None  # set: Shippo is the carrier (else the sandbox carrier); docs/shipping.md
    shippo_api_base: str = "https://api.goshippo.com"
    shippo_webhook_token: str | None = None  # POST /webhooks/shippo?token=<it>; unset: every Shippo webhook is refused
    shippo_webhook_hmac_secret: str | None = None  # set: Shippo webhooks must also carry a valid Shippo-Auth-Signature
    sandbox_carrier_secret: str | None = None  # signs the sandbox carrier's webhooks (unset: derived from JWT_SECRET)
    sandbox_carrier_pace_seconds: float = 20.0  # between two events of a sandbox shipment's tracking timeline
    tracking_webhook_concurrency: int = 4  # transactions storing carrier webhooks at once per worker (group commit)
    shipping_rate_ttl_seconds: int = 900  # a quoted shipping rate is charged at most this long after the quote
    cart_reservation_seconds: int = 600
    cart_max_per_buyer: int = 5  # units of one variant a buyer's cart may hold, unless the seller set the variant's
    cart_hold_cooldown_seconds: int = 3600  # after a hold ends, the same cart may hold the variant again after this
    order_payment_timeout_seconds: int = 1800
    smtp_url: str | None = None
    email_from: str = "live <no-reply@localhost>"
    shop_name: str = "live"  # the shop's name in every mail (layout, From name, subjects)
    smtp_idle_seconds: float = 30.0  # the worker's SMTP connection is closed after this long without a message
    support_email: str = ""  # the contact form's mail goes here (unset: support@<the domain of EMAIL_FROM>)
    mailbox_max_messages: int = 500  # the development mailbox keeps the newest this many (live/notify/devmail.py)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    public_url: str = ""
    seed_demo: bool = True
    gc_thresholds: Annotated[tuple[int, int, int] | None, NoDecode] = (10_000, 50, 100)
    auth_refresh_seconds: float = 10.0  # how often each worker polls sign-in changes (live/auth/sessions.py)
    rate_limits: str = ""  # overrides of the named limits, `name=COUNT/SECONDS` or `name=off` (live/ratelimit.py)
    trusted_proxy_header: str | None = None  # client address from this header (rightmost entry), e.g. X-Forwarded-For
    http_head_timeout_seconds: float = 10.0  # a new connection's first request head must arrive within this: else 408
    http_keepalive_seconds: float = 30.0  # an idle keep-alive HTTP connection (or a later unfinished head) is closed
    http_body_timeout_seconds: float = 30.0  # a REST or webhook body must arrive whole within this: else 408
    # a front-door websocket sends its Socket.IO CONNECT within this: else 1008
    ws_connect_timeout_seconds: float = 10.0
    ws_deflate: bool = True  # permessage-deflate (RFC 7692) for websockets that offer it: room events compressed once
    max_pending_connections_per_ip: int = 256  # connections of one IP not past their handshake (0: no cap): else 429
    socket_event_rate: float = 20.0  # Socket.IO events per second per socket (token bucket, live/rooms/gateway.py)
    socket_event_burst: int = 40  # events a socket may send at once before the rate applies
    socket_flood_disconnect: int = 100  # refused events (bucket never refilled meanwhile) before a disconnect
    http_max_body_bytes: int = 64 * 1024  # a REST JSON body over this (as read, however framed) is refused: 413
    # GET /metrics needs `Authorization: Bearer <it>` (unset: loopback, not production)
    metrics_token: str | None = None
    jobs_in_process: bool = True  # `live serve` runs the durable jobs too (false: it only serves; run `live worker`)
    jobs_concurrency: int = 8  # jobs one process runs at a time (docs/jobs.md)
    jobs_heartbeat_seconds: float = 30.0  # a picked job whose worker is silent this long is picked again
    # Web Push (docs/notifications.md "Web Push"): VAPID keys, base64url as `web-push generate-vapid-keys` prints
    # them; unset outside production: generated once and kept in the data dir; unset in production: push is off
    vapid_private_key: str | None = None  # the raw 32-byte P-256 private key
    vapid_public_key: str | None = None  # its public key (65 bytes uncompressed); derived from the private one if unset
    vapid_subject: str | None = None  # mailto: or https: contact in the VAPID JWT (unset: mailto:<EMAIL_FROM>)
    push_max_subscriptions: int = 10  # browsers subscribed per user; a new one past it drops the oldest
    push_ttl_seconds: int = 86_400  # how long a push service keeps an undelivered push (follow alerts: at most 1 h)
    push_timeout_seconds: float = 10.0  # one request to a push service
    push_endpoint_hosts: Annotated[tuple[str, ...], NoDecode] = DEFAULT_PUSH_HOSTS  # "*": any https host
    # follows (docs/notifications.md): at most one email per seller per follower per this interval (live now and
    # reminders alike); reminders this long before a scheduled start; a stream's cover image at most this large;
    # at most this many sellers followed per user
    follow_email_interval_seconds: int = 3600
    stream_reminder_minutes: int = 15
    cover_max_bytes: int = 2 * 1024 * 1024
    follow_max: int = 5000
    # sellers are told (seller.stock_low) when a variant's available stock drops from above this to at most it (0: off)
    stock_low_threshold: int = 5

    @field_validator(*_RANGES)
    @classmethod
    def _in_range(cls, v: float, info: ValidationInfo) -> float:
        low, high, message = _RANGES[info.field_name]
        if not low <= v <= high:
            raise ValueError(message)
        return v

    @field_validator("live_env")
    @classmethod
    def _env(cls, v: str) -> str:
        if v not in ("development", "test", "production"):
            raise ValueError("must be development, test or production")
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in ("debug", "info", "warning", "error"):
            raise ValueError("must be debug, info, warning or error")
        return v

    @field_validator("jwt_ttl_seconds")
    @classmethod
    def _ttl(cls, v: int) -> int:
        if v < 60:
            raise ValueError("must be at least 60 seconds")
        return v

    @field_validator("database_url")
    @classmethod
    def _db(cls, v: str | None) -> str | None:
        return _url(v, ("postgres", "postgresql"))

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, v: str | None) -> str | None:
        return _url(v, ("redis", "rediss", "unix"))

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, v: str | None) -> str | None:
        return _url(v, ("smtp", "smtps"))

    @field_validator("support_email")
    @classmethod
    def _support_email(cls, v: str) -> str:
        v = v.strip()
        if v and (len(v) > 320 or not re.fullmatch(r"[^@\s<>,;]{1,64}@[^@\s<>,;]+\.[^@\s<>,;]+", v)):
            raise ValueError("must be one email address like support@shop.example")
        return v

    @field_validator("shop_name")
    @classmethod
    def _shop_name(cls, v: str) -> str:
        v = v.strip()
        if not 1 <= len(v) <= 60 or not v.isprintable():
            raise ValueError("must be 1 to 60 printable characters")
        return v

    @field_validator("livekit_url")
    @classmethod
    def _lk(cls, v: str) -> str:
        return _url(v, ("ws", "wss", "http", "https")) if v.strip() else ""

    @field_validator("livekit_egress_filepath")
    @classmethod
    def _egress_path(cls, v: str) -> str:
        v = v.strip()
        if not 5 <= len(v) <= 500 or not v.endswith(".mp4") or not v.isprintable():
            raise ValueError("must be 5 to 500 printable characters ending in .mp4")
        return v

    @field_validator("stripe_publishable_key")
    @classmethod
    def _publishable(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not re.fullmatch(r"pk_(test|live)_[A-Za-z0-9_]{1,250}", v):
            raise ValueError("must be a Stripe publishable key (pk_test_... or pk_live_...)")
        return v

    @field_validator("public_url", "stripe_api_base", "paystack_api_base", "jwt_jwks_url", "shippo_api_base")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return v
        _url(v, ("http", "https"))
        return v.rstrip("/")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _cors(cls, v: object) -> tuple[str, ...]:
        if isinstance(v, str):
            items = [o.strip() for o in v.split(",") if o.strip()]
        else:
            items = list(v or ())
        for o in items:
            if o != "*" and not o.startswith(("http://", "https://")):
                raise ValueError(f"{o!r} is not an origin like https://shop.example")
        return tuple(items)

    @field_validator("gc_thresholds", mode="before")
    @classmethod
    def _gc(cls, v: object) -> object:
        if isinstance(v, str):
            if v.strip().lower() in ("", "default", "python"):
                return None
            parts = [p.strip() for p in v.split(",")]
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                raise ValueError("must be three whole numbers like 10000,20,100 (or 'default')")
            v = tuple(int(p) for p in parts)
        if v is not None and not (0 < v[0] and 0 < v[1] and 0 < v[2]):
            raise ValueError("must be three numbers above 0")
        return v

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, v: str | None) -> str | None:
        if v is not None and v != "" and (len(v) < 16 or not v.isprintable() or " " in v):
            raise ValueError("must be at least 16 printable characters without spaces")
        return v or None

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(cls, v: str) -> str:
        from live.ratelimit import parse_limits

        parse_limits(v)
        return v

    @field_validator("trusted_proxy_header")
    @classmethod
    def _proxy_header(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", v.strip()):
            raise ValueError("must be a header name like X-Forwarded-For")
        return v.strip()

    @field_validator("jwt_secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        if v and len(v) < 32:
            raise ValueError("must be at least 32 characters")
        return v

    @field_validator("shippo_webhook_token")
    @classmethod
    def _shippo_token(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        # it travels in the webhook URL's query: letters, digits, - _ . ~ only
        if len(v) < 16 or not re.fullmatch(r"[A-Za-z0-9._~-]+", v):
            raise ValueError("must be at least 16 characters of letters, digits, '-', '_', '.' or '~'")
        return v

    @field_validator("shippo_webhook_hmac_secret", "sandbox_carrier_secret")
    @classmethod
    def _carrier_secret(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if len(v) < 16 or not v.isprintable() or " " in v:
            raise ValueError("must be at least 16 printable characters without spaces")
        return v

    @field_validator("shippo_api_key")
    @classmethod
    def _shippo_key(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not re.fullmatch(r"shippo_(test|live)_[A-Za-z0-9]{8,}", v):
            raise ValueError("must look like shippo_test_... or shippo_live_...")
        return v

    @field_validator("vapid_private_key", "vapid_public_key")
    @classmethod
    def _vapid_key(cls, v: str | None, info: ValidationInfo) -> str | None:
        return checks.vapid_key(v, private=info.field_name == "vapid_private_key")

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_subject(cls, v: str | None) -> str | None:
        return checks.vapid_subject(v)

    @field_validator("push_endpoint_hosts", mode="before")
    @classmethod
    def _push_hosts(cls, v: object) -> tuple[str, ...]:
        return checks.host_names(v)

    @model_validator(mode="after")
    def _vapid_pair(self) -> "Settings":
        checks.vapid_pair(self.vapid_private_key, self.vapid_public_key, self.vapid_subject,
                          self.live_env == "production")
        return self

    @model_validator(mode="after")
    def _production(self) -> "Settings":
        if self.live_env == "production":
            if not self.jwt_secret:
                raise ValueError("JWT_SECRET: is required when LIVE_ENV=production")
            if self.livekit_url and self.livekit_api_key == "devkey":  # without LiveKit the keys are unused
                raise ValueError("LIVEKIT_API_KEY: dev keys are not allowed with LIVEKIT_URL when LIVE_ENV=production")
            if self.shippo_api_key and not self.shippo_webhook_token:
                raise ValueError("SHIPPO_WEBHOOK_TOKEN: is required with SHIPPO_API_KEY when LIVE_ENV=production")
        return self

    def support_address(self) -> str:
        """SUPPORT_EMAIL, or support@ the domain of EMAIL_FROM."""
        if self.support_email:
            return self.support_email
        return "support@" + (parseaddr(self.email_from)[1].rpartition("@")[2] or "localhost")

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_other_sources):
        # only what load_settings passes: it reads the environment itself (os.environ, or the tests' mapping)
        return (init_settings,)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


# environment variable name -> Settings field
FIELDS = {field.alias: name for name, field in Settings.model_fields.items()}


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from `env` (default os.environ); overrides (by field name) win. Raises ConfigError with one
    line."""
    values = _Environment(os.environ if env is None else env)()
    fields = Settings.model_fields
    values.update({fields[k].alias if k in fields else k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err.get("loc") or ()
        msg = err.get("msg", "invalid value").removeprefix("Value error, ")
        raise ConfigError(f"configuration error: {loc[0]} {msg}" if loc else f"configuration error: {msg}") from None
    if not settings.jwt_secret:
        settings = settings.model_copy(update={"jwt_secret": _dev_secret(settings.data_dir)})
    return settings


def _dev_secret(data_dir: Path) -> str:
    """Outside production an unset JWT_SECRET gets a random one kept in the data dir (tokens survive restarts)."""
    path = data_dir / "jwt_secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.write_text(secret)
        path.chmod(0o600)
        return secret
