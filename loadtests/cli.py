"""live-loadtest: simulate an audience against a running live server and report what it saw.

  live-loadtest audience   --url http://127.0.0.1:8080 --viewers 10000 --chatters 100 --rate 50 \\
                           --reactions 20 --duration 30 --ramp 10 --secret "$JWT_SECRET" --tokens users.txt
  live-loadtest join-storm --viewers 10000 --secret "$JWT_SECRET" --server-pid PID --max-join-s 5
  live-loadtest flash-sale --viewers 5000 --tokens buyers.txt --max-ack-p99-ms 500
  live-loadtest reconnect  --viewers 2000 --chatters 20 --rate 10 --drop 0.3 --tokens users.txt
  live-loadtest audience   --viewers 10000 --chatters 100 --rate 50 --procs 4 --probe-viewers 500 --batch \\
                           --rooms 200 --room-viewers 50 --room-chatters 4 --room-rate 2 --server-cores 0 ...
  live-loadtest bench --help          (the documented benchmarks, server pinned to core 0)
  live-loadtest fulfillment --help    (labels drain with a kill -9, tracking webhook storm: loadtests/fulfillment.py)

Viewers are raw websockets (Engine.IO v4 / Socket.IO v5), so one process drives thousands; --procs K spreads
them over K processes. Chatters and buyers must be real users: pass their tokens (`live token --user NAME
--count N`, one per line) with --tokens; the first viewers use those tokens, the others get tokens minted
with --secret (the server's JWT_SECRET) or join anonymously. Exit status: 0 when every threshold and check
passed, 1 when one failed, 2 for a usage error. docs/loadtests.md has the details.
"""
from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
import uuid
from urllib.parse import urlparse

from loadtests.coordinator import Coordinator
from loadtests.probe import CoreStat, ServerProbe, metrics_url, parse_cores, scrape
from loadtests.report import build, table, write_json
from loadtests.scenarios import SCENARIOS
from loadtests.worker import Plan, Room

