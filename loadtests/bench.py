"""`python -m loadtests bench`: run the documented benchmarks in one command and print the markdown rows for
docs/benchmarks.md.

It starts our server (`live serve`, fresh data directory, demo data) pinned to --server-cpus (core 0), and the
other targets pinned to the same core when asked (--targets): the Node reference (loadtests/reference/server.js)
and the naive server (`python -m loadtests naive-server`). It makes the real users the scenarios need (`live
token --count`), opens the many-rooms scenario's streams through the seller REST API, and runs every scenario
(loadtests/bench_scenarios.py) against each target with the generators pinned to --generator-cpus (core 1),
--runs times. `audience-2w` runs on a second `live serve --workers 2` of its own (port --port + 2, data
OUT/data-2w) spread over both cores, its generators sharing them. `--scale small` (the default: at most 1,000
viewers a run, runs of 10 s) is safe on a shared machine; `--scale full` is the documented 10,000-viewer run,
for a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from loadtests import bench_scenarios as plan
from loadtests.bench_rows import header, hub_delta, row
from loadtests.probe import scrape

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).resolve().parent / "reference"
SCALES, ORDER = plan.SCALES, plan.ORDER


def http_json(url: str, body: dict | None = None, token: str | None = None, method: str | None = None) -> dict:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method=method or ("GET" if body is None else "POST"))
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode} ({url})")
        try:
            http_json(url)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server did not answer {url} within {seconds:.0f} s")


def pinned(cpus: str | None, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus and shutil.which("taskset") else cmd


def fd_limit() -> int:
    """The file limit a server started from here may raise its soft limit to (live/runner.py does)."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


