"""The `live` command: serve, worker, migrate, seed, token."""
from __future__ import annotations

import argparse
import asyncio
import sys

from live.config import ConfigError, Settings, load_settings
from live.logging import get_logger, setup_logging


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(host=getattr(args, "host", None), port=getattr(args, "port", None))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from None


def database_dsn(settings: Settings):
    """Where the database is: DATABASE_URL, or an embedded PostgreSQL (db/embedded.py) with its data under the
    data dir; returns the DSN and the embedded server, if one was started (it stops when the process ends)."""
    if settings.database_url:
        return settings.database_url, None
    from db.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(settings.data_dir.resolve() / "pgdata")
    pg.create_database("live")
    return pg.uri("live"), pg


def _port_free(host: str, port: int, reuse_port: bool) -> str | None:
    """Why `port` cannot be listened on (one short line), or None. Checked before anything else starts, so a busy
    port claims nothing (no embedded database, no Redis) and says so in one line."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}: {exc.strerror}"
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp's listener does
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind(addr)
            sock.listen(1)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} is in use"
            if exc.errno == errno.EACCES:
                return f"port {port}: permission denied"
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    busy = _port_free(settings.host, settings.port, args.workers > 1)
    if busy is None and args.worker_ports:
        busy = next(filter(None, (_port_free(settings.host, args.worker_ports + i, False)
                                  for i in range(max(1, args.workers)))), None)
    if busy is not None:
        print(f"live: {busy}", file=sys.stderr)
        return 1
    setup_logging(settings.log_level)
    dsn, _pg = database_dsn(settings)
    log = get_logger("live.cli")
    print(f"live: serving on http://{settings.host}:{settings.port} (Ctrl-C to stop)", file=sys.stderr)
    settings, mailbox = dev_mailbox(settings)
    try:
        return _serve(settings, dsn, args, log)
    finally:
        if mailbox is not None:
            mailbox.stop()


def _serve(settings: Settings, dsn: str, args: argparse.Namespace, log) -> int:
    from live import runner

    if args.workers <= 1:
        runner.run_worker(settings, dsn, False, True, args.worker_ports)
        return 0
    from live import seed

    # migrate and seed once, here, not raced by the workers
    asyncio.run(_with_services(settings, seed.seed_if_empty, dsn))
    redis = None
    if not settings.redis_url:  # the workers share rooms through an embedded Redis that lives with us
        from live.redis.embedded import EmbeddedRedis

        redis = EmbeddedRedis(settings.data_dir.resolve() / "redis")
        settings = settings.model_copy(update={"redis_url": redis.start()})
        log.info("embedded_redis_started", url=settings.redis_url)
    try:
        runner.supervise(settings, dsn, args.workers, args.worker_ports, log)
    finally:
        if redis is not None:
            redis.stop()
    return 0


def dev_mailbox(settings: Settings):
    """With SMTP_URL unset and LIVE_ENV not production: start the development mailbox (an SMTP server on a free
    loopback port in a thread of this process, which keeps what it receives under LIVE_DATA_DIR/mailbox:
    live/notify/devmail.py), print where to read it, and return the settings whose SMTP_URL points at it, with the
    server (stop it at the end). Otherwise nothing is started: (settings, None)."""
    if settings.smtp_url or settings.live_env == "production":
        return settings, None
    from live.notify.devmail import DevMailServer, Mailbox

    server = DevMailServer(Mailbox(settings.data_dir.resolve() / "mailbox", settings.mailbox_max_messages))
    url = server.start()
    print(f"live: development mailbox on {settings.base_url()}/dev/mailbox (SMTP_URL unset: mail goes to {url})",
          file=sys.stderr)
    return settings.model_copy(update={"smtp_url": url}), server


def cmd_worker(args: argparse.Namespace) -> int:
    """Run only the durable jobs (docs/jobs.md): for `live serve` with JOBS_IN_PROCESS=false, or more job workers
    beside the servers. Needs the same database (DATABASE_URL; else this data dir's embedded PostgreSQL)."""
    settings = _settings(args)
    setup_logging(settings.log_level)
    from live import runner

    dsn, _pg = database_dsn(settings)
    print("live: running jobs (no HTTP server; SIGTERM or Ctrl-C to stop)", file=sys.stderr)
    settings, mailbox = dev_mailbox(settings)
    try:
        runner.run_jobs(settings, dsn)
    finally:
        if mailbox is not None:
            mailbox.stop()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from db.migrate import migrate

    dsn, _pg = database_dsn(settings)
    applied = asyncio.run(migrate(dsn))
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


async def _with_services(settings: Settings, fn, dsn: str | None = None):
    """Migrate, then `fn(services)` on a small pool (`dsn`: the database when the caller has it already)."""
    from db import Database
    from db.migrate import migrate
    from live.container import Services

    if dsn is None:
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

    from live.errors import DomainError

    try:
        tokens = asyncio.run(_with_services(_settings(args), make))
    except DomainError as exc:  # a suspended user gets no token
        print(f"live: {exc.message}", file=sys.stderr)
        return 1
    print("\n".join(tokens))
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
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes sharing the port (with N > 1 and no REDIS_URL: an embedded Redis)")
    serve.add_argument("--worker-ports", type=int, default=None, metavar="BASE",
                       help="worker i also listens alone on BASE+i (per-worker health checks)")
    serve.set_defaults(fn=cmd_serve)
    sub.add_parser("worker", help="run only the durable jobs (no HTTP server)").set_defaults(fn=cmd_worker)
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
