"""`python -m loadtests flushbench`: what one flush of a busy room costs (issue 17, point 2: measure it first).

One uvloop writer process, pinned to --writer-cpu (0), accepts --connections loopback TCP connections (10,000)
from --sinks sink processes pinned to --sink-cpu (1): plain uvloop readers that read at once and discard. Then, for
each variant, it times --flushes flushes (after one untimed warm-up), each a `transport.write(buf)` per socket as
`live.rooms.hub.Hub._flush` does, with --gap seconds between them for the sinks to drain. A variant is the bytes per
write (512, 1536, 4096, 8192) and the websocket text frames in them (1, or 15 frames of the same total, built with
`live.rooms.wsframes.text_frame`).

Per flush (means over the timed flushes): wall ms, µs per write, the writer's CPU (getrusage, user + system) and
the writer core's /proc/stat deltas (user, system, softirq; tick-based, so only meaningful as means over many
flushes), and how many sockets still held unsent bytes right after the flush (0: every write went to the kernel
whole). The JSON (`--json`) also has every flush's wall time and, per frame count, the fit of µs per write =
a + b·bytes. The sinks run as `python -m loadtests.flushbench sink ...`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import uvloop

from live.rooms.wsframes import text_frame
from live.runner import raise_nofile
from loadtests.probe import CoreStat

ROOT = Path(__file__).resolve().parent.parent
SIZES = (512, 1536, 4096, 8192)
FRAMES = (1, 15)
CLK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def pin(cpu: int | None) -> None:
    if cpu is not None and cpu >= 0:
        os.sched_setaffinity(0, {cpu})


def build(total: int, frames: int) -> bytes:
    """`frames` websocket text frames of socket.io-like packets, `total` bytes in all (headers included)."""
    sizes = [total // frames + (1 if i < total % frames else 0) for i in range(frames)]
    out = []
    for size in sizes:
        payload_len = size - 2 if size - 2 < 126 else size - 4
        head, tail = b'42["chat:new",{"text":"', b'"}]'
        filler = max(0, payload_len - len(head) - len(tail))
        payload = (head + b"x" * filler + tail)[:payload_len]
        out.append(text_frame(payload))
    buf = b"".join(out)
    assert len(buf) == total, (len(buf), total)
    return buf


def cpu_ticks(core: CoreStat) -> dict[str, int]:
    """The /proc/stat ticks of the writer's core: user (with nice), system, irq, softirq."""
    t = core.read()
    return {"user": t["user"] + t["nice"], "system": t["system"], "irq": t["irq"], "softirq": t["softirq"]}


def rusage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


# --- sink: a plain reader on the sink core ---

class _Sink(asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        pass


async def _sink(port: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    conns = []
    for start in range(0, count, 250):
        conns += await asyncio.gather(*(loop.create_connection(_Sink, "127.0.0.1", port)
                                        for _ in range(min(250, count - start))))
    await asyncio.Event().wait()  # until the writer ends this process


def sink_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="flushbench sink")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--cpu", type=int, default=-1)
    args = p.parse_args(argv)
    pin(args.cpu)
    raise_nofile()
    uvloop.run(_sink(args.port, args.count))
    return 0


# --- writer ---

class _Accepted(asyncio.Protocol):
    def __init__(self, bench: Writer):
        self.bench = bench

    def connection_made(self, transport) -> None:
        self.bench.accepted(transport)

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc) -> None:
        self.bench.lost += 1


class Writer:
    def __init__(self, args):
        self.args = args
        self.transports: list = []
        self.lost = 0
        self.ready: asyncio.Future | None = None
        try:
            self.core = CoreStat([args.writer_cpu])
        except ValueError as exc:
            raise SystemExit(f"flushbench: --writer-cpu: {exc}") from None

    def accepted(self, transport) -> None:
        self.transports.append(transport)
        if len(self.transports) == self.args.connections and self.ready and not self.ready.done():
            self.ready.set_result(None)

    async def connect(self, procs: list[subprocess.Popen]) -> None:
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        server = await loop.create_server(lambda: _Accepted(self), "127.0.0.1", 0, backlog=4096)
        port = server.sockets[0].getsockname()[1]
        n, k = self.args.connections, self.args.sinks
        for i in range(k):
            count = n // k + (1 if i < n % k else 0)
            cmd = [sys.executable, "-m", "loadtests.flushbench", "sink", "--port", str(port), "--count", str(count),
                   "--cpu", str(self.args.sink_cpu)]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        deadline = time.monotonic() + self.args.connect_timeout
        while not self.ready.done():
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"{len(self.transports)} of {n} connections accepted; a sink exited or time ran out")
            await asyncio.sleep(0.1)
        server.close()

    def flush(self, buf: bytes) -> dict:
        transports = self.transports
        ticks0, (u0, s0) = cpu_ticks(self.core), rusage()
        t0 = time.perf_counter()
        for transport in transports:
            transport.write(buf)
        t1 = time.perf_counter()
        (u1, s1), ticks1 = rusage(), cpu_ticks(self.core)
        buffered = sum(1 for t in transports if t.get_write_buffer_size())
        return {"wall": t1 - t0, "proc_user": u1 - u0, "proc_sys": s1 - s0, "buffered": buffered,
                **{f"cpu_{key}": ticks1[key] - ticks0[key] for key in ticks0}}

    async def variant(self, size: int, frames: int) -> dict:
        buf = build(size, frames)
        runs = []
        for i in range(self.args.flushes + 1):
            await asyncio.sleep(self.args.gap)
            run = self.flush(buf)
            if i:  # the first flush warms up
                runs.append(run)
        n, k = len(self.transports), len(runs)
        wall = [r["wall"] * 1000 for r in runs]

        def mean(key: str, scale: float) -> float:
            return round(sum(r[key] for r in runs) * scale / k, 2)

        return {"variant": f"{size}B x{frames}", "bytes": size, "frames": frames, "method": "transport.write",
                "writes": n, "flushes": k,
                "wall_ms": round(statistics.fmean(wall), 2), "wall_ms_p50": round(statistics.median(wall), 2),
                "wall_ms_max": round(max(wall), 2), "us_per_write": round(statistics.fmean(wall) * 1000 / n, 3),
                "proc_cpu_ms": round(mean("proc_user", 1000) + mean("proc_sys", 1000), 2),
                "proc_user_ms": mean("proc_user", 1000), "proc_sys_ms": mean("proc_sys", 1000),
                **{f"cpu{self.args.writer_cpu}_{key}_ms": mean(f"cpu_{key}", CLK_MS)
                   for key in ("user", "system", "softirq", "irq")},
                "buffered_max": max(r["buffered"] for r in runs), "wall_ms_all": [round(w, 2) for w in wall]}


