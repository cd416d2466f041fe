"""Counters and mergeable latency histograms.

A `Hist` keeps counts in logarithmic buckets 1 % wide (values in milliseconds), plus the exact min, max and
sum: a million samples cost a few hundred dict entries, and the histograms of several generator processes
(or of several seconds) merge by adding counts. Percentiles are read from the buckets (within 1 %), the
maximum is exact.
"""
from __future__ import annotations

import math

_LOG = math.log(1.01)
_SCALE = 100.0  # 0.01 ms resolution at the bottom


def _value(bucket: int) -> float:
    return math.expm1((bucket + 0.5) * _LOG) / _SCALE


class Hist:
    __slots__ = ("buckets", "n", "total", "lo", "hi")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.n = 0
        self.total = 0.0
        self.lo = math.inf
        self.hi = 0.0

    def add(self, ms: float) -> None:
        b = int(  # the bucket: log base 1.01 of the value in units of 0.01 ms
            math.log1p((ms if ms > 0.0 else 0.0) * _SCALE) / _LOG)
        self.buckets[b] = self.buckets.get(b, 0) + 1
        self.n += 1
        self.total += ms
        if ms > self.hi:
            self.hi = ms
        if ms < self.lo:
            self.lo = ms

    def merge(self, other: "Hist") -> "Hist":
        for b, c in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0) + c
        self.n += other.n
        self.total += other.total
        self.hi = max(self.hi, other.hi)
        self.lo = min(self.lo, other.lo)
        return self

    def percentile(self, q: float) -> float | None:
        if not self.n:
            return None
        if q >= 1.0:
            return self.hi
        rank = max(1, math.ceil(q * self.n))
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return min(max(_value(b), self.lo), self.hi)
        return self.hi

    def summary(self) -> dict:
        """{n, p50, p95, p99, max, mean} in ms, rounded; None values when empty."""
        def r(v):
            return None if v is None else round(v, 1)
        return {"n": self.n, "p50": r(self.percentile(.5)), "p95": r(self.percentile(.95)),
                "p99": r(self.percentile(.99)), "max": r(self.hi if self.n else None),
                "mean": r(self.total / self.n if self.n else None)}

    # pickling through multiprocessing pipes: plain tuples
    def dump(self) -> tuple:
        return (self.buckets, self.n, self.total, self.lo, self.hi)

    @classmethod
    def load(cls, data: tuple) -> "Hist":
        h = cls()
        h.buckets, h.n, h.total, h.lo, h.hi = dict(data[0]), data[1], data[2], data[3], data[4]
        return h


class Stats:
    """What one generator process saw. Counters only grow; `take_second` hands the parent the latency
    samples of the last second for the time series."""

    def __init__(self) -> None:
        self.connected = 0  # sockets whose Socket.IO connect succeeded (reconnections included)
        self.open = 0  # sockets open now
        self.received = 0  # chat:new frames received, all viewers
        self.frames = 0  # all websocket text frames received
        self.batches = 0  # of which `batch` frames (--batch)
        self.sent = 0  # events emitted (joins, chat, reactions, cart adds)
        self.errors: dict[str, int] = {}
        self.delivery = Hist()  # sender timestamp -> receipt, sampled viewers
        self.join = Hist()  # connect start -> join ack, one sample per first join acknowledged ok
        self.acks: dict[str, Hist] = {}  # event -> emit -> ack
        self.refused: dict[str, dict[str, int]] = {}  # event -> error code -> n
        self.ok: dict[str, int] = {}  # event -> acks ok
        self.second = Hist()

    @property
    def joined(self) -> int:
        """First joins acknowledged ok."""
        return self.join.n

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def latency(self, ms: float) -> None:
        self.delivery.add(ms)
        self.second.add(ms)

    def ack(self, event: str, ms: float, ack: object) -> None:
        h = self.acks.get(event)
        if h is None:
            h = self.acks[event] = Hist()
        h.add(ms)
        if isinstance(ack, dict) and ack.get("ok") is True:
            self.ok[event] = self.ok.get(event, 0) + 1
        else:
            code = ack.get("error", {}).get("code", "error") if isinstance(ack, dict) else "no_ack"
            by = self.refused.setdefault(event, {})
            by[code] = by.get(code, 0) + 1

    def take_second(self) -> Hist:
        h, self.second = self.second, Hist()
        return h

    def snapshot(self) -> dict:
        return {"connected": self.connected, "open": self.open, "joined": self.joined, "received": self.received,
                "frames": self.frames, "sent": self.sent, "errors": sum(self.errors.values())}

    def dump(self) -> dict:
        return {"connected": self.connected, "received": self.received,
                "frames": self.frames, "batches": self.batches, "sent": self.sent, "errors": dict(self.errors),
                "delivery": self.delivery.dump(), "join": self.join.dump(),
                "acks": {k: v.dump() for k, v in self.acks.items()}, "refused": self.refused, "ok": self.ok}


def merge_dumps(dumps: list[dict]) -> dict:
    """The totals of several processes' `Stats.dump()`, with Hist objects."""
    out: dict = {"connected": 0, "received": 0, "frames": 0, "batches": 0, "sent": 0, "errors": {},
                 "delivery": Hist(), "join": Hist(), "acks": {}, "refused": {}, "ok": {}}
    for d in dumps:
        for k in ("connected", "received", "frames", "sent"):
            out[k] += d[k]
        out["batches"] += d.get("batches", 0)
        for k, n in d["errors"].items():
            out["errors"][k] = out["errors"].get(k, 0) + n
        out["delivery"].merge(Hist.load(d["delivery"]))
        out["join"].merge(Hist.load(d["join"]))
        for ev, h in d["acks"].items():
            out["acks"].setdefault(ev, Hist()).merge(Hist.load(h))
        for ev, codes in d["refused"].items():
            by = out["refused"].setdefault(ev, {})
            for code, n in codes.items():
                by[code] = by.get(code, 0) + n
        for ev, n in d["ok"].items():
            out["ok"][ev] = out["ok"].get(ev, 0) + n
    out["joined"] = out["join"].n
    return out
