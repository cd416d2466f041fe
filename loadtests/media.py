"""`python -m loadtests media`: issue 15's media benchmark, one publisher and N viewers on one worker's embedded
media server (docs/benchmarks.md "Media").

  python -m loadtests media --viewers 50 --seconds 20 --out /tmp/live-media          # the acceptance run
  python -m loadtests media --ramp --seconds 10 --out /tmp/live-media-ramp           # 50, 100, 150, ... viewers

Setup: the embedded PostgreSQL (or --database-url) and `live serve` (demo data, MEDIA_MAX_SESSIONS above the most
viewers asked for, RATE_LIMITS=write=off,whep=off: every viewer comes from one address) on --server-cpus (core 0);
the demo seller's token (`live token --user demo-seller --role seller`). On --client-cpus (core 1): a publisher process
(loadtests/media_peers.py: 640x360, 30 fps VP8 at a fixed --bitrate by WHIP, the frame number drawn in the pixels,
each frame's send time recorded) and viewer processes of at most --per-proc viewers each playing by WHEP: --probes
of them decode every frame and read its number (glass-to-glass latency = receive time after decode - send time,
same host clock), the others count the reassembled frames before the decoder.

A step: the viewers join; once each has had a frame (and --warmup seconds), the measured window of --seconds
starts. Per viewer: frames received in the window (fps), frames lost (gaps in the RTP timestamps); the worker's CPU
(/proc/<pid>/stat, % of one core), PostgreSQL's, the publisher's and the viewer processes'; latency p50/p95/p99.
--ramp repeats steps of --viewers, 2x, 3x, ... until a viewer gets < --min-fps or the worker is at >= --max-cpu %
of a core (or --max-viewers, or the clients are out of CPU): the viewer capacity of one core is the last step that
held. Writes OUT/media.json and OUT/media.txt (summary and rows for docs/benchmarks.md). Exit status 0 when the
first step passed (every viewer >= --min-fps, worker CPU <= 100 %, latency p95 <= --max-p95-ms)."""
from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import select
import subprocess
import sys
import time
from datetime import datetime, timezone

from loadtests.bench import pinned, wait_healthy
from loadtests.media_report import CLK_TCK, cpu_seconds, latencies, rows, run_queue_ns, sent_fps, step_result, summary
from loadtests.procs import ROOT, Processes, cpus, free_port, write_report


