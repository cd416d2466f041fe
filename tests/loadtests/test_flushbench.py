"""The flush bench (loadtests/flushbench.py) runs end to end at a tiny size: its writer and sink processes connect,
every variant is timed on every connection, and nothing is lost. Its numbers are benchmarks (docs/benchmarks.md),
never asserted here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_flush_bench_reports_every_variant():
    out = subprocess.run(
        [sys.executable, "-m", "loadtests", "flushbench", "--connections", "40", "--flushes", "2", "--sizes",
         "512,4096", "--frame-counts", "1,15", "--sinks", "2", "--writer-cpu", "0", "--sink-cpu", "0", "--gap",
         "0.01", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["lost"] == 0
    rows = {(r["bytes"], r["frames"]): r for r in report["variants"]}
    assert set(rows) == {(512, 1), (512, 15), (4096, 1), (4096, 15)}
    for row in rows.values():
        assert row["writes"] == 40 and row["flushes"] == 2 and row["wall_ms"] > 0 and row["us_per_write"] > 0