CHAT_LIMIT_PER_USER = 0.5  # the server's default: 5 messages per 10 s per user


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="live-loadtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=list(SCENARIOS))
    a = p.add_argument_group("target")
    a.add_argument("--url", default="http://127.0.0.1:8080", help="the server (http://host:port)")
    a.add_argument("--path", default="/socket.io/", help="Socket.IO path (default /socket.io/)")
    a.add_argument("--stream", default="demo", help="stream id or slug (default demo)")
    a.add_argument("--secret", help="the server's JWT_SECRET: mint tokens for viewers without one from --tokens")
    a.add_argument("--issuer", default="live", help="issuer of minted tokens (default live)")
    a.add_argument("--tokens", help="file of tokens of real users, one per line; used by the first viewers "
                                    "(chatters, buyers)")
    a.add_argument("--server-pid", type=int, help="the server's pid: report its CPU and memory (with children)")
    a.add_argument("--metrics", help="the server's Prometheus endpoint (default URL/metrics; 'none' to skip)")
    a.add_argument("--server-cores", help="the server's cores (a taskset list: 0, 0,1, 0-3): report their "
                                          "/proc/stat user, system, softirq, irq, idle and busy %% over the running "
                                          "phase (server.cores)")
    s = p.add_argument_group("audience")
    s.add_argument("--viewers", type=int, default=100, help="viewers (default 100)")
    s.add_argument("--chatters", type=int, default=0, help="viewers that chat (need --tokens)")
    s.add_argument("--rate", type=float, default=0.0, help="chat messages per second, all chatters together")
    s.add_argument("--reactions", type=float, default=0.0, help="reactions per second, all viewers together")
    s.add_argument("--duration", type=float, default=10.0, help="seconds of chat after everyone joined (default "
                                                                "10); join-storm: seconds to hold; flash-sale: unused")
    s.add_argument("--ramp", type=float, default=0.0, help="seconds over which viewers connect (0: at once)")
    s.add_argument("--sample", type=float, default=0.05, help="share of viewers that decode messages and "
                                                              "measure latency (default 0.05)")
    s.add_argument("--probe-viewers", type=int, default=0,
                   help="with --procs K >= 2: process 0 is the probe (all chatters and N viewers that decode and time "
                        "every message), the other K-1 hold the rest of the audience and only count; latency comes "
                        "from the probe alone (default 0: every process samples --sample)")
    s.add_argument("--batch", action="store_true", help="viewers opt into batched room events (CONNECT auth "
                                                        "batch: 1; one `batch` event per write)")
    s.add_argument("--deflate", action="store_true", help="viewers offer permessage-deflate at the handshake "
                                                          "(as browsers do); compressed frames are inflated once per "
                                                          "process per distinct chunk")
    s.add_argument("--buyers", type=int, help="flash-sale: buyers (default: one per token in --tokens)")
    s.add_argument("--variant", help="flash-sale: variant id (default: the spotlight's first in stock)")
    s.add_argument("--qty", type=int, default=1, help="flash-sale: quantity per buyer (default 1)")
    s.add_argument("--drop", type=float, default=0.3, help="reconnect: share of viewers that drop (default 0.3)")
    s.add_argument("--pause", type=float, default=1.0, help="reconnect: seconds before rejoining (default 1)")
    r = p.add_argument_group("many rooms (audience; all in process 0, every viewer tracked)")
    r.add_argument("--rooms", type=int, default=0, help="small rooms besides --stream (default 0); their streams "
                                                        "must exist and be live")
    r.add_argument("--room-viewers", type=int, default=50, help="viewers per small room (default 50)")
    r.add_argument("--room-chatters", type=int, default=4, help="chatters per small room (default 4), with tokens "
                                                                "from --tokens after the main room's chatters")
    r.add_argument("--room-rate", type=float, default=2.0, help="chat messages per second per small room (default 2)")
    r.add_argument("--room-prefix", default="bench-room-", help="small room i's slug is PREFIX<i>, i = 1..N "
                                                                "(default bench-room-)")
    g = p.add_argument_group("generator")
    g.add_argument("--procs", type=int, default=1, help="generator processes (default 1)")
    g.add_argument("--concurrency", type=int, default=200, help="connections being opened at once, in all")
    g.add_argument("--join-timeout", type=float, default=30.0)
    g.add_argument("--ack-timeout", type=float, default=15.0)
    g.add_argument("--drain", type=float, default=5.0, help="at most this many seconds for the last messages")
    g.add_argument("--seed", type=int, default=1, help="random seed (sampled viewers, who drops)")
    o = p.add_argument_group("output")
    o.add_argument("--json", help="write the report as JSON to FILE ('-' for stdout)")
    o.add_argument("--html", help="write a self-contained HTML report with plots to FILE")
    o.add_argument("--progress", action="store_true", help="print the progress line even when stderr is not a TTY")
    o.add_argument("--no-progress", action="store_true", help="no progress line")
    o.add_argument("--quiet", action="store_true", help="no summary table")
    t = p.add_argument_group("thresholds (exit status 1 when one fails)")
    t.add_argument("--max-p99-ms", type=float, help="delivery latency p99 (join-storm: join latency p99)")
    t.add_argument("--max-ack-p99-ms", type=float, help="ack p99 of chat:send (flash-sale: of cart:add)")
    t.add_argument("--min-delivery", type=float, help="delivered ratio, e.g. 0.999")
    t.add_argument("--max-join-s", type=float, help="seconds until every viewer has joined")
    return p


def read_tokens(path: str | None) -> list[str]:
    if not path:
        return []
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def check_url(p: argparse.ArgumentParser, url: str) -> None:
    """--url must be http://host[:port] with a port in range (both generators)."""
    u = urlparse(url)
    if u.scheme != "http" or not u.hostname:
        p.error("--url must be http://host[:port] (TLS is not supported: test the server behind its proxy)")
    try:
        _ = u.port  # raises ValueError for a port out of range
    except ValueError as exc:  # a port out of 0-65535, or not a number
        p.error(f"--url {url!r}: {exc}")


