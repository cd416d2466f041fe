"""`python -m loadtests notify`: issue 14's benchmark, a seller with 10,000 followers starts a stream
(docs/benchmarks.md "Notifications").

  python -m loadtests notify --out /tmp/live-notify                   # 10,000 followers, 2,000 online, 3 runs
  python -m loadtests notify --worker --out /tmp/live-notify-worker   # the jobs in a `live worker` process
  python -m loadtests notify --followers 500 --online 100 --viewers 200 --chatters 20 --rate 10 --runs 1 --out DIR

Setup: an embedded PostgreSQL (or --database-url), an SMTP sink (loadtests/notify_sink.py: aiosmtpd with AUTH, its
own process) and `live serve` with SMTP_URL pointing at the sink. --followers users with an email each and, per run,
a new seller whose followers they all become (set-based SQL, loadtests/notify_seed.py), with a stream of its
products. Online followers: the first --online of them hold a signed-in socket each (loadtests/notify_clients.py),
connected before the start. The room: another seller's live stream with --viewers viewers, --chatters of them
chatting at --rate messages/s in all (the audience simulator), whose chat delivery latency is measured per second.

The run: after --before seconds of chat, t0 = the seller's `POST /api/v1/livestreams/{id}/start`. Then, from t0:
- enqueued: the database is polled every POLL_SECONDS until every follower has its `notifications` row and its
  `email_outbox` row (the deliver job writes the outbox rows and their `email.send` jobs in one transaction);
- mail: the sink's arrivals: count, distinct Message-IDs, most per recipient, first-to-last rate;
- notices: each online follower's first `notification:new` after t0 (p50/p99/max, received vs expected);
- chat: p99 of the room's chat before t0, from t0 until the last of the above (during), and after;
- CPU of the server (with a `live worker`: of both), of PostgreSQL (embedded) and of the sink, over the window.

The server and PostgreSQL run on --server-cpus (core 0), the sink, the seeding, the sockets and the tool on
--generator-cpus (core 1). Writes OUT/notify.json and OUT/notify.txt (summary and rows for docs/benchmarks.md).
Exit status 0 when every check passed (the targets are reported, they do not set the status)."""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from loadtests import notify_seed as seeding
from loadtests.bench import http_json, wait_healthy
from loadtests.notify_clients import FollowerPlan, run_followers
from loadtests.notify_measure import measure
from loadtests.notify_report import rows, summary
from loadtests.procs import Processes, cpus, free_port, on_cpus, sql, wait_port, write_report

SMTP_USER, SMTP_PASSWORD = "bench", "bench-" + secrets.token_hex(8)
ISSUER = "live"


