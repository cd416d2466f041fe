"""The numbers of `python -m loadtests media` (loadtests/media.py): a step's result from its viewers' counts and the
processes' CPU, glass-to-glass latency from the probes' frame numbers and the publisher's send times, the summary
and the rows for docs/benchmarks.md."""
from __future__ import annotations

import math
import os
from datetime import date

from loadtests.procs import cpus

CLK_TCK = os.sysconf("SC_CLK_TCK")
BUSY_WAIT = 20.0  # % of a window the worker waited for a CPU, past which a step's limit is said to be the machine's


def cpu_seconds(pids: list[int]) -> int:
    """utime + stime (all threads) of these processes, in clock ticks; a process gone counts 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def run_queue_ns(pids: list[int]) -> int:
    """Time these processes' threads were runnable but waiting for a CPU (/proc/<pid>/task/*/schedstat), in ns:
    on a busy machine, what they lacked."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total


def percentile(values: list[float], q: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def sent_fps(sent: list[float], start: float, end: float) -> float:
    return round(sum(1 for t in sent if start <= t < end) / (end - start), 2)


def frame_of(number: int, at: float, sent: list[float], wrap: int = 1 << 16) -> int | None:
    """The frame a number read at `at` was: the pixels carry it modulo 2^16 (36 min at 30 fps), so the last frame
    with that number sent before `at`."""
    k = number + (len(sent) - 1 - number) // wrap * wrap if 0 <= number < len(sent) else -1
    while k >= 0 and sent[k] > at:
        k -= wrap
    return k if k >= 0 else None


def latencies(numbers: list[list], sent: list[float]) -> dict:
    """Glass-to-glass in ms: each probe frame's receive time after decode minus the send time of its number."""
    frames = [(frame_of(n, at, sent), at) for n, at in numbers if n is not None]
    ms = [(at - sent[k]) * 1000 for k, at in frames if k is not None]
    r = {q: round(v, 1) if (v := percentile(ms, x)) is not None else None
         for q, x in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))}
    return {**r, "frames": len(ms), "unmatched": len(numbers) - len(ms)}


def step_result(n: int, ready: int, join_s: float, viewers: list[dict], cpu: dict, load: list[float], a,
                waiting: dict | None = None) -> dict:
    fps = [v["fps"] for v in viewers]
    bulk = [v["kbps"] for v in viewers if not v["probe"]]
    waits = [v["first_frame_s"] for v in viewers if v["first_frame_s"] is not None]
    ups = [v.get("connected_s") for v in viewers if v.get("connected_s") is not None]
    cpu = {**cpu, "clients": round(cpu["publisher"] + cpu["viewers"], 1)}
    limit = []
    if not fps or min(fps) < a.min_fps:
        limit.append(f"a viewer < {a.min_fps:g} fps")
    if cpu["server"] >= a.max_cpu:
        limit.append(f"worker >= {a.max_cpu:g} % CPU")
    if ready < n:
        limit.append(f"{n - ready} viewers without a frame")
    if cpu["clients"] >= 95 * len(cpus(a.client_cpus) or range(os.cpu_count() or 1)):
        limit.append("the clients' CPUs are full")
    starved = (waiting or {}).get("server", 0.0)
    if limit and starved >= BUSY_WAIT:
        limit.append(f"the worker waited for a CPU {starved:g} % of the window: a busy machine, not its own cost")
    return {"viewers": n, "probes": sum(v["probe"] for v in viewers), "ready": ready, "join_s": join_s,
            "window_s": a.seconds, "load_average": load,
            "fps": {"min": min(fps, default=0.0), "p5": percentile(fps, 0.05), "median": percentile(fps, 0.5)},
            "lost": {"total": sum(v["lost"] for v in viewers), "max": max((v["lost"] for v in viewers), default=0)},
            "first_frame_s": {"median": percentile(waits, 0.5), "max": max(waits, default=None),
                              "none": len(viewers) - len(waits)},
            "connected_s": {"median": percentile(ups, 0.5), "max": max(ups, default=None)},
            "kbps_median": percentile(bulk, 0.5), "unreadable": sum(v.get("unreadable", 0) for v in viewers),
            "cpu": cpu, "run_queue_wait": waiting or {},
            "per_core_linear": round(n * 100 / cpu["server"]) if cpu["server"] > 0 else None,
            "numbers": [x for v in viewers if v["probe"] for x in v["numbers"]],
            "limit": ", ".join(limit) or None}


