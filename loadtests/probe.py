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
