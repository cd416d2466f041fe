"""live-loadtest: simulate an audience against a running live server and report what it saw.

    live-loadtest audience --url http://127.0.0.1:8080 --stream demo --viewers 10000 --chatters 100 \
        --rate 50 --duration 30 --secret "$JWT_SECRET" --tokens chatters.txt --server-pid PID

Viewers are raw websockets (loadtests.client.Viewer). Chatters send `t=<unix time>` so sampled viewers can
measure delivery latency; every viewer counts what it receives, so the delivered ratio covers all of them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
import uuid
from urllib.parse import urlparse

import jwt

from loadtests.client import Stats, open_viewer


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def mint(secret: str, issuer: str = "live") -> str:
    now = int(time.time())
    return jwt.encode({"sub": str(uuid.uuid4()), "role": "customer", "name": "viewer", "iss": issuer,
                       "iat": now, "exp": now + 3600}, secret, algorithm="HS256")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class ServerProbe:
    def __init__(self, pid: int | None):
        import psutil

        self.proc = psutil.Process(pid) if pid else None
        self.t = self.cpu = 0.0

    def mark(self) -> None:
        if self.proc:
            c = self.proc.cpu_times()
            self.t, self.cpu = time.monotonic(), c.user + c.system

    def since(self) -> dict:
        if not self.proc:
            return {}
        c = self.proc.cpu_times()
        return {"server_cpu_pct": round(100 * (c.user + c.system - self.cpu) / (time.monotonic() - self.t), 1),
                "server_rss_mb": round(self.proc.memory_info().rss / 1e6, 1)}


async def audience(args) -> dict:
    u = urlparse(args.url)
    host, port = u.hostname, u.port or 80
    stats = Stats()
    probe = ServerProbe(args.server_pid)
    chat_tokens = [line.strip() for line in open(args.tokens)] if args.tokens else []
    if args.chatters > len(chat_tokens):
        raise SystemExit(f"--chatters {args.chatters} needs that many tokens in --tokens (one per line)")
    viewers = []
    started = time.monotonic()
    gen_cpu0 = cpu_seconds()
    rss0 = probe.proc.memory_info().rss if probe.proc else 0
    per_step = max(1, args.viewers // max(1, int(args.ramp * 20))) if args.ramp else args.viewers
    for i in range(args.viewers):
        token = chat_tokens[i] if i < args.chatters else (mint(args.secret) if args.secret else None)
        sample = i >= args.chatters and random.random() < args.sample
        try:
            viewers.append(await open_viewer(stats, host, port, token, args.stream, sample))
        except OSError:
            stats.error("connect_failed")
        if (i + 1) % per_step == 0:
            await asyncio.sleep(0.05 if args.ramp else 0)
    deadline = time.monotonic() + 60
    while stats.joined + sum(stats.errors.values()) < args.viewers and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    join_done = time.monotonic() - started
    idle_rss = ((probe.proc.memory_info().rss - rss0) / max(1, stats.joined)) if probe.proc else None
    chatters = viewers[: args.chatters]
    listeners = len(viewers) - len(chatters)
    await asyncio.sleep(1.5)  # let join-time counts settle
    stats.received = 0
    probe.mark()
    gen0 = cpu_seconds()
    t0 = time.monotonic()
    sent_ok = 0
    interval = args.chatters / args.rate if args.rate else 0
    n = 0

    async def chatter(v, offset: float):
        nonlocal sent_ok, n
        await asyncio.sleep(offset)
        while time.monotonic() - t0 < args.duration:
            n += 1
            ack = await v.emit("chat:send", {"stream_id": args.stream, "text": f"t={time.time():.6f} #{n}"})
            if ack.get("ok"):
                sent_ok += 1
            else:
                stats.error("chat_" + ack.get("error", {}).get("code", "failed"))
            await asyncio.sleep(interval)

    async def progress():
        while True:
            await asyncio.sleep(1)
            el = time.monotonic() - t0
            print(f"\r{el:5.1f}s viewers={stats.joined} sent={sent_ok} recv={stats.received} "
                  f"p99={(pct(stats.latencies, .99) or 0) * 1000:.0f}ms errors={sum(stats.errors.values())}",
                  end="", file=sys.stderr, flush=True)

    prog = asyncio.create_task(progress())
    if args.rate and chatters:
        await asyncio.gather(*(chatter(v, i * interval / len(chatters)) for i, v in enumerate(chatters)))
    else:
        await asyncio.sleep(args.duration)
    active = time.monotonic() - t0
    server = probe.since()
    gen_cpu = cpu_seconds() - gen0
    await asyncio.sleep(2.0)  # drain
    prog.cancel()
    print(file=sys.stderr)
    # listeners (not chatters) receive every message; chatters too, but we count all viewers
    expected = sent_ok * len(viewers)
    lat = stats.latencies
    result = {
        "scenario": args.scenario, "viewers": args.viewers, "joined": stats.joined, "chatters": len(chatters),
        "rate": args.rate, "duration_s": round(active, 1), "messages_sent": sent_ok,
        "deliveries_expected": expected, "deliveries": stats.received,
        "delivered_ratio": round(stats.received / expected, 5) if expected else None,
        "latency_ms": {k: round(v * 1000, 1) if v is not None else None for k, v in
                       (("p50", pct(lat, .5)), ("p95", pct(lat, .95)), ("p99", pct(lat, .99)),
                        ("max", max(lat) if lat else None))},
        "latency_samples": len(lat), "sampled_viewers": sum(1 for v in viewers if v.sample),
        "join_all_s": round(join_done, 2),
        "join_ms": {"p50": pct(stats.join_ms, .5), "p99": pct(stats.join_ms, .99)},
        "ack_ms": {"p50": pct(stats.ack_ms, .5), "p99": pct(stats.ack_ms, .99)},
        "duplicates": stats.duplicates, "errors": stats.errors,
        "generator_cpu_pct": round(100 * gen_cpu / active, 1),
        "generator_cpu_total_s": round(cpu_seconds() - gen_cpu0, 1),
        "server_kb_per_idle_connection": round(idle_rss / 1024, 1) if idle_rss is not None else None,
        **server,
    }
    for v in viewers:
        v.close()
    _ = listeners
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="live-loadtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["audience", "join-storm"])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--stream", default="demo")
    p.add_argument("--viewers", type=int, default=1000)
    p.add_argument("--chatters", type=int, default=0)
    p.add_argument("--rate", type=float, default=0.0, help="chat messages per second, all chatters together")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--ramp", type=float, default=0.0, help="seconds over which viewers connect (0: at once)")
    p.add_argument("--sample", type=float, default=0.05, help="share of viewers that decode and time messages")
    p.add_argument("--secret", help="the server's JWT_SECRET, to mint viewer tokens (else anonymous viewers)")
    p.add_argument("--tokens", help="file of chatter tokens, one per line (`live token --user NAME`)")
    p.add_argument("--server-pid", type=int, help="the server's pid, to report its CPU and memory")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--max-p99-ms", type=float)
    p.add_argument("--min-delivery", type=float)
    args = p.parse_args(argv)
    if args.scenario == "join-storm":
        args.chatters, args.rate, args.duration = 0, 0.0, 1.0
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(audience(args))
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    failed = (args.max_p99_ms is not None and (result["latency_ms"]["p99"] or 0) > args.max_p99_ms) or (
        args.min_delivery is not None and (result["delivered_ratio"] or 0) < args.min_delivery)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
