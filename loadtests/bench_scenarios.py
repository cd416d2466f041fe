"""What `python -m loadtests bench` runs: the scenarios at each scale, which target server runs which, and the
generator command line of each (pure functions: loadtests/bench.py starts the servers and runs them).

Targets: `live` (this project), `node` (the Node socket.io reference, loadtests/reference) and `naive`
(`python -m loadtests naive-server`: pre-framed bytes to every socket, the floor issue 17 measures against).
Scenario `audience-node` is the audience driven by the second generator (`python -m loadtests nodegen`), not
the Node reference server.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from loadtests.cli import CHAT_LIMIT_PER_USER  # the server's chat limit, 5 messages per 10 s per user and stream

# the probe split (issue 17): process 0 holds the chatters and PROBE tracked viewers, the other processes only
# count; the latency comes from the probe alone
_AUD_FULL = dict(viewers=10000, chatters=100, rate=50, duration=20, procs=3, probe=500)
_AUD_SMALL = dict(viewers=1000, chatters=100, rate=50, duration=10, procs=3, probe=50)
SCALES: dict[str, dict[str, dict]] = {
    "small": {"audience": _AUD_SMALL,
              "audience-batch": {**_AUD_SMALL, "batch": True},
              "audience-deflate": {**_AUD_SMALL, "batch": True, "deflate": True},
              "audience-node": _AUD_SMALL,
              # 1,000 connections in all (the shared machine's ceiling): 500 in the main room, 20 rooms of 25
              "rooms": {**_AUD_SMALL, "viewers": 500, "rooms": 20, "room_viewers": 25, "room_chatters": 5,
                        "room_rate": 2},
              "audience-2w": {**_AUD_SMALL, "procs": 4, "workers": 2},
              "join-storm": dict(viewers=1000),
              "flash-sale": dict(buyers=500, units=20),
              "reconnect": dict(viewers=1000, chatters=20, rate=10, duration=10, drop=0.3)},
    "full": {"audience": _AUD_FULL,
             "audience-batch": {**_AUD_FULL, "batch": True},
             "audience-deflate": {**_AUD_FULL, "batch": True, "deflate": True},  # what the watch page does
             "audience-node": _AUD_FULL,
             "rooms": {**_AUD_FULL, "rooms": 200, "room_viewers": 50, "room_chatters": 5, "room_rate": 2},
             "audience-2w": {**_AUD_FULL, "viewers": 20000, "procs": 4, "workers": 2},
             "join-storm": dict(viewers=10000),
             "flash-sale": dict(buyers=5000, units=100),
             "reconnect": dict(viewers=10000, chatters=100, rate=50, duration=20, drop=0.3)},
}
# join-storm first: memory per connection is measured on a fresh server, before other runs leave freed memory
# to reuse; audience-2w last: it runs on a server of its own (`live serve --workers 2`, its own port and data)
ORDER = ("join-storm", "audience", "audience-batch", "audience-deflate", "audience-node", "rooms", "flash-sale",
         "reconnect", "audience-2w")
PROBE_SPLIT = ("audience", "audience-batch", "audience-deflate", "audience-node", "audience-2w")  # one table layout
TARGETS: dict[str, tuple[str, ...]] = {
    "live": ORDER,
    "node": ("join-storm", "audience", "flash-sale", "reconnect"),  # the reference: issue 6's comparison
    "naive": ("audience", "audience-batch", "audience-node"),  # no rooms REST, carts or recovery there
}
ROOM_PREFIX = "bench-room-"
WRITES_PER_SELLER = 100  # REST writes one seller makes to open its rooms: under the `write` limit, 120 a minute
FD_RESERVE = 200  # file descriptors a worker keeps for everything but viewers (listeners, database, logs, Redis)


@dataclass
class Ctx:
    """What a generator command needs besides the scenario's numbers."""
    url: str
    secret: str
    chatters: Path  # tokens: the main room's chatters first, then each small room's
    buyers: Path
    server_cpus: str  # what --server-cores reads in /proc/stat
    generator_cpus: str
    pid: int
    variant: str | None = None  # flash-sale: the spotlighted variant, its stock set


def chatter_tokens(scale: dict[str, dict], scenarios) -> int:
    """Tokens of real users the chat needs: the most any scenario uses (rooms: main room's + every room's)."""
    return max((s.get("chatters", 0) + s.get("rooms", 0) * s.get("room_chatters", 0)
                for name, s in scale.items() if name in scenarios), default=0)