def validate(p: argparse.ArgumentParser, args, tokens: list[str]) -> int:
    """Check the options; return the number of actors (chatters or buyers)."""
    check_url(p, args.url)
    if args.viewers < 1 or not 1 <= args.procs <= args.viewers:
        p.error("--viewers must be >= 1 and --procs between 1 and --viewers")
    if not 0 <= args.sample <= 1 or not 0 <= args.drop <= 1:
        p.error("--sample and --drop are shares between 0 and 1")
    actors = 0
    if args.scenario in ("audience", "reconnect"):
        actors = args.chatters
        if args.rate > 0 and actors == 0:
            p.error("--rate needs --chatters (and their tokens in --tokens)")
        if args.rate > 0 and args.rate / actors > CHAT_LIMIT_PER_USER:
            print(f"warning: {args.rate / actors:.2f} messages/s per chatter is over the server's default limit "
                  f"(5 per 10 s): expect rate_limited refusals; "
                  f"use --chatters >= {args.rate / CHAT_LIMIT_PER_USER:.0f}",
                  file=sys.stderr)
    elif args.scenario == "flash-sale":
        actors = args.buyers if args.buyers is not None else min(args.viewers, len(tokens))
        if actors < 1:
            p.error("flash-sale needs buyers: tokens of real users in --tokens (live token --user buyer --count N)")
        if args.qty < 1:
            p.error("--qty must be >= 1")
    if actors > args.viewers:
        p.error(f"{actors} chatters/buyers but only {args.viewers} viewers")
    if actors > len(tokens):
        p.error(f"{actors} chatters/buyers need as many tokens in --tokens (one per line); got {len(tokens)}")
    if args.reactions > 0 and not (tokens or args.secret):
        p.error("--reactions needs signed-in viewers: --secret or --tokens")
    validate_probe(p, args, actors)
    validate_rooms(p, args, actors, tokens)
    return actors


def validate_probe(p: argparse.ArgumentParser, args, actors: int) -> None:
    if args.probe_viewers < 0:
        p.error("--probe-viewers must be >= 0")
    if not args.probe_viewers:
        return
    if args.scenario not in ("audience", "reconnect"):
        p.error("--probe-viewers is for the audience and reconnect scenarios")
    if args.procs < 2:
        p.error(f"--probe-viewers needs --procs >= 2 (process 0 is the probe, the others hold the bulk "
                f"audience); got --procs {args.procs}")
    bulk = args.viewers - actors - args.probe_viewers
    if bulk < args.procs - 1:
        p.error(f"--probe-viewers {args.probe_viewers} and {actors} chatters leave {bulk} of --viewers "
                f"{args.viewers} for {args.procs - 1} bulk processes: each needs at least one")


def validate_rooms(p: argparse.ArgumentParser, args, actors: int, tokens: list[str]) -> None:
    if args.rooms < 0:
        p.error("--rooms must be >= 0")
    if not args.rooms:
        return
    if args.scenario != "audience":
        p.error("--rooms is for the audience scenario")
    if args.room_viewers < 1 or not 0 <= args.room_chatters <= args.room_viewers:
        p.error("--room-viewers must be >= 1 and --room-chatters between 0 and --room-viewers")
    if args.room_rate < 0:
        p.error("--room-rate must be >= 0")
    if args.room_rate > 0 and args.room_chatters == 0:
        p.error("--room-rate needs --room-chatters")
    if args.room_rate > 0 and args.room_rate / args.room_chatters > CHAT_LIMIT_PER_USER:
        p.error(f"--room-rate {args.room_rate:g} over {args.room_chatters} chatters is "
                f"{args.room_rate / args.room_chatters:.2f} messages/s each, over the server's limit of 5 per 10 s "
                f"per user and stream: use --room-chatters >= {math.ceil(args.room_rate / CHAT_LIMIT_PER_USER)}")
    if not args.room_prefix or any(c.isspace() for c in args.room_prefix):
        p.error("--room-prefix must be a non-empty slug prefix")
    need = actors + args.rooms * args.room_chatters
    if need > len(tokens):
        p.error(f"{actors} chatters and {args.rooms} rooms x {args.room_chatters} chatters need {need} tokens in "
                f"--tokens; got {len(tokens)}")


def make_rooms(args, tokens: list[str], actors: int) -> list[Room]:
    """The small rooms: room i (1..N) is stream PREFIX<i>, its chatters' tokens follow the main room's."""
    c = args.room_chatters
    return [Room(slug=f"{args.room_prefix}{i}", viewers=args.room_viewers,
                 tokens=tokens[actors + (i - 1) * c:actors + i * c], actors=c, rate=args.room_rate)
            for i in range(1, args.rooms + 1)]


