"""`python -m loadtests nodegen`: the audience scenario run by the second, independent load generator.

  python -m loadtests nodegen --url http://127.0.0.1:8080 --stream demo --viewers 10000 --chatters 100 \\
      --rate 50 --duration 20 --ramp 10 --secret "$JWT_SECRET" --tokens chatters.txt --probe-viewers 500 \\
      --procs 4 --generator-cpus 1 --server-pid PID --server-cores 0 --json out.json

The viewers are raw Engine.IO v4 / Socket.IO v5 websocket clients written in Node from the protocol
(loadtests/eiogen/gen.js, Node's built-in modules only), not the Python generator's code: a cross-check of its
numbers. Process 0 is the probe: every chatter and --probe-viewers viewers, which parse every room event and
time each chat message; the other --procs - 1 processes hold the rest of the audience and only count chat:new
by seq. Tokens are made as the Python generator makes them (the first lines of --tokens go to the chatters, the
others minted with --secret, or anonymous). The report has the Python generator's keys for `delivery`,
`latency_ms`, `server`, `thresholds` and `checks`, with `generator: "node"`. Exit status 0 when every threshold
and check passed, 1 when one failed (or a generator process failed), 2 for a usage error or no `node`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from loadtests.cli import CHAT_LIMIT_PER_USER, check_url, core_stat, tokens_of
from loadtests.nodegen_report import build, table
from loadtests.probe import CoreStat, ServerProbe, metrics_url, parse_cores, scrape
from loadtests.report import write_json
from loadtests.worker import mint

GEN = Path(__file__).resolve().parent / "eiogen" / "gen.js"
LINE_LIMIT = 256 * 1024 * 1024  # a result line carries every viewer's accounting
GO_DELAY_S = 0.5  # `go` names a start this far ahead, so every process starts together


class GeneratorFailed(Exception):
    pass


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="live-loadtest nodegen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument_group("target")
    a.add_argument("--url", default="http://127.0.0.1:8080", help="the server (http://host:port)")
    a.add_argument("--path", default="/socket.io/", help="Socket.IO path (default /socket.io/)")
    a.add_argument("--stream", default="demo", help="stream id or slug (default demo)")
    a.add_argument("--secret", help="the server's JWT_SECRET: mint tokens for viewers without one from --tokens")
    a.add_argument("--issuer", default="live", help="issuer of minted tokens (default live)")
    a.add_argument("--tokens", help="file of tokens of real users, one per line; the first go to the chatters")
    a.add_argument("--server-pid", type=int, help="the server's pid: report its CPU and memory (with children)")
    a.add_argument("--server-cores", help="the server's cores (e.g. 0): their /proc/stat over the chat (server.cores)")
    a.add_argument("--metrics", help="the server's Prometheus endpoint (default URL/metrics; 'none' to skip)")
    s = p.add_argument_group("audience")
    s.add_argument("--viewers", type=int, default=1000, help="viewers in all, chatters included (default 1000)")
    s.add_argument("--chatters", type=int, default=0, help="viewers that chat (need --tokens)")
    s.add_argument("--rate", type=float, default=0.0, help="chat messages per second, all chatters together")
    s.add_argument("--duration", type=float, default=10.0, help="seconds of chat after everyone joined (default 10)")
    s.add_argument("--ramp", type=float, default=0.0, help="seconds over which each process connects its viewers")
    s.add_argument("--batch", action="store_true", help="viewers opt into batched room events (CONNECT auth batch 1)")
    s.add_argument("--deflate", action="store_true", help="viewers offer permessage-deflate, as browsers do")
    g = p.add_argument_group("generator")
    g.add_argument("--procs", type=int, default=2, help="node processes: 1 probe and K-1 bulk (default 2; with 1 "
                                                        "the probe holds every viewer)")
    g.add_argument("--probe-viewers", type=int, default=500, help="viewers in the probe besides the chatters "
                                                                  "(default 500)")
    g.add_argument("--generator-cpus", help="pin the node processes to these cores (e.g. 1 or 1,2)")
    g.add_argument("--concurrency", type=int, default=200, help="connections being opened at once, in all "
                                                                "(the server takes 256 per address)")
    g.add_argument("--join-timeout", type=float, default=30.0)
    g.add_argument("--ack-timeout", type=float, default=15.0)
    g.add_argument("--drain", type=float, default=5.0, help="at most this many seconds for the last messages")
    g.add_argument("--node", default="node", help="the node binary (default: node on PATH)")
    o = p.add_argument_group("output and thresholds (exit status 1 when one fails)")
    o.add_argument("--json", help="write the report as JSON to FILE ('-' for stdout)")
    o.add_argument("--quiet", action="store_true", help="no summary table")
    o.add_argument("--min-delivery", type=float, help="delivered ratio, e.g. 0.999")
    o.add_argument("--max-p99-ms", type=float, help="delivery latency p99 (from the probe)")
    o.add_argument("--max-ack-p99-ms", type=float, help="ack p99 of chat:send")
    o.add_argument("--max-join-s", type=float, help="seconds until every viewer has joined")
    return p


def validate(p: argparse.ArgumentParser, args, tokens: list[str]) -> None:
    check_url(p, args.url)
    if args.viewers < 1 or args.procs < 1 or args.chatters < 0 or args.probe_viewers < 0:
        p.error("--viewers and --procs must be >= 1, --chatters and --probe-viewers >= 0")
    if args.chatters > args.viewers:
        p.error(f"{args.chatters} chatters but only {args.viewers} viewers")
    if args.chatters > len(tokens):
        p.error(f"{args.chatters} chatters need as many tokens in --tokens (one per line); got {len(tokens)}")
    if args.rate > 0 and not args.chatters:
        p.error("--rate needs --chatters (and their tokens in --tokens)")
    if args.rate < 0 or args.duration < 0 or args.ramp < 0 or args.concurrency < 1:
        p.error("--rate, --duration and --ramp must be >= 0, --concurrency >= 1")
    if args.procs > 1 and args.viewers - args.chatters - args.probe_viewers < args.procs - 1:
        p.error(f"--probe-viewers {args.probe_viewers} and {args.chatters} chatters leave "
                f"{max(0, args.viewers - args.chatters - args.probe_viewers)} of --viewers {args.viewers} for "
                f"{args.procs - 1} bulk processes: each needs at least one")
    if args.rate > 0 and args.rate / args.chatters > CHAT_LIMIT_PER_USER:
        print(f"warning: {args.rate / args.chatters:.2f} messages/s per chatter is over the server's default limit "
              f"(5 per 10 s): expect rate_limited refusals", file=sys.stderr)
    if args.generator_cpus:
        try:
            args.generator_cpus = set(parse_cores(args.generator_cpus))
        except ValueError as exc:
            p.error(str(exc).replace("--server-cores", "--generator-cpus"))
        allowed = os.sched_getaffinity(0)
        if not args.generator_cpus <= allowed:
            p.error(f"--generator-cpus: CPU {', '.join(map(str, sorted(args.generator_cpus - allowed)))} is not one "
                    f"this process may run on ({', '.join(map(str, sorted(allowed)))})")
    if shutil.which(args.node) is None:
        p.error(f"no node binary {args.node!r} on PATH (the second generator runs on Node >= 18: --node PATH)")


def configs(args, tokens: list[str]) -> list[dict]:
    """One config per process: viewer i gets token i of --tokens, else a minted one (or none); the probe takes
    the first chatters + probe-viewers viewers (every viewer with --procs 1), the bulk processes the rest."""
    u = urlparse(args.url)
    toks = tokens[:args.viewers] + [mint(args.secret, args.issuer) if args.secret else None
                                    for _ in range(args.viewers - min(len(tokens), args.viewers))]
    probe_n = args.viewers if args.procs == 1 else args.chatters + args.probe_viewers
    bulk = args.viewers - probe_n
    run_id = uuid.uuid4().hex[:8]
    common = {"cmd": "config", "host": u.hostname, "port": u.port or 80,
              "path": f"{args.path}?EIO=4&transport=websocket", "stream": args.stream, "batch": args.batch,
              "deflate": args.deflate,
              "concurrency": max(1, args.concurrency // args.procs), "ramp": args.ramp,
              "join_timeout": args.join_timeout, "ack_timeout": args.ack_timeout, "run_id": run_id}
    out = [{**common, "role": "probe", "proc": 0, "viewers": probe_n, "tokens": toks[:probe_n],
            "chatters": args.chatters, "rate": args.rate}]
    start = probe_n
    for k in range(1, args.procs):
        n = bulk // (args.procs - 1) + (k <= bulk % (args.procs - 1))
        out.append({**common, "role": "bulk", "proc": k, "viewers": n, "tokens": toks[start:start + n]})
        start += n
    return out


class Proc:
    """One node process: JSON lines in and out, stderr kept in a file for the failure message."""

    def __init__(self, config: dict):
        self.config, self.proc, self.err = config, None, tempfile.TemporaryFile()

    @property
    def name(self) -> str:
        return f"{self.config['role']} process {self.config['proc']}"

    async def start(self, node: str, cpus: set[int] | None) -> None:
        mine = os.sched_getaffinity(0)
        if cpus:
            os.sched_setaffinity(0, cpus)  # the child (and every thread node starts) inherits it
        try:
            self.proc = await asyncio.create_subprocess_exec(
                node, str(GEN), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self.err,
                limit=LINE_LIMIT)
        finally:
            os.sched_setaffinity(0, mine)
        self.send(self.config)

    def send(self, msg: dict) -> None:
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")

    def stderr_tail(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-1500:].strip()

    async def recv(self, kind: str, timeout: float) -> dict:
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            raise GeneratorFailed(f"{self.name}: no {kind!r} within {timeout:.0f} s") from None
        if not line:
            code = await self.proc.wait()
            raise GeneratorFailed(f"{self.name} exited with status {code} before {kind!r}: {self.stderr_tail()}")
        msg = json.loads(line)
        if msg.get("type") != kind:
            raise GeneratorFailed(f"{self.name}: expected {kind!r}, got {str(msg)[:200]}")
        return msg

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


async def drive(args, procs: list[Proc], probe: ServerProbe, cores: CoreStat | None) -> dict:
    """The phases: configs, all ready, go, all ran, stop with every seq, the results."""
    t0 = time.time()
    for p in procs:
        await p.start(args.node, args.generator_cpus)
    joined = await asyncio.gather(*(p.recv("ready", args.join_timeout + args.ramp + 60) for p in procs))
    probe.mark("joined")
    if cores is not None:  # over the interval of server.cpu_pct_run, as the Python generator reads them
        cores.start()
    t_joined = time.time()
    print(f"nodegen: {sum(r['joined'] for r in joined)}/{args.viewers} joined in {t_joined - t0:.1f} s",
          file=sys.stderr)
    at = time.time() + GO_DELAY_S
    for p in procs:
        p.send({"cmd": "go", "at": at, "until": at + args.duration})
    ran = await asyncio.gather(*(p.recv("ran", args.duration + args.ack_timeout + 60) for p in procs))
    core_pct = cores.stop() if cores is not None else None
    probe.mark("ran")
    seqs = sorted(s for r in ran for s in r["chat_seqs"])
    for p in procs:
        p.send({"cmd": "stop", "chat_seqs": seqs, "drain": args.drain})
    results = await asyncio.gather(*(p.recv("result", args.drain + 60) for p in procs))
    probe.mark("end")
    for p in procs:
        await p.proc.wait()
    return {"t0": t0, "joined_at": t_joined, "end": time.time(), "results": results, "cores": core_pct,
            "ready": joined}


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    tokens = tokens_of(p, args.tokens)
    validate(p, args, tokens)
    cores = core_stat(p, args.server_cores)
    args.scenario = "audience"  # for report.thresholds / checks
    probe = ServerProbe(args.server_pid)
    murl = metrics_url(args.url, args.metrics)
    metrics_before = scrape(murl)
    probe.mark("start")
    procs = [Proc(c) for c in configs(args, tokens)]
    try:
        run = asyncio.run(drive(args, procs, probe, cores))
    except GeneratorFailed as exc:
        print(f"nodegen: FAILED: {exc}", file=sys.stderr)
        if args.json:
            write_json({"tool": "live-loadtest nodegen", "generator": "node", "passed": False,
                        "failures": [str(exc)]}, args.json)
        return 1
    finally:
        for proc in procs:
            proc.kill()
    report = build(args, run, probe, metrics_before, scrape(murl))
    if not args.quiet:
        print(table(report), file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        write_json(report, args.json)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
