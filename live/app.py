"""The aiohttp application: REST routes, Socket.IO, background tasks, start-up and shutdown."""
from __future__ import annotations

from aiohttp import web

from db import Database
from db.migrate import migrate
from live import seed
from live.appkeys import GATEWAY, ROUTES, SERVICES
from live.commerce import cart_socket
from live.config import Settings
from live.container import Services
from live.http import (
    account,
    admin,
    admin_jobs,
    admin_users,
    carrier_webhooks,
    cart,
    catalog,
    checkout,
    contact,
    devmail,
    follows,
    ingress,
    livekit_webhooks,
    media,
    metrics,
    notifications,
    orders,
    preferences,
    push,
    replay,
    returns,
    sandbox_pay,
    seller_applications,
    shipments,
    shipping,
    streams,
    system,
    uploads,
    webhooks,
)
from live.http import limits as rest_limits
from live.http.api import Api
from live.http.middleware import (
    cors_middleware,
    error_middleware,
    input_middleware,
    metrics_middleware,
    quiet_parse_errors,
    request_id_middleware,
    security_headers,
)
from live.logging import get_logger
from live.rooms.gateway import Gateway
from live.web import pages as web_pages

log = get_logger("live.app")


def build_api() -> Api:
    api = Api()
    for module in (system, account, admin_users, admin, admin_jobs, streams, catalog, cart, checkout, orders,
                   shipments, shipping, returns, push, follows, contact, devmail, notifications,
                   preferences, media, replay, ingress, uploads, seller_applications):
        api.include(module.api)
    return api


def create_app(settings: Settings, dsn: str, *, run_migrations: bool = True) -> web.Application:
    app = web.Application(
        middlewares=[metrics_middleware, request_id_middleware, cors_middleware(settings.cors_origins),
                     error_middleware, input_middleware, rest_limits.rate_limit_middleware],
        client_max_size=1024 * 1024,
    )
    app.on_response_prepare.append(security_headers(settings.base_url().startswith("https://")))
    quiet_parse_errors()  # a request aiohttp's parser refuses is one warning line, not a traceback
    api = build_api()
    rest_limits.declare(api)  # 429 in the OpenAPI document of every rate-limited operation
    app[ROUTES] = api
    api.register(app)
    system.register_root(app)
    carrier_webhooks.register(app)  # POST /webhooks/shippo, /webhooks/sandbox-carrier (before /webhooks/{provider})
    livekit_webhooks.register(app)  # POST /webhooks/livekit (before /webhooks/{provider})
    webhooks.register(app)  # POST /webhooks/{stripe,paystack,sandbox}: raw body, signature-checked
    sandbox_pay.register(app)  # the sandbox provider's confirm page /pay/sandbox/{reference}
    devmail.register(app)  # /dev/mailbox pages (development only: 404 JSON in production)
    preferences.register(app)  # GET/POST /unsubscribe?t= (the mails' one-click unsubscribe)
    follows.register(app)  # GET /uploads/<name> (covers; files, not JSON)
    replay.register(app)  # GET /replays/<name> (recordings; files with range requests, not JSON)
    metrics.register(app)  # GET /metrics (Prometheus), counts socket events from start-up on
    web_pages.register(app, settings)  # the web app's pages and /static/ (live/web, docs/web.md)
    app[GATEWAY] = Gateway(app, settings)
    cart_socket.register(app[GATEWAY])  # cart:add, cart:update, cart:remove

    async def lifecycle(app: web.Application):
        if run_migrations:
            applied = await migrate(dsn)
            if applied:
                log.info("migrations_applied", migrations=applied)
        db = await Database.connect(dsn)
        services = Services(settings, db, app[GATEWAY])  # the gateway: the room layer's listener (container.py)
        app[SERVICES] = services
        if await seed.seed_if_empty(services):
            log.info("demo_data_seeded")
        await services.start()
        log.info("started", url=settings.base_url())
        yield
        app[GATEWAY].stop()
        await services.stop()
        await db.close()

    app.cleanup_ctx.append(lifecycle)
    return app
