"""Email throughput of one worker: `python -m loadtests.mail_rate [--mails N] [--core C]`.

A local SMTP server (aiosmtpd's Sink, in a process of its own), an embedded PostgreSQL (or DATABASE_URL), N users
with an address; one `Mailer.queue` of `follow.live_now` writes the N mails and their email.send jobs (one
statement, jobs of 50), then this process drains the jobs as a worker does: render (Jinja2, HTML + text), send
over the worker's one SMTP connection, mark each sent. Prints the time of the queue, the messages per second of the
sending and per CPU second of this process (what one core does when the machine is not shared). `--core 0` pins
this process (the worker) to one core; PostgreSQL and the sink run elsewhere."""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from db import Database
from db.migrate import migrate
from live.auth.principal import SYSTEM
from live.config import load_settings
from live.container import Services

STREAM = {"stream_id": "00000000-0000-4000-8000-000000000001", "slug": "drop", "title": "Spring drop",
          "seller_name": "Maple Market", "seller_slug": "maple", "cover_url": None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(mails: int, dsn: str, port: int, data_dir: Path) -> None:
    await migrate(dsn)
    db = await Database.connect(dsn)
    settings = load_settings({"LIVE_ENV": "test", "JWT_SECRET": "mail-rate-" + "x" * 40, "LIVE_DATA_DIR": str(data_dir),
                              "SEED_DEMO": "false", "LOG_LEVEL": "warning", "SMTP_URL": f"smtp://127.0.0.1:{port}",
                              "EMAIL_FROM": "Maple <mail@maple.example>", "PUBLIC_URL": "https://maple.example"})
    services = Services(settings, db)
    try:
        async with db.tx(SYSTEM) as conn:
            users = [r[0] for r in await conn.fetch(
                """INSERT INTO users (name, role, email) SELECT 'viewer ' || i, 'customer', 'v' || i || '-' || $2
                   || '@example.com' FROM generate_series(1, $1) AS i RETURNING id::text""", mails, str(time.time()))]
        began = time.perf_counter()
        async with db.tx(SYSTEM) as conn:
            written = await services.outbox.queue(conn, "follow.live_now", users, STREAM, f"live:{time.time()}")
        queued = time.perf_counter() - began
        began, cpu = time.perf_counter(), time.process_time()
        await services.jobs.drain()
        sent_in, cpu = time.perf_counter() - began, time.process_time() - cpu
        async with db.tx(SYSTEM) as conn:
            sent = await conn.fetchval("SELECT count(*) FROM email_outbox WHERE sent_at IS NOT NULL "
                                       "AND user_id = ANY($1::uuid[])", users)
        print(f"queued {written} mails in {queued * 1000:.0f} ms (one statement + {-(-written // 50)} jobs)")
        print(f"sent {sent} in {sent_in:.2f} s: {sent / sent_in:.0f} messages/s over "
              f"{services.outbox.smtp.connections} SMTP connection(s); this process used {cpu:.2f} s of CPU: "
              f"{sent / cpu:.0f} messages per CPU second")
    finally:
        await services.outbox.close()
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.mail_rate")
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--core", type=int, default=None, help="pin this process (not the SMTP sink) to a core")
    args = parser.parse_args(argv)
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Sink"])
    pg = None
    try:
        with tempfile.TemporaryDirectory(prefix="mail-rate-") as tmp:
            dsn = os.environ.get("DATABASE_URL")
            if not dsn:
                from db.embedded import EmbeddedPostgres

                pg = EmbeddedPostgres(Path(tmp) / "pgdata")
                dsn = pg.uri()
            for _ in range(100):  # the sink is listening
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            if args.core is not None:
                os.sched_setaffinity(0, {args.core})
            asyncio.run(run(args.mails, dsn, port, Path(tmp) / "data"))
            if pg is not None:
                pg.stop()
    finally:
        sink.terminate()
        sink.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