def expect(proc: subprocess.Popen, word: str, seconds: float) -> str:
    """The next line of `proc` that starts with `word` (within `seconds`), else SystemExit."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"{proc.args[-1]} exited ({proc.wait()}) before `{word}`: see its log")
        if line.startswith(word):
            return line.strip()
    raise SystemExit(f"no `{word}` from {proc.args[-1]} within {seconds:.0f} s")


class Run(Processes):
    def __init__(self, a):
        super().__init__(a.out, a.database_url)
        self.a = a
        self.secret = "bench-" + secrets.token_hex(24)
        self.url = ""
        self.server: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        most = self.a.max_viewers if self.a.ramp else self.a.viewers
        return {"DATABASE_URL": self.dsn, "JWT_SECRET": self.secret, "LIVE_DATA_DIR": str(self.out / "data"),
                "SEED_DEMO": "true", "LOG_LEVEL": "warning", "LIVE_ENV": "development",
                "MEDIA_MAX_SESSIONS": str(most + 20),
                # every viewer comes from 127.0.0.1: the per-address limit of REST writes (120/min) would refuse
                # the WHEP offers and DELETEs of a step past 60 viewers
                "RATE_LIMITS": "write=off,whep=off"}

    def serve(self) -> None:
        port = self.a.port or free_port()
        profile = ["-m", "cProfile", "-o", str(self.out / "server.prof")] if self.a.profile_server else []
        self.server = self.spawn("live-serve", [sys.executable, *profile, "-m", "live", "serve", "--port", str(port)],
                                 self.a.server_cpus, self.env())
        self.url = f"http://127.0.0.1:{port}"
        wait_healthy(f"{self.url}/api/v1/healthz", self.server)

    def seller_token(self) -> str:
        out = subprocess.run([sys.executable, "-m", "live", "token", "--user", "demo-seller", "--role", "seller"],
                             cwd=ROOT, env={**os.environ, **self.env()}, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def peers(self, name: str, args: list[str]) -> subprocess.Popen:
        profile = ["-m", "cProfile", "-o", str(self.out / f"{name}.prof")] if self.a.profile_clients else []
        cmd = [sys.executable, *profile, "-m", "loadtests.media_peers", *args, "--out", str(self.out / f"{name}.json")]
        proc = subprocess.Popen(pinned(self.a.client_cpus, cmd),
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                stderr=open(self.out / f"{name}.log", "w"))
        self.procs.append(proc)
        return proc

    def pids(self, viewers: list[subprocess.Popen], publisher: subprocess.Popen) -> dict[str, list[int]]:
        groups = {"server": [self.server.pid], "publisher": [publisher.pid], "viewers": [p.pid for p in viewers]}
        pm = self.postmaster()
        if pm is not None:
            groups["postgres"] = [pm, *children(pm)]
        return groups

    def step(self, n: int, publisher: subprocess.Popen) -> dict:
        a = self.a
        k = math.ceil(n / a.per_proc)
        procs = [self.peers(f"viewers-{n}-{i}", ["viewers", "--url", self.url, "--count",
                                                 str(len(range(i, n, k))), "--probes",
                                                 str(len(range(i, min(a.probes, n), k))), "--concurrency",
                                                 str(a.concurrency), "--join-gap", str(a.join_gap), "--bulk", a.bulk])
                 for i in range(k)]
        t, joins_from = time.monotonic(), time.time()
        ready = sum(int(expect(p, "ready", 120).split()[1]) for p in procs)
        join_s = time.monotonic() - t
        time.sleep(a.warmup)
        start = time.time() + 0.5
        end = start + a.seconds
        for p in procs:
            p.stdin.write(f"window {start} {end}\n")
            p.stdin.flush()
        groups = self.pids(procs, publisher)
        time.sleep(max(0.0, start - time.time()))
        before = {g: cpu_seconds(pids) for g, pids in groups.items()}
        waited = {g: run_queue_ns(pids) for g, pids in groups.items()}
        time.sleep(max(0.0, end - time.time()))
        after = {g: cpu_seconds(pids) for g, pids in groups.items()}
        waited = {g: round((run_queue_ns(pids) - waited[g]) / 1e9 / a.seconds * 100 / len(pids), 1)
                  for g, pids in groups.items() if g != "postgres"}  # % of the window, per process
        load = [round(x, 2) for x in os.getloadavg()]
        for p in procs:
            expect(p, "done", 60)
        viewers = []
        for i, p in enumerate(procs):
            viewers += json.loads((self.out / f"viewers-{n}-{i}.json").read_text())
            p.stdin.close()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.stop(p, grace=5)
        cpu = {g: round((after[g] - before[g]) / CLK_TCK / a.seconds * 100, 1) for g in groups}
        result = step_result(n, ready, round(join_s, 1), viewers, cpu, load, a, waited)
        result["window"], result["joins_from"] = [start, end], joins_from
        return result

    def main(self) -> dict:
        a = self.a
        report: dict = {"tool": "live-loadtest media", "started_at": datetime.now(timezone.utc).isoformat(
            timespec="seconds"), "command": "python -m loadtests media " + " ".join(
                sys.argv[1:] if a.argv is None else a.argv),
            "params": {k: v for k, v in vars(a).items() if k not in ("database_url", "argv")},
            "machine": machine(), "steps": []}
        publisher = None
        try:
            self.migrate(a.server_cpus)
            gen = cpus(a.client_cpus)
            if gen:
                os.sched_setaffinity(0, gen)
            self.serve()
            publisher = self.peers("publisher", ["publisher", "--url", self.url, "--token", self.seller_token(),
                                                  "--bitrate", str(a.bitrate)])
            expect(publisher, "ready", 60)
            time.sleep(1)
            n = a.viewers
            while True:
                step = self.step(n, publisher)
                report["steps"].append(step)
                print(summary({"steps": [step]}, brief=True), flush=True)
                if not a.ramp or step["limit"] or n + a.viewers > a.max_viewers:
                    break
                n += a.viewers
                time.sleep(2)  # the last step's sessions end before the next joins
            publisher.stdin.close()
            publisher.wait(timeout=30)
            sent = json.loads((self.out / "publisher.json").read_text())
            asked = sent.get("keyframe_requests", [])
            report["publisher"] = {"fps_sent": sent["fps_sent"], "frames": len(sent["sent"]),
                                   "keyframe_requests": len(asked)}
            for step in report["steps"]:
                step["latency_ms"] = latencies(step.pop("numbers"), sent["sent"])
                step["publisher_fps"] = sent_fps(sent["sent"], *step["window"])
                # the keyframes the server asked for while this step's viewers joined, and in its window
                step["keyframe_requests"] = {"joining": sum(step["joins_from"] <= t < step["window"][0] for t in asked),
                                             "window": sum(step["window"][0] <= t < step["window"][1] for t in asked)}
                step["checks"] = checks(step, a)
        finally:
            self.stop_all(newest_first=True, grace=10)
            self.stop_postgres()
        steps = report["steps"]
        held = [s for s in steps if not s["limit"]]
        report["capacity"] = {"viewers": held[-1]["viewers"] if held else 0,
                              "limited_by": steps[-1]["limit"] if steps else None,
                              "per_core_linear": held[-1]["per_core_linear"] if held else None} if a.ramp else None
        report["passed"] = bool(steps) and all(c["passed"] for c in steps[0]["checks"])
        report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        return report


def checks(step: dict, a) -> list[dict]:
    lat = step["latency_ms"]
    return [{"name": f"every viewer >= {a.min_fps} fps", "passed": step["fps"]["min"] >= a.min_fps},
            {"name": "every viewer joined", "passed": step["ready"] == step["viewers"]},
            {"name": "worker CPU <= 100 % of a core", "passed": step["cpu"]["server"] <= 100},
            {"name": f"latency p95 <= {a.max_p95_ms:g} ms", "passed": lat["p95"] is not None
             and lat["p95"] <= a.max_p95_ms}]


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return out


def machine() -> dict:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "load_average": [round(x, 2) for x in os.getloadavg()]}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="live-loadtest media", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--viewers", type=int, default=50, help="viewers (with --ramp: the first step and the step; 50)")
    p.add_argument("--probes", type=int, default=4, help="of them decoding and timing frames (default 4)")
    p.add_argument("--seconds", type=float, default=20.0, help="measured window of a step (default 20)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds after every viewer's first frame (2)")
    p.add_argument("--ramp", action="store_true", help="steps of --viewers more until a limit")
    p.add_argument("--max-viewers", type=int, default=500, help="--ramp: stop after this many (default 500)")
    p.add_argument("--per-proc", type=int, default=25, help="viewers per viewer process (default 25)")
    p.add_argument("--concurrency", type=int, default=10, help="WHEP offers at once per viewer process (10)")
    p.add_argument("--join-gap", type=float, default=0.0, help="seconds an offer slot waits after its answer (0)")
    p.add_argument("--bulk", choices=["tap", "rtp"], default="tap", help="how bulk viewers count frames: tap = "
                   "aiortc's receiver reassembles them and they are taken before its decoder (default); rtp = from the "
                   "RTP headers after SRTP, no receiver (half the CPU: for --ramp on a small machine)")
    p.add_argument("--min-fps", type=float, default=25.0, help="target: every viewer at least (25 fps)")
    p.add_argument("--max-cpu", type=float, default=95.0, help="--ramp: the worker's %% of a core that ends it (95)")
    p.add_argument("--max-p95-ms", type=float, default=300.0, help="target: glass-to-glass p95 (300 ms)")
    p.add_argument("--server-cpus", default="0", help="taskset CPUs of PostgreSQL and the server ('' none; 0)")
    p.add_argument("--client-cpus", default="1", help="taskset CPUs of the publisher and viewers (default 1)")
    p.add_argument("--profile-server", action="store_true", help="run the server under cProfile (OUT/server.prof)")
    p.add_argument("--profile-clients", action="store_true", help="run the publisher and viewer processes under "
                                                                   "cProfile (OUT/<name>.prof)")
    p.add_argument("--bitrate", type=int, default=1000, help="the publisher's VP8 bitrate in kbit/s, fixed "
                                                              "(REMB ignored, so every step gets the same; 1000)")
    p.add_argument("--database-url", help="a migrated database (default: embedded under --out/data)")
    p.add_argument("--port", type=int, help="live serve's port (default: a free one)")
    p.add_argument("--out", default="/tmp/live-media", help="reports, logs and the embedded database")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    a = p.parse_args(argv)
    a.argv = argv
    if not 100 <= a.bitrate <= 1500 or not 1 <= a.viewers <= 2000 or not 0 <= a.probes <= a.viewers \
            or not 1 <= a.per_proc <= 200 or not 1 <= a.concurrency <= 100 or not 0 <= a.join_gap <= 10:
        p.error("--bitrate 100..1500, --viewers 1..2000, --probes 0..--viewers, --per-proc 1..200, "
                "--concurrency 1..100, --join-gap 0..10")
    if not 1 <= a.seconds <= 600 or not 0 <= a.warmup <= 60 or (a.ramp and not a.viewers <= a.max_viewers <= 5000):
        p.error("--seconds 1..600 (a viewer keeps each frame's arrival), --warmup 0..60, --max-viewers "
                "--viewers..5000")
    from live.logging import setup_logging

    setup_logging("warning")
    return write_report(a.out, "media", Run(a).main(), summary, rows)