def shares(args, tokens: list[str], actors: int) -> list[tuple[int, list[str], int, float]]:
    """Per process: (viewers, file tokens, chatters/buyers, sample). Without --probe-viewers viewer g goes to
    process g % K; with it, process 0 holds the chatters and the probe viewers (all tracked) and viewer g of the
    rest goes to bulk process 1 + g % (K - 1) (none sampled, none timing: `Plan.timed`)."""
    k = args.procs
    if not args.probe_viewers:
        return [(len(range(i, args.viewers, k)), tokens[i::k], len(range(i, actors, k)), args.sample)
                for i in range(k)]
    n = actors + args.probe_viewers
    rest, bulk = tokens[n:], args.viewers - n
    return [(n, tokens[:n], actors, 1.0)] + [(len(range(i, bulk, k - 1)), rest[i::k - 1], 0, 0.0)
                                             for i in range(k - 1)]


def make_plans(args, tokens: list[str], actors: int, t0: float) -> list[Plan]:
    """Each process's share of the viewers, chatters/buyers, tokens and rates (`shares`); the small rooms of
    --rooms all go to process 0."""
    u = urlparse(args.url)
    k = args.procs
    rooms = make_rooms(args, tokens, actors) if args.rooms else []
    tokens = tokens[:actors] if rooms else tokens[:args.viewers]  # the rooms' chatters' tokens are theirs alone
    authenticated = args.viewers if args.secret else len(tokens)
    run_id = uuid.uuid4().hex[:8]
    plans = []
    for i, (viewers, my_tokens, mine, sample) in enumerate(shares(args, tokens, actors)):
        my_auth = viewers if args.secret else len(my_tokens)
        plans.append(Plan(
            scenario=args.scenario, proc=i, host=u.hostname, port=u.port or 80, path=args.path, stream=args.stream,
            viewers=viewers, file_tokens=my_tokens, secret=args.secret, issuer=args.issuer, actors=mine,
            rate=args.rate * mine / actors if actors else 0.0,
            reactions=args.reactions * my_auth / authenticated if authenticated else 0.0,
            sample=sample, drop=args.drop, pause=args.pause, duration=args.duration, ramp=args.ramp,
            concurrency=max(1, args.concurrency // k), join_timeout=args.join_timeout,
            ack_timeout=args.ack_timeout, drain=args.drain, variant=args.variant, qty=args.qty, run_id=run_id,
            seed=args.seed, t0=t0, batch=args.batch, deflate=args.deflate, rooms=rooms if i == 0 else [],
            timed=not args.probe_viewers or i == 0))
    return plans


def tokens_of(p: argparse.ArgumentParser, path: str | None) -> list[str]:
    """The --tokens file's tokens (a usage error when it cannot be read)."""
    try:
        return read_tokens(path)
    except OSError as exc:
        p.error(f"--tokens: {exc}")


def core_stat(p: argparse.ArgumentParser, spec: str | None) -> CoreStat | None:
    """The reader of --server-cores' /proc/stat lines, or None (a usage error for a bad list or core)."""
    if not spec:
        return None
    try:
        return CoreStat(parse_cores(spec))
    except (ValueError, OSError) as exc:
        p.error(str(exc) if str(exc).startswith("--server-cores") else f"--server-cores: {exc}")


def run(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    tokens = tokens_of(p, args.tokens)
    actors = validate(p, args, tokens)
    cores = core_stat(p, args.server_cores)
    if args.scenario == "flash-sale":
        args.buyers = actors
    scenario = SCENARIOS[args.scenario]()
    probe = ServerProbe(args.server_pid)
    murl = metrics_url(args.url, args.metrics)
    metrics_before = scrape(murl)
    probe.mark("start")
    t0 = time.time()
    plans = make_plans(args, tokens, actors, t0)
    progress = not args.no_progress and (args.progress or sys.stderr.isatty())
    coord = Coordinator(args, plans, scenario, probe, murl, progress, cores)
    coord.start()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        out = asyncio.run(coord.main())
    except KeyboardInterrupt:
        for proc in coord.procs:
            proc.kill()
        print("interrupted", file=sys.stderr)
        return 130
    if coord.refused_rooms:
        for line in coord.refused_rooms:
            print(f"live-loadtest: error: {line}", file=sys.stderr)
        return 2
    report = build(args, coord, out, scenario, metrics_before)
    if not args.quiet:
        print(table(report), file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        write_json(report, args.json)
    if args.html:
        from loadtests.htmlreport import write_html

        write_html(report, args.html)
    return 0 if report["passed"] else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from loadtests.bench import main as bench

        return bench(argv[1:])
    if argv[:1] == ["fulfillment"]:
        from loadtests.fulfillment import main as fulfillment

        return fulfillment(argv[1:])
    return run(argv)