def sellers_needed(rooms: int) -> int:
    """Sellers that open `rooms` streams (a create and a start each) within the REST write limit."""
    return max(1, math.ceil(2 * rooms / WRITES_PER_SELLER))


def fit_fds(s: dict, limit: int) -> tuple[dict, str | None]:
    """The rooms scenario on one worker holds every viewer's socket: if they do not fit under the worker's file
    limit (RLIMIT_NOFILE, less FD_RESERVE), the main room is made smaller; (scenario, note or None)."""
    room_total = s.get("rooms", 0) * s.get("room_viewers", 0)
    room_max = limit - FD_RESERVE - room_total
    if s["viewers"] <= room_max:
        return s, None
    if room_max < s.get("probe", 0) + s.get("chatters", 0) + 1:
        raise SystemExit(f"bench: rooms: {room_total:,} room viewers leave no room under the file limit "
                         f"{limit:,} (ulimit -n); raise it or use fewer rooms")
    note = (f"main room {room_max:,} viewers, not {s['viewers']:,}: {room_total:,} room viewers + the main room "
            f"must fit one worker's file limit {limit:,} less {FD_RESERVE} (ulimit -n)")
    return {**s, "viewers": room_max}, note


def validate(scale: dict[str, dict]) -> None:
    """Fail loudly on numbers the server would refuse (chat limit per user) or the generator cannot run."""
    for name, s in scale.items():
        for rate, chatters, what in ((s.get("rate", 0), s.get("chatters", 0), "rate/chatters"),
                                     (s.get("room_rate", 0), s.get("room_chatters", 0), "room_rate/room_chatters")):
            if rate and (not chatters or rate / chatters > CHAT_LIMIT_PER_USER):
                raise SystemExit(f"bench: {name}: {what} over the chat limit of {CHAT_LIMIT_PER_USER}/s per user")
        if s.get("probe") and s.get("procs", 1) < 2:
            raise SystemExit(f"bench: {name}: the probe split needs procs >= 2")
        if s.get("room_chatters", 0) > s.get("room_viewers", 0):
            raise SystemExit(f"bench: {name}: more chatters than viewers in a room")


def generator(scenario: str, s: dict, ctx: Ctx) -> list[str]:
    """`python -m loadtests ...` arguments (after `-m loadtests`) of one run, without --json/--html."""
    secret = ["--secret", ctx.secret]
    common = ["--url", ctx.url, "--server-pid", str(ctx.pid)]
    if scenario == "join-storm":
        return ["join-storm", *common, "--viewers", str(s["viewers"]), "--duration", "1", *secret]
    if scenario == "flash-sale":
        opts = ["flash-sale", *common, "--viewers", str(s["buyers"]), "--tokens", str(ctx.buyers), *secret]
        return opts + (["--variant", ctx.variant] if ctx.variant else [])
    chat = ["--viewers", str(s["viewers"]), "--chatters", str(s["chatters"]), "--rate", str(s["rate"]),
            "--duration", str(s["duration"]), "--tokens", str(ctx.chatters), *secret]
    if scenario == "reconnect":
        return ["reconnect", *common, *chat, "--drop", str(s["drop"])]
    split = ["--procs", str(s["procs"]), "--probe-viewers", str(s["probe"])]
    split += ["--server-cores", ctx.server_cpus] if ctx.server_cpus else []  # unpinned: no core to read
    split += ["--batch"] if s.get("batch") else []
    split += ["--deflate"] if s.get("deflate") else []
    if scenario == "audience-node":
        return ["nodegen", *common, *chat, *split] + (["--generator-cpus", ctx.generator_cpus]
                                                      if ctx.generator_cpus else [])
    if scenario == "rooms":
        split += ["--rooms", str(s["rooms"]), "--room-viewers", str(s["room_viewers"]), "--room-chatters",
                  str(s["room_chatters"]), "--room-rate", str(s["room_rate"]), "--room-prefix", ROOM_PREFIX]
    return ["audience", *common, *chat, *split]


def html_ok(scenario: str) -> bool:
    """Whether the run's generator writes --html and takes --no-progress (the Node generator does not)."""
    return scenario != "audience-node"
