"""`python -m loadtests bench`: run the documented benchmarks in one command and print the markdown rows for
docs/benchmarks.md.

It starts our server (`live serve`, fresh data directory, demo data) pinned to --server-cpus (core 0) and the
Node reference (loadtests/reference/server.js) pinned to the same core, makes the real users the scenarios
need (`live token --count`), and runs every scenario against each server with the generator pinned to
--generator-cpus (core 1). `--scale small` (the default: 1,000 viewers, runs of 10 s) is safe on a shared
machine; `--scale full` is the documented 10,000-viewer / 5,000-buyer run, for a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

from loadtests.report import ratio_text

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).resolve().parent / "reference"
SCALES = {
    "small": {"audience": dict(viewers=1000, chatters=100, rate=50, duration=10),
              "join-storm": dict(viewers=1000),
              "flash-sale": dict(buyers=500, units=20),
              "reconnect": dict(viewers=1000, chatters=20, rate=10, duration=10, drop=0.3)},
    "full": {"audience": dict(viewers=10000, chatters=100, rate=50, duration=20),
             "join-storm": dict(viewers=10000),
             "flash-sale": dict(buyers=5000, units=100),
             "reconnect": dict(viewers=10000, chatters=100, rate=50, duration=20, drop=0.3)},
}
ORDER = ("join-storm", "audience", "flash-sale", "reconnect")  # join-storm first: memory per connection
# is measured on a fresh server, before other runs leave freed memory to reuse


def http_json(url: str, body: dict | None = None, token: str | None = None) -> dict:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
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


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.secret = args.secret or "bench-" + secrets.token_hex(24)
        self.env = {**os.environ, "LIVE_DATA_DIR": str(self.out / "data"), "JWT_SECRET": self.secret,
                    "LOG_LEVEL": "warning", "SEED_DEMO": "true"}
        self.bin = Path(sys.executable).parent
        self.procs: list[subprocess.Popen] = []
        self.rows: dict[str, list[str]] = {s: [] for s in ORDER}
        self.commands: list[str] = []

    # ---- servers ----

    def start_live(self) -> tuple[subprocess.Popen, str]:
        port = self.args.port
        cmd = pinned(self.args.server_cpus, [str(self.bin / "live"), "serve", "--port", str(port),
                                             "--workers", str(self.args.workers)])
        proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=open(self.out / "live.log", "w"))
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(f"{url}/api/v1/healthz", proc)
        return proc, url

    def start_node(self, units: int) -> tuple[subprocess.Popen, str] | None:
        if shutil.which("node") is None or not (REFERENCE / "node_modules" / "socket.io").exists():
            print("bench: node or loadtests/reference/node_modules missing (cd loadtests/reference && npm ci): "
                  "no reference runs", file=sys.stderr)
            return None
        port = self.args.ref_port
        cmd = pinned(self.args.server_cpus, ["node", str(REFERENCE / "server.js"), "--port", str(port),
                                             "--secret", self.secret, "--stock", str(units)])
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.out / "node.log", "w"))
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(f"{url}/healthz", proc)
        return proc, url

    def tokens(self, user: str, count: int, role: str = "customer") -> Path:
        path = self.out / f"{user}.txt"
        with open(path, "w") as f:
            subprocess.run([str(self.bin / "live"), "token", "--user", user, "--count", str(count), "--role", role],
                           env=self.env, cwd=ROOT, stdout=f, check=True)
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

    # ---- runs ----

    def run(self, target: str, url: str, pid: int, scenario: str, opts: list[str]) -> dict | None:
        name = f"{target}-{scenario}"
        report = self.out / f"{name}.json"
        cmd = [sys.executable, "-m", "loadtests", scenario, "--url", url, *opts, "--server-pid", str(pid),
               "--json", str(report), "--html", str(self.out / f"{name}.html"), "--no-progress"]
        shown = " ".join("$JWT_SECRET" if c == self.secret else c for c in pinned(self.args.generator_cpus, cmd))
        self.commands.append(f"{target} {scenario}: {shown.replace(sys.executable, 'python')}")
        print(f"\n== {target} {scenario}", flush=True)
        subprocess.run(pinned(self.args.generator_cpus, cmd), cwd=ROOT)
        time.sleep(2)  # let the server close the sockets before the next run
        return json.loads(report.read_text()) if report.exists() else None

    def scenarios(self, target: str, url: str, pid: int, chatters: Path, buyers: Path, seller: str | None) -> None:
        scale = SCALES[self.args.scale]
        secret = ["--secret", self.secret]
        for scenario in self.args.only:
            s = scale[scenario]
            if scenario == "audience":
                opts = ["--viewers", str(s["viewers"]), "--chatters", str(s["chatters"]), "--rate", str(s["rate"]),
                        "--duration", str(s["duration"]), "--tokens", str(chatters), *secret]
            elif scenario == "join-storm":
                opts = ["--viewers", str(s["viewers"]), "--duration", "1", *secret]
            elif scenario == "flash-sale":
                opts = ["--viewers", str(s["buyers"]), "--tokens", str(buyers), *secret]
                if seller is not None:
                    opts += ["--variant", self.stock_to(url, seller, s["units"])]
            else:
                opts = ["--viewers", str(s["viewers"]), "--chatters", str(s["chatters"]), "--rate", str(s["rate"]),
                        "--duration", str(s["duration"]), "--drop", str(s["drop"]), "--tokens", str(chatters), *secret]
            r = self.run(target, url, pid, scenario, opts)
            if r is not None:
                self.rows[scenario].append(row(scenario, target, r, f"bench --scale {self.args.scale}"))

    def main(self) -> None:
        scale = SCALES[self.args.scale]
        try:
            live, url = self.start_live()
            chatters = self.tokens("bench-chatter", max(s.get("chatters", 0) for s in scale.values()))
            buyers = self.tokens("bench-buyer", scale["flash-sale"]["buyers"])
            seller = self.tokens("demo-seller", 1, role="seller").read_text().strip()
            if "live" in self.args.targets:
                self.scenarios("live", url, live.pid, chatters, buyers, seller)
            if "node" in self.args.targets:
                started = self.start_node(scale["flash-sale"]["units"])
                if started is not None:
                    node, node_url = started
                    self.scenarios("node", node_url, node.pid, chatters, buyers, None)
        finally:
            for proc in self.procs:
                proc.terminate()
            for proc in self.procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        print(self.markdown())

    def markdown(self) -> str:
        lines = [f"\n## Rows for docs/benchmarks.md ({self.args.scale} scale; reports in {self.out})"]
        for scenario in ORDER:
            if self.rows[scenario]:
                lines.append(f"\n{scenario}:\n" + "\n".join(self.rows[scenario]))
        lines.append("\nCommands:\n" + "\n".join(self.commands))
        return "\n".join(lines)


def _ms(v) -> str:
    return "-" if v is None else f"{v:,.0f} ms"


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1f} %"


def row(scenario: str, target: str, r: dict, scale: str = "") -> str:
    """One markdown table row in the layout of docs/benchmarks.md."""
    today = date.today().isoformat()
    gen = max((p["run_cpu_pct"] or 0 for p in r["generator"]["procs"]), default=None)
    joingen = max((p["join_cpu_pct"] or 0 for p in r["generator"]["procs"]), default=None)
    server = r.get("server") or {}
    sat = " (generator saturated)" if r["generator"]["saturated"] else ""
    if scenario == "audience":
        d, lat = r["delivery"], r["latency_ms"]["delivery"]
        return (f"| {today} | {target} | {r['viewers']['joined']:,} | {d['messages_sent']:,} | {ratio_text(d)} "
                f"({d['deliveries']:,}) | {d['duplicates']} | {_ms(lat['p50'])} | {_ms(lat['p95'])} | "
                f"{_ms(lat['p99'])} | {_ms(lat['max'])} | {_pct(server.get('cpu_pct_run'))} | "
                f"{server.get('cpu_us_per_delivery', '-')} µs | {_pct(gen)}{sat} |")
    if scenario == "join-storm":
        j = r["latency_ms"]["join"]
        after = r["viewers"]["all_joined_s"]
        return (f"| {today} | {target} | {scale} | {r['viewers']['joined']:,} | "
                f"{'-' if after is None else f'{after:.1f} s'} | "
                f"{_ms(j['p50'])} / {_ms(j['p99'])} | {server.get('kb_per_connection', '-')} KB | "
                f"{_pct(server.get('cpu_pct_join'))} | {_pct(joingen)}{sat} |")
    if scenario == "flash-sale":
        f, a = r["flash_sale"], r["latency_ms"]["ack"].get("cart:add", {})
        return (f"| {today} | {target} | {f['buyers']:,} | {f['initial_available']} | {f['succeeded']:,} | "
                f"{f['out_of_stock']:,} | {f['other_errors'] or 'none'} | {_ms(a.get('p50'))} / {_ms(a.get('p99'))} / "
                f"{_ms(a.get('max'))} | {f['stock_zero_seen_by']:,} of {f['watchers']:,} | "
                f"{'YES' if f['oversold'] else 'no'} |")
    c, d = r["reconnect"], r["delivery"]
    return (f"| {today} | {target} | {r['viewers']['joined']:,} | {c['dropped']:,} | {c['recovered']:,} | "
            f"{c['missing_after_rejoin']} | {c['duplicates_after_rejoin']} | {_ms(c['rejoin_ms']['p50'])} / "
            f"{_ms(c['rejoin_ms']['p99'])} | {ratio_text(d)} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="live-loadtest bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=list(SCALES), default="small")
    p.add_argument("--only", default=",".join(ORDER), help="comma-separated scenarios (default: all)")
    p.add_argument("--targets", default="live,node", help="live, node or both (default)")
    p.add_argument("--server-cpus", default="0", help="taskset CPU list for the servers (default 0)")
    p.add_argument("--generator-cpus", default="1", help="taskset CPU list for the generator (default 1)")
    p.add_argument("--workers", type=int, default=1, help="live serve --workers (default 1)")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--ref-port", type=int, default=8091)
    p.add_argument("--secret", help="JWT secret for both servers (default: random)")
    p.add_argument("--out", default="/tmp/live-bench", help="data directory, tokens and reports (default "
                                                             "/tmp/live-bench; its data/ is reused)")
    args = p.parse_args(argv)
    args.only = [s for s in args.only.split(",") if s]
    args.targets = [t for t in args.targets.split(",") if t]
    unknown = set(args.only) - set(ORDER)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    Bench(args).main()
    return 0