class TimerPoller(threading.Thread):
    """Reads the server's /metrics every second during a run; keeps the most rooms seen holding a hub timer
    (`live_hub_timers`): "one timer per busy room, none when idle" is a count over time, not an end value."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.most, self.done = url, None, threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            s = scrape(self.url, timeout=2)
            value = (s or {}).get(("live_hub_timers", ()))
            if value is not None:
                self.most = value if self.most is None else max(self.most, value)

    def stop(self) -> float | None:
        self.done.set()
        self.join(5)
        return self.most


class Server:
    """A target server we started: its pid, base URL and health path."""

    def __init__(self, name: str, proc: subprocess.Popen, url: str):
        self.name, self.proc, self.url = name, proc, url


class Bench:
    def __init__(self, args, scale: dict[str, dict] | None = None):
        self.args = args
        self.scale = scale or SCALES[args.scale]
        plan.validate(self.scale)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.secret = args.secret or "bench-" + secrets.token_hex(24)
        self.env = self.live_env(self.out / "data")
        self.bin = Path(sys.executable).parent
        self.procs: list[subprocess.Popen] = []
        self.rows: dict[str, list[str]] = {s: [] for s in ORDER}
        self.commands: dict[str, str] = {}
        self.servers: list[str] = []  # how each target server was started
        self.notes: list[str] = []

    def live_env(self, data: Path) -> dict:
        return {**os.environ, "LIVE_DATA_DIR": str(data), "JWT_SECRET": self.secret, "LOG_LEVEL": "warning",
                "SEED_DEMO": "true"}

    def shown(self, cmd: list[str]) -> str:
        """`cmd` as the report shows it: the secret as $JWT_SECRET, the interpreter as python."""
        return " ".join("$JWT_SECRET" if c == self.secret else c for c in cmd).replace(sys.executable, "python")

    # ---- servers ----

    def spawn(self, name: str, cmd: list[str], cpus: str | None, env: dict | None, port: int, health: str) -> Server:
        proc = subprocess.Popen(pinned(cpus, cmd), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=open(self.out / f"{name}.log", "w"))
        data = f"LIVE_DATA_DIR={env['LIVE_DATA_DIR']} " if env and "LIVE_DATA_DIR" in env else ""
        self.servers.append(f"{name}: {data}{self.shown(pinned(cpus, cmd))}")
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url + health, proc)
        return Server(name, proc, url)

    def start_live(self, port: int, workers: int, cpus: str, data: Path, name: str = "live") -> Server:
        cmd = [str(self.bin / "live"), "serve", "--port", str(port), "--workers", str(workers)]
        return self.spawn(name, cmd, cpus, self.live_env(data), port, "/api/v1/healthz")

    def start_node(self, units: int) -> Server | None:
        if shutil.which("node") is None or not (REFERENCE / "node_modules" / "socket.io").exists():
            print("bench: node or loadtests/reference/node_modules missing (cd loadtests/reference && npm ci): "
                  "no reference runs", file=sys.stderr)
            return None
        cmd = ["node", str(REFERENCE / "server.js"), "--port", str(self.args.ref_port), "--secret", self.secret,
               "--stock", str(units)]
        return self.spawn("node", cmd, self.args.server_cpus, None, self.args.ref_port, "/healthz")

    def start_naive(self) -> Server:
        port = self.args.naive_port
        cmd = [sys.executable, "-m", "loadtests", "naive-server", "--port", str(port)]
        return self.spawn("naive", cmd, self.args.server_cpus, None, port, "/healthz")

    def stop(self, server: Server) -> None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()

    def tokens(self, user: str, count: int, role: str = "customer", env: dict | None = None) -> Path:
        """A file of `count` users' tokens (made in env's data directory, this server's by default)."""
        env = env or self.env
        tag = "" if env is self.env else "-" + Path(env["LIVE_DATA_DIR"]).name
        path = self.out / f"{user}{tag}.txt"
        with open(path, "w") as f:
            subprocess.run([str(self.bin / "live"), "token", "--user", user, "--count", str(max(count, 1)), "--role",
                            role], env=env, cwd=ROOT, stdout=f, check=True)
        return path

    def stock_to(self, url: str, seller: str, units: int) -> str:
        """Set the spotlighted product's first variant to `units` available (seller REST); its id."""
        stream = http_json(f"{url}/api/v1/livestreams/demo")
        products = http_json(f"{url}/api/v1/livestreams/demo/products")["items"]
        product = next(p for p in products if p["id"] == stream["spotlight_product_id"])
        variant = sorted(product["variants"], key=lambda v: v["sku"])[0]
        delta = units - variant["available"]
        if delta:
            http_json(f"{url}/api/v1/variants/{variant['id']}/stock",
                      {"delta": delta, "reason": "benchmark: flash-sale stock"}, token=seller)
        return variant["id"]

    def open_rooms(self, url: str, rooms: int, env: dict) -> None:
        """Streams {ROOM_PREFIX}1..N, live, through the seller REST API, spread over enough sellers that none
        passes the REST write limit (one seller may run any number of live streams: nothing limits it but
        that). A stream left by an earlier run in the same --out is reused when live (or not yet started)."""
        sellers = self.tokens("bench-seller", plan.sellers_needed(rooms), role="seller", env=env).read_text().split()
        per = -(-rooms // len(sellers))
        for i in range(1, rooms + 1):
            token, slug = sellers[(i - 1) // per], f"{plan.ROOM_PREFIX}{i}"
            try:
                status = rest(f"{url}/api/v1/livestreams", {"title": f"Bench room {i}", "slug": slug}, token)["status"]
            except urllib.error.HTTPError as exc:
                if exc.code != 409:
                    raise
                status = http_json(f"{url}/api/v1/livestreams/{slug}")["status"]
            if status == "ended":
                raise SystemExit(f"bench: stream {slug} has ended in {env['LIVE_DATA_DIR']} (an ended stream cannot "
                                 f"go live again): use a fresh --out")
            if status != "live":
                rest(f"{url}/api/v1/livestreams/{slug}/start", {}, token)
        print(f"bench: {rooms} rooms live ({plan.ROOM_PREFIX}1..{rooms}, {len(sellers)} sellers)", flush=True)

    # ---- runs ----

    def run(self, target: Server, scenario: str, args: list[str], label: str) -> tuple[dict | None, dict]:
        """One generator run; (its JSON report or None, the hub's /metrics deltas over it)."""
        name = f"{target.name}-{scenario}{label.replace(', run ', '-').replace(' ', '')}"
        report = self.out / f"{name}.json"
        report.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "loadtests", *args, "--json", str(report)]
        if plan.html_ok(scenario):
            cmd += ["--html", str(self.out / f"{name}.html"), "--no-progress"]
        cpus = self.args.both_cpus if scenario == "audience-2w" else self.args.generator_cpus
        self.commands.setdefault(f"{target.name} {scenario}", self.shown(pinned(cpus, cmd)))
        print(f"\n== {target.name} {scenario}{label}", flush=True)
        murl = target.url + "/metrics"
        before = scrape(murl)
        poller = TimerPoller(murl) if scenario == "rooms" and before else None
        if poller:
            poller.start()
        rc = subprocess.run(pinned(cpus, cmd), cwd=ROOT).returncode
        hub = hub_delta(before, scrape(murl))
        if poller:
            hub["timers_max"] = poller.stop()
        time.sleep(2)  # let the server close the sockets before the next run
        if not report.exists():  # no row for it: say so under the rows
            self.notes.append(f"{target.name} {scenario}{label}: no report (generator exit {rc})")
            return None, hub
        return json.loads(report.read_text()), hub

    def scenarios(self, target: Server, ctx: plan.Ctx, seller: str | None, only: list[str]) -> None:
        for scenario in only:
            s = self.scale[scenario]
            if scenario == "rooms":
                s, note = plan.fit_fds(s, fd_limit())
                if note:
                    print(f"bench: {note}", file=sys.stderr)
                    self.notes.append(note)
            for n in range(1, self.args.runs + 1):
                if scenario == "flash-sale":
                    ctx.variant = self.stock_to(target.url, seller, s["units"]) if seller else None
                label = f", run {n}" if self.args.runs > 1 else ""
                r, hub = self.run(target, scenario, plan.generator(scenario, s, ctx), label)
                if r is not None:
                    if scenario == "join-storm":
                        label = f"bench --scale {self.args.scale}{label}"
                    self.rows[scenario].append(row(scenario, target.name, r, label, hub))

    def main(self) -> None:
        args, scale = self.args, self.scale
        wanted = [s for s in ORDER if s in args.only]
        try:
            live = self.start_live(args.port, args.workers, args.server_cpus, self.out / "data")
            chatters = self.tokens("bench-chatter", plan.chatter_tokens(scale, wanted))
            buyers = self.tokens("bench-buyer", scale["flash-sale"]["buyers"])
            seller = self.tokens("demo-seller", 1, role="seller").read_text().strip()
            ctx = plan.Ctx(live.url, self.secret, chatters, buyers, args.server_cpus, args.generator_cpus,
                           live.proc.pid)
            for target in args.targets:
                only = [s for s in wanted if s in plan.TARGETS[target] and s != "audience-2w"]
                if not only:
                    continue
                if target == "live":
                    if "rooms" in only:
                        self.open_rooms(live.url, scale["rooms"]["rooms"], self.env)
                    self.scenarios(live, ctx, seller, only)
                    continue
                server = self.start_node(scale["flash-sale"]["units"]) if target == "node" else self.start_naive()
                if server is not None:
                    self.scenarios(server, plan.Ctx(server.url, self.secret, chatters, buyers, args.server_cpus,
                                                    args.generator_cpus, server.proc.pid), None, only)
                    self.stop(server)
            if "audience-2w" in wanted and "live" in args.targets:
                self.stop(live)
                self.two_workers()
            elif "audience-2w" in wanted:
                self.notes.append("audience-2w runs only with the live target (--targets live,...): skipped")
        finally:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in self.procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        print(self.markdown())

    def two_workers(self) -> None:
        """audience-2w: `live serve --workers 2` on both cores (one worker cannot deliver 20,000 × 50 msg/s in one
        core), the generators on both cores too; its own port, data directory and users."""
        s, data = self.scale["audience-2w"], self.out / "data-2w"
        server = self.start_live(self.args.port + 2, s["workers"], self.args.both_cpus, data, name="live-2w")
        env = self.live_env(data)  # users of its own database
        ctx = plan.Ctx(server.url, self.secret, self.tokens("bench-chatter", s["chatters"], env=env), Path(),
                       self.args.both_cpus, self.args.both_cpus, server.proc.pid)
        self.scenarios(server, ctx, None, ["audience-2w"])
        self.stop(server)

    def markdown(self) -> str:
        lines = [f"\n## Rows for docs/benchmarks.md ({self.args.scale} scale; reports in {self.out})", "",
                 "Servers:"] + [f"    {s}" for s in self.servers]
        for scenario in ORDER:
            if not self.rows[scenario]:
                continue
            lines.append(f"\n### {scenario}\n")
            lines += [f"    {name}: {cmd}" for name, cmd in self.commands.items() if name.endswith(f" {scenario}")]
            head = header(scenario)
            lines += ([""] + [head] if head else [""]) + self.rows[scenario]
        lines += [f"\nNote: {n}" for n in self.notes]
        return "\n".join(lines)


def rest(url: str, body: dict, token: str, tries: int = 5) -> dict:
    """POST as a seller; a 429 waits its Retry-After (an earlier run's writes within the minute) and tries again."""
    for _ in range(tries):
        try:
            return http_json(url, body, token=token)
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                raise
            wait = float(exc.headers.get("Retry-After") or 5)
            print(f"bench: {url}: rate limited, waiting {wait:.0f} s", file=sys.stderr, flush=True)
            time.sleep(wait)
    raise SystemExit(f"bench: {url}: still rate limited after {tries} tries")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="live-loadtest bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=list(SCALES), default="small")
    p.add_argument("--only", default=",".join(ORDER), help="comma-separated scenarios (default: all): "
                   + ", ".join(ORDER))
    p.add_argument("--targets", default="live,node", help="comma-separated: live, node (the Node reference), naive "
                                                          "(default live,node)")
    p.add_argument("--runs", type=int, default=1, help="runs of each scenario, one row each (default 1)")
    p.add_argument("--server-cpus", default="0", help="taskset CPU list for the servers (default 0)")
    p.add_argument("--generator-cpus", default="1", help="taskset CPU list for the generators (default 1)")
    p.add_argument("--both-cpus", default="0,1", help="audience-2w: the 2-worker server's and its generators' "
                                                      "CPUs (default 0,1)")
    p.add_argument("--workers", type=int, default=1, help="live serve --workers (default 1; audience-2w uses 2)")
    p.add_argument("--port", type=int, default=8090, help="live (default 8090; audience-2w's server: port + 2)")
    p.add_argument("--ref-port", type=int, default=8091)
    p.add_argument("--naive-port", type=int, default=8093)
    p.add_argument("--secret", help="JWT secret for every server (default: random)")
    p.add_argument("--out", default="/tmp/live-bench", help="data directories, tokens and reports (default "
                                                             "/tmp/live-bench; its data/ is reused)")
    args = p.parse_args(argv)
    args.only = [s for s in args.only.split(",") if s]
    args.targets = [t for t in args.targets.split(",") if t]
    unknown = set(args.only) - set(ORDER)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))} (known: {', '.join(ORDER)})")
    bad = set(args.targets) - set(plan.TARGETS)
    if bad:
        p.error(f"unknown targets: {', '.join(sorted(bad))} (known: {', '.join(plan.TARGETS)})")
    if args.runs < 1:
        p.error("--runs must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    Bench(parse(argv)).main()
    return 0
