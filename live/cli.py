"""The `live` command: serve, migrate, seed, token."""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import signal
import sys

from live.config import ConfigError, Settings, load_settings
from live.logging import get_logger, setup_logging


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(host=getattr(args, "host", None), port=getattr(args, "port", None))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from None


def _run_worker(settings: Settings, dsn: str, reuse_port: bool, migrate_first: bool) -> None:
    import uvloop
    from aiohttp import web

    from live.app import create_app

    setup_logging(settings.log_level)
    uvloop.install()
    app = create_app(settings, dsn, run_migrations=migrate_first)
    web.run_app(app, host=settings.host, port=settings.port, reuse_port=reuse_port, print=None,
                access_log=None, handle_signals=True, shutdown_timeout=10, backlog=4096)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    setup_logging(settings.log_level)
    from live.runtime import database_dsn

    dsn, _pg = database_dsn(settings)
    log = get_logger("live.cli")
    print(f"live: serving on http://{settings.host}:{settings.port} (Ctrl-C to stop)", file=sys.stderr)
    if args.workers <= 1:
        _run_worker(settings, dsn, False, True)
        return 0
    from db.migrate import migrate

    asyncio.run(migrate(dsn))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_run_worker, args=(settings, dsn, True, False), name=f"live-worker-{i}")
             for i in range(args.workers)]
    for p in procs:
        p.start()
    log.info("workers_started", workers=[p.pid for p in procs])

    def forward(signum, _frame):
        for p in procs:
            if p.is_alive():
                p.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from db.migrate import migrate
    from live.runtime import database_dsn

    dsn, _pg = database_dsn(settings)
    applied = asyncio.run(migrate(dsn))
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


async def _with_services(settings: Settings, fn):
    from db import Database
    from db.migrate import migrate
    from live.runtime import database_dsn
    from live.services import Services

    dsn, _pg = database_dsn(settings)
    await migrate(dsn)
    db = await Database.connect(dsn, min_size=1, max_size=2)
    try:
        return await fn(Services(settings, db))
    finally:
        await db.close()


def cmd_seed(args: argparse.Namespace) -> int:
    from live import seed

    result = asyncio.run(_with_services(_settings(args), seed.seed))
    print(f"demo data ready: stream 'demo' ({result['stream_id']}), {len(result['product_ids'])} products")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from db import users as users_db
    from live.auth.principal import SYSTEM

    names = [args.user] if args.count == 1 else [f"{args.user}-{i}" for i in range(1, args.count + 1)]

    async def make(services):
        tokens = []
        async with services.db.tx(SYSTEM) as conn:
            for name in names:
                user = await users_db.find_or_create_by_name(conn, name, args.role)
                if args.role == "seller":
                    await users_db.ensure_seller(conn, user["id"], name, _slug(name))
                tokens.append(services.token_for(user))
        return tokens

    print("\n".join(asyncio.run(_with_services(_settings(args), make))))
    return 0


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "seller"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="live", description="Realtime live-shopping server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the server")
    serve.add_argument("--host", default=None, help="bind address (env HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (env PORT, default 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes sharing the port")
    serve.set_defaults(fn=cmd_serve)
    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(fn=cmd_migrate)
    sub.add_parser("seed", help="create the demo data (idempotent)").set_defaults(fn=cmd_seed)
    token = sub.add_parser("token", help="create a user if needed and print a bearer token")
    token.add_argument("--user", required=True, help="user name")
    token.add_argument("--role", default="customer", choices=["customer", "seller", "admin"])
    token.add_argument("--count", type=int, default=1, help="make N users NAME-1..NAME-N, one token a line")
    token.set_defaults(fn=cmd_token)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
