"""`python -m loadtests fulfillment`: issue 13's fulfillment benchmarks, one command (docs/loadtests.md).

  python -m loadtests fulfillment --out /tmp/live-fulfillment                  # 1,000 orders, 5,000 webhooks a route
  python -m loadtests fulfillment --orders 60 --storm-shipments 60 --out DIR   # a quick small run

labels-drain: N paid orders whose labels were asked for (a queued `shipping.buy_label` job each) are bought from
the fake Shippo (tests/shipping/fake_shippo.py, its own process) by two `live worker` processes; the first is
killed with -9 once a third of the labels exist. Checks: exactly N labels at the provider, one per shipment
(its metadata), every shipment and order `label_created`, no buy job left; numbers: the drain's time, labels/s.
The killed worker's jobs wait for JOBS_HEARTBEAT_SECONDS (--heartbeat) before the other worker takes them.

tracking-storm: four carrier events per labelled shipment plus --duplicates of them again, shuffled, POSTed to
`live serve` at --concurrency (tracking_storm.py) on each route (`shippo`: the drain's shipments; `sandbox`:
shipments labelled by the sandbox carrier in a seeding step), whose job workers run in process (JOBS_IN_PROCESS=true:
the webhooks are answered once stored, their `shipping.apply_tracking` jobs apply them on the same core). Checks,
once no apply job is left: every answer 200, each distinct event stored once and applied, every shipment and order
`delivered`; numbers: answer latency p50/p99/max (threshold --target-p99-ms), webhooks/s, the server's CPU, the
seconds from the last answer until every apply job ran (given up after --drain-timeout).

The database (embedded PostgreSQL under --out unless --database-url) and the servers (`live worker`, `live serve`)
run on --server-cpus, the fake Shippo, the seeding and the webhook generator on --generator-cpus (taskset).
Writes OUT/fulfillment.json and OUT/fulfillment.txt (the summary, also printed, with the rows for
docs/benchmarks.md). Exit status 0 when every check and threshold passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
from datetime import datetime, timezone

from live.config import load_settings
from loadtests import fulfillment_seed as seeding
from loadtests import labels_drain, tracking_storm
from loadtests.bench import wait_healthy
from loadtests.fulfillment_report import rows, summary
from loadtests.probe import ServerProbe
from loadtests.procs import Processes, cpus, free_port, sql, wait_port, write_report

SCENARIOS = ("labels-drain", "tracking-storm")
ROUTES = ("shippo", "sandbox")
PACE_FAR = "86400"  # seeded sandbox shipments: their own timeline events are due in a day (the storm sends ours)


class Run(Processes):
    def __init__(self, args):
        super().__init__(args.out, args.database_url)
        self.args = args
        self.key = "shippo_test_bench" + secrets.token_hex(8)
        self.token = "bench-webhook-" + secrets.token_hex(16)
        self.secret = "bench-" + secrets.token_hex(24)
        self.shippo_port = args.shippo_port or free_port()
        self.shippo_base = f"http://127.0.0.1:{self.shippo_port}"

    # ---- processes ----

    def env(self, *, shippo: bool = True, **extra: str) -> dict[str, str]:
        env = {"DATABASE_URL": self.dsn, "JWT_SECRET": self.secret, "LIVE_DATA_DIR": str(self.out / "data"),
               "SEED_DEMO": "false", "LOG_LEVEL": "warning", "LIVE_ENV": "development"}
        if shippo:
            env.update(SHIPPO_API_KEY=self.key, SHIPPO_API_BASE=self.shippo_base, SHIPPO_WEBHOOK_TOKEN=self.token)
        env.update(extra)
        return env

    def database(self) -> None:
        self.migrate(self.args.server_cpus)
        if asyncio.run(sql(self.dsn, "SELECT count(*) FROM shipments", value=True)):
            raise SystemExit("fulfillment: the database already has shipments: use a fresh one (the fake Shippo's "
                             "transaction ids restart with its process, and old label jobs would join the drain)")

    def fake_shippo(self) -> None:
        proc = self.spawn("fake-shippo", [sys.executable, "-m", "tests.shipping.fake_shippo", "--port",
                                          str(self.shippo_port), "--key", self.key], self.args.generator_cpus)
        wait_port(self.shippo_port, proc)

    def worker(self, name: str) -> subprocess.Popen:
        return self.spawn(name, [sys.executable, "-m", "live", "worker"], self.args.server_cpus, self.env(
            JOBS_HEARTBEAT_SECONDS=str(self.args.heartbeat), JOBS_CONCURRENCY=str(self.args.jobs_concurrency),
            SANDBOX_CARRIER_PACE_SECONDS=PACE_FAR))

    def serve(self) -> tuple[subprocess.Popen, str]:
        """The storm's server, with its job workers in process (JOBS_IN_PROCESS=true): the webhooks are answered once
        stored and their `shipping.apply_tracking` jobs compete for the same core, as in `live serve`'s default."""
        port = self.args.port or free_port()
        proc = self.spawn("live-serve", [sys.executable, "-m", "live", "serve", "--port", str(port)],
                          self.args.server_cpus,
                          self.env(JOBS_IN_PROCESS="true", JOBS_CONCURRENCY=str(self.args.storm_jobs_concurrency),
                                   SANDBOX_CARRIER_PACE_SECONDS=PACE_FAR))
        url = f"http://127.0.0.1:{port}"
        wait_healthy(f"{url}/api/v1/healthz", proc)
        return proc, url

    # ---- the scenarios ----

    def settings(self, *, shippo: bool):
        return load_settings(self.env(shippo=shippo, SANDBOX_CARRIER_PACE_SECONDS=PACE_FAR))

    def sandbox_set(self) -> tuple[list[tuple[str, str]], dict]:
        """Shipments labelled by the sandbox carrier (their buy jobs run in the seeding process)."""
        seeded = asyncio.run(seeding.seed(self.settings(shippo=False), self.dsn, self.args.storm_shipments, "sbx",
                                          labelled=True))
        return asyncio.run(labels_drain.numbers(self.dsn, seeded.shipments)), seeded.seconds

    def storm(self, route: str, url: str, pid: int, shipments: list[tuple[str, str]]) -> dict:
        signer = None
        if route == "sandbox":
            from live.commerce.shipping.carriers import sandbox_for

            signer = sandbox_for(self.settings(shippo=False))
        target = f"{url}/webhooks/shippo?token={self.token}" if route == "shippo" else f"{url}/webhooks/sandbox-carrier"
        probe, pg = ServerProbe(pid), ServerProbe(self.postmaster())
        probe.mark("start")
        pg.mark("start")
        result = asyncio.run(tracking_storm.run(
            target, self.dsn, shipments, route, duplicates=self.args.duplicates, concurrency=self.args.concurrency,
            seed=self.args.seed, signer=signer, target_p99_ms=self.args.target_p99_ms,
            drain_timeout=self.args.drain_timeout))
        probe.mark("end")
        pg.mark("end")
        result["server_cpu_pct"] = probe.cpu_pct("start", "end")
        result["postgres_cpu_pct"] = pg.cpu_pct("start", "end")  # the embedded one's processes; None otherwise
        return result

    def main(self) -> dict:
        a = self.args
        report: dict = {"tool": "live-loadtest fulfillment", "started_at": datetime.now(timezone.utc).isoformat(
            timespec="seconds"), "params": {k: v for k, v in vars(a).items() if k != "database_url"},
            "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()}}
        try:
            self.database()
            gen = cpus(a.generator_cpus)
            if gen:
                os.sched_setaffinity(0, gen)  # seeding, polling and the webhook generator
            self.fake_shippo()
            sandbox = None
            if "tracking-storm" in a.scenarios and "sandbox" in a.routes:
                sandbox = self.sandbox_set()  # first: its in-process job drain must meet no Shippo label job
                report["sandbox_seed_s"] = {k: round(v, 2) for k, v in sandbox[1].items()}
            shippo_set = None
            if "labels-drain" in a.scenarios:
                report["labels_drain"] = asyncio.run(labels_drain.run(self, a.orders))
                shippo_set = report["labels_drain"].pop("shipments")[:a.storm_shipments]
            if "tracking-storm" in a.scenarios:
                if "shippo" in a.routes and shippo_set is None:
                    seeded = asyncio.run(seeding.seed(self.settings(shippo=True), self.dsn, a.storm_shipments,
                                                      "shp", labelled=True))
                    shippo_set = asyncio.run(labels_drain.numbers(self.dsn, seeded.shipments))
                server, url = self.serve()
                report["tracking_storm"] = []
                for route in a.routes:
                    shipments = shippo_set if route == "shippo" else sandbox[0]
                    report["tracking_storm"].append(self.storm(route, url, server.pid, shipments))
                self.stop(server)
        finally:
            self.stop_all()
            self.stop_postgres()
        results = [report.get("labels_drain")] + report.get("tracking_storm", [])
        report["passed"] = all(c["passed"] for r in results if r for c in r["checks"] + r.get("thresholds", []))
        return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="live-loadtest fulfillment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="labels-drain, tracking-storm or both (default)")
    p.add_argument("--routes", default=",".join(ROUTES), help="storm routes: shippo, sandbox or both (default)")
    p.add_argument("--orders", type=int, default=1000, help="labels-drain: paid orders (default 1000)")
    p.add_argument("--kill-at", type=float, default=1 / 3, help="share of the labels after which the first worker "
                                                                 "is killed with -9 (default 1/3; 0: no kill)")
    p.add_argument("--heartbeat", type=float, default=5.0, help="JOBS_HEARTBEAT_SECONDS of the workers (default 5)")
    p.add_argument("--jobs-concurrency", type=int, default=8, help="JOBS_CONCURRENCY of the workers (default 8)")
    p.add_argument("--drain-timeout", type=float, default=600.0, help="seconds before the drain is given up")
    p.add_argument("--storm-shipments", type=int, default=1000, help="shipments per storm route (default 1000: "
                                                                     "4,000 events + 20 %% duplicates = 5,000)")
    p.add_argument("--storm-jobs-concurrency", type=int, default=8, help="JOBS_CONCURRENCY of the storm's server, "
                                                                           "whose jobs apply the events (default 8)")
    p.add_argument("--duplicates", type=float, default=0.2, help="share of the webhooks that repeat one (0.2)")
    p.add_argument("--concurrency", type=int, default=16, help="webhooks in flight (default 16)")
    p.add_argument("--target-p99-ms", type=float, default=50.0, help="threshold on the answer p99 (default 50)")
    p.add_argument("--server-cpus", default="0", help="taskset CPUs of PostgreSQL, the workers and the server "
                                                      "('' for none; default 0)")
    p.add_argument("--generator-cpus", default="1", help="taskset CPUs of the fake Shippo, seeding and the "
                                                         "generator (default 1)")
    p.add_argument("--database-url", help="an empty or migrated database (default: embedded under --out/data)")
    p.add_argument("--port", type=int, help="live serve's port (default: a free one)")
    p.add_argument("--shippo-port", type=int, help="the fake Shippo's port (default: a free one)")
    p.add_argument("--seed", type=int, default=1, help="random seed (duplicates, order of the webhooks)")
    p.add_argument("--out", default="/tmp/live-fulfillment", help="reports, logs and the embedded database "
                                                                  "(use a fresh one)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    a = p.parse_args(argv)
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.routes = [r for r in a.routes.split(",") if r]
    if set(a.scenarios) - set(SCENARIOS) or set(a.routes) - set(ROUTES) or not a.scenarios:
        p.error(f"--scenarios takes {', '.join(SCENARIOS)}; --routes {', '.join(ROUTES)}")
    if not 1 <= a.orders <= 100_000 or not 1 <= a.storm_shipments <= 100_000:
        p.error("--orders and --storm-shipments must be between 1 and 100000")
    if "labels-drain" in a.scenarios and "shippo" in a.routes and a.storm_shipments > a.orders \
            and "tracking-storm" in a.scenarios:
        p.error("the shippo storm uses the drain's shipments: --storm-shipments must be <= --orders")
    if not 0 <= a.kill_at < 1 or not 0 <= a.duplicates < 1 or not 1 <= a.concurrency <= 256:
        p.error("--kill-at and --duplicates are shares in [0, 1); --concurrency 1..256")
    from live.logging import setup_logging

    setup_logging("warning")  # the seeding runs the project's services here: their info lines are not the report
    return write_report(a.out, "fulfillment", Run(a).main(), summary, rows)