def _ms(v) -> str:
    return "-" if v is None else f"{v:.0f} ms"


def summary(report: dict, brief: bool = False) -> str:
    lines = []
    for s in report["steps"]:
        wait = s["first_frame_s"]
        up = s.get("connected_s") or {}
        line = (f"{s['viewers']} viewers ({s['ready']} with a frame after {s['join_s']} s; from its answer, "
                f"connected median {up.get('median')} s, max {up.get('max')} s, first frame median {wait['median']} "
                f"s, max {wait['max']} s): fps min {s['fps']['min']}, p5 "
                f"{s['fps']['p5']}, median {s['fps']['median']}; lost {s['lost']['total']} (max {s['lost']['max']} "
                f"per viewer); worker CPU {s['cpu']['server']} %, clients {s['cpu']['clients']} % (publisher "
                f"{s['cpu']['publisher']} %); load {s['load_average'][0]}")
        if s["run_queue_wait"]:
            line += "; waiting for a CPU " + ", ".join(f"{g} {v} %" for g, v in s["run_queue_wait"].items())
        if s.get("publisher_fps") is not None:
            line += f"; publisher sent {s['publisher_fps']} fps"
        if s.get("keyframe_requests"):
            line += (f"; keyframes asked of the publisher {s['keyframe_requests']['joining']} while joining, "
                     f"{s['keyframe_requests']['window']} in the window")
        if "latency_ms" in s:
            lat = s["latency_ms"]
            line += f"; latency p50 {_ms(lat['p50'])}, p95 {_ms(lat['p95'])}, p99 {_ms(lat['p99'])}"
        if s["limit"]:
            line += f"; limit: {s['limit']}"
        lines.append(line)
    if brief:
        return "\n".join(lines)
    head = [f"media: {report['command']} ({report['started_at']}, {report['machine']['cpus']} cpus "
            f"{report['machine']['cpu_model']}, load {report['machine']['load_average']} -> "
            f"{report['machine'].get('load_average_end')})"]
    if report.get("publisher"):
        head.append(f"publisher: {report['publisher']['frames']} frames at {report['publisher']['fps_sent']} fps")
    cap = report.get("capacity")
    if cap:
        head.append(f"capacity of one core: {cap['viewers']} viewers held (stopped by: {cap['limited_by']}); "
                    f"linear estimate from the last step that held: {cap['per_core_linear']}")
    for s in report["steps"][:1]:
        head += [f"check {'PASS' if c['passed'] else 'FAIL'}: {c['name']}" for c in s.get("checks", [])]
    return "\n".join(head + lines)


def rows(report: dict) -> str:
    out = ["| date | viewers | fps sent; received min / p5 / median | lost | first frame max (connected max) | "
           "latency p50 / p95 / p99 | worker CPU | clients CPU (publisher) | kbit/s per viewer | load avg; "
           "waiting for a CPU: worker, viewers |", "|" + " --- |" * 10]
    for s in report["steps"]:
        lat, fps, wait = s.get("latency_ms") or {}, s["fps"], s["run_queue_wait"]
        out.append(f"| {date.today().isoformat()} | {s['viewers']} | {s.get('publisher_fps')}; {fps['min']} / "
                   f"{fps['p5']} / {fps['median']} | {s['lost']['total']} | {s['first_frame_s']['max']} s "
                   f"({(s.get('connected_s') or {}).get('max')} s) | "
                   f"{_ms(lat.get('p50'))} / {_ms(lat.get('p95'))} / {_ms(lat.get('p99'))} | {s['cpu']['server']} % | "
                   f"{s['cpu']['clients']} % ({s['cpu']['publisher']} %) | {s['kbps_median']} | "
                   f"{s['load_average'][0]}; {wait.get('server')} %, {wait.get('viewers')} % |")
    return "\n".join(out)
