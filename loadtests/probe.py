"""What the server itself says: its CPU and memory (psutil, given --server-pid) and its Prometheus /metrics
(our server; the Node reference serves the same names), read before and after the run."""
from __future__ import annotations

import os
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


class ServerProbe:
    """CPU seconds and resident memory of the server process and its child processes (the workers of
    `live serve --workers N`; a database the server started as its child is counted too)."""

    def __init__(self, pid: int | None):
        self.proc = None
        if pid:
            import psutil

            self.proc = psutil.Process(pid)
        self.marks: dict[str, tuple[float, float, int]] = {}

    def _procs(self):
        import psutil

        procs = [self.proc]
        try:
            procs += self.proc.children(recursive=True)
        except psutil.Error:
            pass
        return procs

    def sample(self) -> tuple[float, int]:
        """(cpu seconds, rss bytes) summed over the server's processes."""
        import psutil

        cpu, rss = 0.0, 0
        for p in self._procs():
            try:
                t = p.cpu_times()
                cpu += t.user + t.system
                rss += p.memory_info().rss
            except psutil.Error:
                continue
        return cpu, rss

    def mark(self, name: str) -> None:
        if self.proc is not None:
            cpu, rss = self.sample()
            self.marks[name] = (time.monotonic(), cpu, rss)

    def cpu_pct(self, a: str, b: str) -> float | None:
        if a not in self.marks or b not in self.marks:
            return None
        (t0, c0, _), (t1, c1, _) = self.marks[a], self.marks[b]
        return round(100 * (c1 - c0) / (t1 - t0), 1) if t1 > t0 else None

    def cpu_seconds(self, a: str, b: str) -> float | None:
        if a not in self.marks or b not in self.marks:
            return None
        return self.marks[b][1] - self.marks[a][1]

    def rss(self, name: str) -> int | None:
        return self.marks[name][2] if name in self.marks else None


# /proc/stat's per-cpu columns, in order (steal and later columns are read as busy time; guest time is already
# inside user).
_STAT_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


class CoreStat:
    """The server's cores as the kernel counts them (/proc/stat), between start() and stop(): what the process's
    own CPU time misses, chiefly the softirq of loopback TCP run on the writer's core. stop() gives user (with
    nice), system, softirq, irq, idle (with iowait) and busy (100 - idle) in % of the listed cores together over
    the interval (100 = every listed core busy all the time)."""

    def __init__(self, cores: list[int], path: str = "/proc/stat"):
        if not cores:
            raise ValueError("CoreStat needs at least one core")
        self.cores = sorted(set(int(c) for c in cores))
        self.path = path
        self._start: dict[str, int] | None = None
        self.read()  # a core this machine lacks fails now, not at the end of a run

    def read(self) -> dict[str, int]:
        """The listed cores' ticks, summed per column."""
        wanted = {f"cpu{c}" for c in self.cores}
        total = dict.fromkeys(_STAT_COLUMNS, 0)
        seen: set[str] = set()
        with open(self.path) as f:
            for line in f:
                parts = line.split()
                if not parts or parts[0] not in wanted:
                    continue
                seen.add(parts[0])
                for name, value in zip(_STAT_COLUMNS, parts[1:]):
                    total[name] += int(value)
        missing = sorted(wanted - seen)
        if missing:
            raise ValueError(f"{self.path} has no line for {', '.join(missing)} "
                             f"(cores here: {_core_count(self.path)})")
        return total

    def start(self) -> None:
        self._start = self.read()

    def stop(self) -> dict:
        if self._start is None:
            raise RuntimeError("CoreStat.stop() before start()")
        end = self.read()
        d = {k: end[k] - self._start[k] for k in _STAT_COLUMNS}
        ticks = sum(d.values())
        if ticks <= 0:
            return {"user": 0.0, "system": 0.0, "softirq": 0.0, "irq": 0.0, "idle": 100.0, "busy": 0.0,
                    "cores": self.cores, "ticks": 0}

        def pct(v: int) -> float:
            return round(100 * v / ticks, 1)

        idle = d["idle"] + d["iowait"]
        return {"user": pct(d["user"] + d["nice"]), "system": pct(d["system"]), "softirq": pct(d["softirq"]),
                "irq": pct(d["irq"]), "idle": pct(idle), "busy": pct(ticks - idle), "cores": self.cores,
                "ticks": ticks}


def _core_count(path: str) -> int:
    with open(path) as f:
        return sum(1 for line in f if line.startswith("cpu") and line[3:4].isdigit())


def parse_cores(text: str) -> list[int]:
    """A CPU list as taskset writes it: '0', '0,1' or '0-3' -> the cores in order; ValueError naming the
    offending part otherwise."""
    cores: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or (dash and int(hi) < int(lo)):
            raise ValueError(f"--server-cores: {part.strip()!r} is not a core number or range (expected e.g. 0, "
                             f"0,1 or 0-3)")
        cores.extend(c for c in range(int(lo), int(hi or lo) + 1) if c not in cores)
    return cores


def metrics_url(url: str, option: str | None) -> str | None:
    if option == "none":
        return None
    return option or url.rstrip("/") + "/metrics"


def scrape(url: str | None, timeout: float = 5.0, token: str | None = None) -> dict | None:
    """`samples` of the server's metrics endpoint; None if it has none. The server's METRICS_TOKEN (argument, else
    the environment variable) is sent as a bearer token; without one, a server on this machine answers anyway
    outside production."""
    if not url:
        return None
    token = token or os.environ.get("METRICS_TOKEN")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return samples(text)


def samples(text: str) -> dict:
    """{(name, labels without 'worker'): value} of every sample of a Prometheus text exposition, and
    '_worker': the worker label."""
    out: dict = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = dict(s.labels)
            worker = labels.pop("worker", None)
            if worker is not None:
                out["_worker"] = worker
            out[(s.name, tuple(sorted(labels.items())))] = s.value
    return out


def _delta(before: dict, after: dict, name: str) -> float:
    """The increase of an unlabelled counter (its worker label aside)."""
    key = (name, ())
    return after.get(key, 0.0) - before.get(key, 0.0)


def _by(before: dict, after: dict, name: str, label: str) -> dict:
    out = {}
    for key, v in after.items():
        if not isinstance(key, tuple) or key[0] != name:
            continue
        n, labels = key
        d = dict(labels)
        if d.get(label) is None:
            continue
        diff = v - before.get((n, labels), 0.0)
        if diff:
            out[d[label]] = int(diff)
    return out


def metrics_delta(before: dict | None, after: dict | None) -> dict | None:
    """What the server counted during the run (the differences of its counters)."""
    if before is None or after is None:
        return None
    if before.get("_worker") != after.get("_worker"):
        return {"note": "the two scrapes reached different worker processes; no server counts"}
    return {
        "connects": _by(before, after, "live_socket_connects_total", "result"),
        "joins": _by(before, after, "live_joins_total", "result"),
        "chat_messages": _by(before, after, "live_chat_messages_total", "result"),
        "reactions": _by(before, after, "live_reactions_total", "result"),
        "cart_adds": _by(before, after, "live_cart_adds_total", "result"),
        "hub_frames": int(_delta(before, after, "live_hub_frames_total")),
        "hub_socket_writes": int(_delta(before, after, "live_hub_socket_writes_total")),
        "slow_consumer_drops": int(_delta(before, after, "live_hub_slow_consumer_drops_total")),
        "cpu_seconds": round(_delta(before, after, "process_cpu_seconds_total"), 2),
        "connections_now": after.get(("live_socket_connections", ())),
    }