def fit(rows: list[dict]) -> dict:
    """Per frame count, the least-squares line µs per write = a + b·bytes over the sizes measured."""
    out = {}
    for frames in sorted({r["frames"] for r in rows}):
        pts = [(r["bytes"], r["us_per_write"]) for r in rows if r["frames"] == frames]
        if len(pts) < 2:
            continue
        mx, my = statistics.fmean(p[0] for p in pts), statistics.fmean(p[1] for p in pts)
        sxx = sum((x - mx) ** 2 for x, _ in pts)
        b = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else 0.0
        out[f"frames_{frames}"] = {"a_us": round(my - b * mx, 3), "b_us_per_kb": round(b * 1024, 3)}
    return out


def table(report: dict) -> str:
    c = report["config"]["writer_cpu"]
    cols = ["variant", "wall ms", "p50 ms", "max ms", "µs/write", "proc cpu ms", "usr/sys ms",
            f"cpu{c} usr ms", f"cpu{c} sys ms", f"cpu{c} softirq ms", "buffered"]
    lines = [" | ".join(cols), " | ".join("---" for _ in cols)]
    for r in report["variants"]:
        lines.append(" | ".join(str(v) for v in (
            r["variant"], r["wall_ms"], r["wall_ms_p50"], r["wall_ms_max"], r["us_per_write"], r["proc_cpu_ms"],
            f"{r['proc_user_ms']}/{r['proc_sys_ms']}", r[f"cpu{c}_user_ms"], r[f"cpu{c}_system_ms"],
            r[f"cpu{c}_softirq_ms"], r["buffered_max"])))
    cfg = report["config"]
    head = (f"flushbench: {cfg['connections']} loopback sockets, writer on cpu{c}, {cfg['sinks']} sinks on "
            f"cpu{cfg['sink_cpu']}, {cfg['flushes']} flushes per variant (means per flush; "
            f"/proc/stat in {CLK_MS:.0f} ms ticks)")
    fits = "; ".join(f"{k}: {v['a_us']} µs + {v['b_us_per_kb']} µs/KB" for k, v in report["fit"].items())
    return "\n".join([head, "", *lines, "", f"µs per write = a + b·bytes: {fits}"])


async def _bench(args) -> dict:
    writer = Writer(args)
    procs: list[subprocess.Popen] = []
    try:
        await writer.connect(procs)
        rows = []
        for frames in args.frame_counts:
            for size in args.sizes:
                rows.append(await writer.variant(size, frames))
                if not args.json:
                    print(f"  {rows[-1]['variant']}: {rows[-1]['wall_ms']} ms", file=sys.stderr)
        return {"config": {k: v for k, v in vars(args).items() if k != "json"}, "lost": writer.lost,
                "variants": rows, "fit": fit(rows)}
    finally:
        for t in writer.transports:
            t.abort()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sink"]:
        return sink_main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m loadtests flushbench", description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--flushes", type=int, default=20, help="timed flushes per variant (after one warm-up)")
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=list(SIZES),
                   help="bytes per write, comma-separated")
    p.add_argument("--frame-counts", type=lambda s: [int(x) for x in s.split(",")], default=list(FRAMES),
                   help="websocket frames per write, comma-separated")
    p.add_argument("--sinks", type=int, default=2, help="sink processes (the connections split among them)")
    p.add_argument("--writer-cpu", type=int, default=0)
    p.add_argument("--sink-cpu", type=int, default=1)
    p.add_argument("--gap", type=float, default=0.2, help="seconds between flushes")
    p.add_argument("--connect-timeout", type=float, default=120)
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")
    args = p.parse_args(argv)
    pin(args.writer_cpu)
    _, limit, _ = raise_nofile()  # the soft limit up to the hard one
    if limit != resource.RLIM_INFINITY and args.connections + 100 > limit:
        raise SystemExit(f"{args.connections} connections need more than RLIMIT_NOFILE {limit}")
    report = uvloop.run(_bench(args))
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
