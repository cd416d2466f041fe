"""The load tester's issue-17 parts: the server cores' /proc/stat reader (CoreStat) against a fake /proc/stat."""
from __future__ import annotations

import pytest

from loadtests.probe import CoreStat, parse_cores

STAT = """cpu  {t0} 0 0 0 0 0 0 0 0 0
cpu0 {u0} {n0} {s0} {i0} {w0} {q0} {sq0} 0 0 0
cpu1 {u1} 0 {s1} {i1} 0 0 {sq1} 0 0 0
intr 1 2 3
"""


def write(path, **v):
    base = dict(t0=1, u0=0, n0=0, s0=0, i0=0, w0=0, q0=0, sq0=0, u1=0, s1=0, i1=0, sq1=0)
    base.update(v)
    path.write_text(STAT.format(**base))


def test_core_stat_percentages_of_the_listed_cores(tmp_path):
    stat = tmp_path / "stat"
    write(stat, u0=100, n0=10, s0=50, i0=1000, w0=5, q0=3, sq0=20, u1=7, s1=7, i1=7, sq1=7)
    one, both = CoreStat([0], path=str(stat)), CoreStat([1, 0], path=str(stat))
    one.start()
    both.start()
    # core 0 over the interval: user 30 + nice 10, system 20, idle 25 + iowait 5, irq 2, softirq 8 = 100 ticks
    # core 1: user 50, idle 50 = 100 ticks
    write(stat, u0=130, n0=20, s0=70, i0=1025, w0=10, q0=5, sq0=28, u1=57, s1=7, i1=57, sq1=7)
    assert one.stop() == {"user": 40.0, "system": 20.0, "softirq": 8.0, "irq": 2.0, "idle": 30.0, "busy": 70.0,
                          "cores": [0], "ticks": 100}
    b = both.stop()
    assert (b["user"], b["system"], b["softirq"], b["irq"], b["idle"], b["busy"]) == (45.0, 10.0, 4.0, 1.0,
                                                                                      40.0, 60.0)
    assert b["cores"] == [0, 1] and b["ticks"] == 200


def test_core_stat_refuses_a_missing_core_and_stop_before_start(tmp_path):
    stat = tmp_path / "stat"
    write(stat)
    with pytest.raises(ValueError, match="no line for cpu7 .cores here: 2"):
        CoreStat([7], path=str(stat))
    with pytest.raises(RuntimeError, match="before start"):
        CoreStat([0], path=str(stat)).stop()
    assert CoreStat([0]).read()["idle"] >= 0  # the real /proc/stat has a cpu0


def test_parse_cores():
    assert parse_cores("0") == [0] and parse_cores("0, 1") == [0, 1]
    for bad in ("", "a", "0;1", "-1"):
        with pytest.raises(ValueError, match="--server-cores"):
            parse_cores(bad)