class Run(Processes):
    def __init__(self, args):
        super().__init__(args.out, args.database_url)
        self.args = args
        self.secret = "bench-" + secrets.token_hex(24)
        self.smtp_port, self.sink_port = free_port(), free_port()
        self.sink_url = f"http://127.0.0.1:{self.sink_port}"
        self.redis = None  # with --worker: the worker pushes notification:new to the server's sockets through it
        self.server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.url = ""

    # ---- processes ----

    def env(self) -> dict[str, str]:
        a = self.args
        return {"DATABASE_URL": self.dsn, "JWT_SECRET": self.secret, "LIVE_DATA_DIR": str(self.out / "data"),
                "SEED_DEMO": "false", "LOG_LEVEL": "warning", "LIVE_ENV": "development",
                "SMTP_URL": f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{self.smtp_port}",
                "EMAIL_FROM": "Bench shop <shop@bench.example>", "JOBS_IN_PROCESS": "false" if a.worker else "true",
                "JOBS_CONCURRENCY": str(a.jobs_concurrency), **({"REDIS_URL": self.redis.url} if self.redis else {})}

    def database(self) -> None:
        self.migrate(self.args.server_cpus)
        if self.args.async_commit:  # an experiment: what the fsync of each commit costs the numbers
            asyncio.run(sql(self.dsn, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit "
                                      "= off', current_database()); END $$"))

    def sink(self) -> subprocess.Popen:
        proc = self.spawn("smtp-sink", [sys.executable, "-m", "loadtests.notify_sink", "--smtp-port",
                                        str(self.smtp_port), "--http-port", str(self.sink_port), "--user", SMTP_USER,
                                        "--password", SMTP_PASSWORD], self.args.generator_cpus)
        wait_port(self.sink_port, proc)
        return proc

    def serve(self) -> None:
        if self.args.worker:
            from live.redis.embedded import EmbeddedRedis

            with on_cpus(self.args.server_cpus):
                self.redis = EmbeddedRedis(self.out / "redis")
                self.redis.start()
        port = self.args.port or free_port()
        self.server = self.spawn("live-serve", [sys.executable, "-m", "live", "serve", "--port", str(port)],
                                 self.args.server_cpus, self.env())
        self.url = f"http://127.0.0.1:{port}"
        wait_healthy(f"{self.url}/api/v1/healthz", self.server)
        if self.args.worker:
            profile = ["-m", "cProfile", "-o", str(self.out / "worker.prof")] if self.args.profile_worker else []
            self.workers = [self.spawn(f"live-worker-{i}", [sys.executable, *(profile if i == 0 else []), "-m",
                                                            "live", "worker"], self.args.server_cpus, self.env())
                            for i in range(self.args.job_workers)]

    # ---- streams, through the server's API ----

    def stream(self, seller: seeding.Seller, title: str) -> str:
        body = {"title": title, "slug": f"{seller.slug}-live", "product_ids": seller.product_ids}
        return http_json(f"{self.url}/api/v1/livestreams", body, token=seller.token)["id"]

    def start(self, seller: seeding.Seller, stream_id: str) -> None:
        http_json(f"{self.url}/api/v1/livestreams/{stream_id}/start", {}, token=seller.token)

    # ---- the audience and the followers (forked before the run's event loop) ----

    def audience(self, room: str, chat_tokens: Path):
        from loadtests.cli import make_plans, parser, validate
        from loadtests.coordinator import Coordinator
        from loadtests.probe import ServerProbe
        from loadtests.scenarios import SCENARIOS

        a = self.args
        p = parser()
        args = p.parse_args(["audience", "--url", self.url, "--stream", room, "--viewers", str(a.viewers),
                             "--chatters", str(a.chatters), "--rate", str(a.rate), "--duration",
                             str(a.before + a.after), "--tokens", str(chat_tokens), "--secret", self.secret,
                             "--sample", str(a.sample), "--no-progress", "--quiet"])
        tokens = chat_tokens.read_text().split()
        actors = validate(p, args, tokens)
        probe = ServerProbe(self.server.pid)  # the server's CPU each second, in the coordinator's timeline
        probe.mark("start")
        coord = Coordinator(args, make_plans(args, tokens, actors, time.time()), SCENARIOS["audience"](), probe,
                            None, False)
        coord.start()
        return args, coord

    def followers(self, tokens: list[str]):
        port = int(self.url.rsplit(":", 1)[1])
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=run_followers, args=(FollowerPlan("127.0.0.1", port, "/socket.io/", tokens), child),
                           name="loadtest-followers", daemon=True)
        proc.start()
        child.close()
        return proc, parent

    # ---- the whole benchmark ----

    def main(self) -> dict:
        a = self.args
        report: dict = {"tool": "live-loadtest notify", "started_at": datetime.now(timezone.utc).isoformat(
            timespec="seconds"), "params": {k: v for k, v in vars(a).items() if k != "database_url"},
            "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}, "runs": []}
        try:
            self.database()
            gen = cpus(a.generator_cpus)
            if gen:
                os.sched_setaffinity(0, gen)  # the sink, seeding, sockets, audience and polling
            self.sink()
            self.serve()
            t = time.perf_counter()
            follower_ids = asyncio.run(seeding.users(self.dsn, "bench-follower", a.followers))
            chatter_ids = asyncio.run(seeding.users(self.dsn, "bench-chatter", max(a.chatters, 1)))
            report["seed_users_s"] = round(time.perf_counter() - t, 2)
            chat_tokens = self.out / "chatters.txt"
            chat_tokens.write_text("\n".join(seeding.token(self.secret, ISSUER, uid, "customer", f"chatter {i}")
                                             for i, uid in enumerate(chatter_ids)) + "\n")
            online = [seeding.token(self.secret, ISSUER, uid, "customer", f"follower {i}")
                      for i, uid in enumerate(follower_ids[:a.online])]
            host = asyncio.run(seeding.seller(self.dsn, "room-" + seeding.run_tag(), self.secret, ISSUER))
            room = self.stream(host, "The busy room")
            self.start(host, room)  # live before the runs: its seller has no followers
            for i in range(a.runs):
                report["runs"].append(self.one(i + 1, room, follower_ids, online, chat_tokens))
                time.sleep(2)  # the sockets of the run close before the next one opens its own
        finally:
            self.stop_all(newest_first=True)
            if self.redis is not None:
                self.redis.stop()
            self.stop_postgres()
        report["passed"] = bool(report["runs"]) and all(c["passed"] for r in report["runs"] for c in r["checks"])
        return report

    def one(self, n: int, room: str, follower_ids: list[str], online: list[str], chat_tokens: Path) -> dict:
        tag = seeding.run_tag()
        seller = asyncio.run(seeding.seller(self.dsn, tag, self.secret, ISSUER))
        follow_s = asyncio.run(seeding.follow(self.dsn, seller.seller_id, follower_ids))
        stream_id = self.stream(seller, f"Run {n}: new arrivals")
        fproc, fconn = self.followers(online)
        kind, ready = fconn.recv()  # connected before the audience joins: the handshakes of one IP are capped
        if kind != "ready":
            raise SystemExit(f"followers' process: {ready}")
        args, coord = self.audience(room, chat_tokens)
        try:
            result = asyncio.run(measure(self, seller, stream_id, len(follower_ids), len(online), args, coord, fconn))
        finally:
            fproc.join(timeout=10)
            if fproc.is_alive():
                fproc.kill()
        result.update(run=n, seller=seller.name, stream_id=stream_id, follow_insert_s=round(follow_s, 3))
        print(summary({"runs": [result]}, brief=True), flush=True)
        return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="live-loadtest notify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--followers", type=int, default=10_000, help="followers of the seller (default 10000)")
    p.add_argument("--online", type=int, default=2000, help="followers with a socket open (default 2000)")
    p.add_argument("--viewers", type=int, default=2000, help="viewers of the busy room (default 2000)")
    p.add_argument("--chatters", type=int, default=100, help="of them chatting (default 100: 0.5 msg/s each)")
    p.add_argument("--rate", type=float, default=50.0, help="chat messages/s in the room, all together (default 50)")
    p.add_argument("--sample", type=float, default=0.05, help="share of viewers timing chat delivery (0.05)")
    p.add_argument("--before", type=float, default=10.0, help="seconds of chat before the start (default 10)")
    p.add_argument("--after", type=float, default=50.0, help="seconds of chat from the start (default 50)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds after the start before giving up waiting "
                                                                 "for rows, mails and notices (default 120)")
    p.add_argument("--runs", type=int, default=3, help="starts, each by a new seller (default 3)")
    p.add_argument("--worker", action="store_true", help="JOBS_IN_PROCESS=false and a `live worker` process (an "
                                                         "embedded Redis carries its pushes to the server)")
    p.add_argument("--job-workers", type=int, default=1, help="with --worker: how many `live worker` processes "
                                                                "(each has its own SMTP connection; default 1)")
    p.add_argument("--profile-worker", action="store_true", help="with --worker: run the (first) worker under "
                                                                  "cProfile, written to OUT/worker.prof at its exit")
    p.add_argument("--sink-full-poll", action="store_true", help="experiment: poll the sink's full statistics "
                                                                  "4 times a second (as before 2b4f7a8)")
    p.add_argument("--async-commit", action="store_true", help="experiment: synchronous_commit = off for the "
                                                               "database (no fsync wait at each commit)")
    p.add_argument("--jobs-concurrency", type=int, default=8, help="JOBS_CONCURRENCY of the job runner (default 8)")
    p.add_argument("--server-cpus", default="0", help="taskset CPUs of PostgreSQL and the server ('' none; 0)")
    p.add_argument("--generator-cpus", default="1", help="taskset CPUs of the sink and the tool (default 1)")
    p.add_argument("--database-url", help="a migrated database (default: embedded under --out/data)")
    p.add_argument("--port", type=int, help="live serve's port (default: a free one)")
    p.add_argument("--target-enqueue-s", type=float, default=2.0, help="target: all enqueued within (2 s)")
    p.add_argument("--target-mail-per-s", type=float, default=300.0, help="target: mails/s at the sink (300)")
    p.add_argument("--target-notice-s", type=float, default=1.0, help="target: every online notice within (1 s)")
    p.add_argument("--out", default="/tmp/live-notify", help="reports, logs and the embedded database")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    a = p.parse_args(argv)
    if not 1 <= a.followers <= 100_000 or not 0 <= a.online <= a.followers:
        p.error("--followers must be 1..100000 and --online 0..--followers")
    if not 1 <= a.viewers <= 20_000 or not 1 <= a.chatters <= a.viewers or a.rate <= 0 or a.rate / a.chatters > 0.5:
        p.error("--viewers 1..20000, --chatters 1..--viewers, --rate > 0 and at most 0.5 per chatter (the chat limit)")
    if not 1 <= a.job_workers <= 8 or (a.job_workers > 1 and not a.worker):
        p.error("--job-workers 1..8, and more than 1 only with --worker")
    if not 1 <= a.runs <= 20 or a.before < 1 or a.after < 1 or a.timeout < 1:
        p.error("--runs 1..20; --before, --after and --timeout at least 1 s")
    from live.logging import setup_logging

    setup_logging("warning")
    return write_report(a.out, "notify", Run(a).main(), summary, rows)
