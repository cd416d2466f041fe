"""The second load generator (loadtests/eiogen, driven by `python -m loadtests nodegen`): its frame reader and
viewer fed byte by byte (`gen.js --selftest`), its histogram against loadtests/stats.Hist, and short runs against
the app on a real port with a real database, checked against what the server counted. Skipped without node."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from loadtests.nodegen import GEN, Proc, parser
from loadtests.nodegen_report import build
from loadtests.probe import ServerProbe
from loadtests.stats import Hist
from tests.helpers import SECRET
from tests.loadtests.test_loadtests import counted, live, loadtest, metrics, real_users, url_of  # noqa: F401
from tests.workers.cluster import free_port

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def test_selftest_reads_frames_cut_anywhere():
    out = subprocess.run(["node", str(GEN), "--selftest"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip().endswith("selftest ok"), out.stdout[-3000:] + out.stderr


def test_bad_config_is_a_usage_error():
    out = subprocess.run(["node", str(GEN)], input='{"cmd": "config", "role": "watcher"}\n', capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2 and "role must be one of bulk, probe" in out.stderr


def test_histogram_buckets_are_the_python_ones():
    values = [0, 0.004, 0.5, 1, 3.3, 17.25, 99.9, 250, 1234.5, 60000]
    script = (f"const {{Hist}} = require({json.dumps(str(GEN.parent / 'hist.js'))}); const h = new Hist(); "
              f"for (const v of {json.dumps(values)}) h.add(v); console.log(JSON.stringify(h.dump()));")
    buckets, n, total, lo, hi = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True,
                                                          check=True, timeout=30).stdout)
    h = Hist()
    for v in values:
        h.add(v)
    assert {int(b): c for b, c in buckets.items()} == h.buckets
    assert (n, lo, hi) == (h.n, h.lo, h.hi) and total == pytest.approx(h.total)


async def test_nodegen_delivers_every_message_and_times_it(live, tmp_path):  # noqa: F811
    tokens = await real_users(live, tmp_path, "nodechat", 3)
    before = await metrics(live)
    code, r, stdout, stderr = await loadtest(
        tmp_path, url_of(live), "nodegen", "--viewers", "30", "--chatters", "3", "--rate", "1.5", "--duration", "3",
        "--secret", SECRET, "--tokens", str(tokens), "--procs", "2", "--probe-viewers", "5", "--min-delivery", "1.0",
        "--server-pid", str(os.getpid()), "--server-cores", "0", "--max-p99-ms", "60000")
    after = await metrics(live)
    assert code == 0, stdout + stderr
    assert r["generator"] == "node" and r["passed"] and not r["errors"], r
    chats = (counted(after, "live_chat_messages_total", result="ok")
             - counted(before, "live_chat_messages_total", result="ok"))
    assert (counted(after, "live_joins_total", result="ok") - counted(before, "live_joins_total", result="ok")
            == r["viewers"]["joined"] == 30)
    d = r["delivery"]
    assert d["messages_sent"] == chats == r["events"]["ok"]["chat:send"] >= 3
    assert d["deliveries"] == d["deliveries_expected"] == 30 * chats
    assert d["delivered_ratio"] == 1.0 and d["missing"] == 0 and d["duplicates"] == 0 and d["seqs_short"] == 0
    # the bulk process counted by seq without parsing: 22 viewers, every message
    assert r["events"]["chat_frames_received"] == 30 * chats
    assert [(q["role"], q["viewers"]) for q in r["generator_procs"]] == [("probe", 8), ("bulk", 22)]
    # latency from the probe alone: its 3 chatters and 5 viewers time every message
    lat = r["latency_ms"]["delivery"]
    assert lat["n"] == d["latency_samples"] == 8 * chats and d["tracked_viewers"] == 8
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] < 5000
    seconds = r["timeline"]
    assert sum(row["n"] for row in seconds) == lat["n"] and max(row["max"] for row in seconds) == lat["max"]
    assert all(0 <= row["t"] <= 8 for row in seconds)
    ack = r["latency_ms"]["ack"]["chat:send"]
    assert ack["n"] == chats and 0 < ack["p50"] <= ack["max"] < 5000
    assert r["server"]["pid"] == os.getpid() and r["server"]["cpu_pct_run"] is not None
    assert r["server"]["cores"]["cores"] == [0] and 0 <= r["server"]["cores"]["busy"] <= 100
    assert "delivered" in stdout and "(100.000 %)" in stdout


async def test_nodegen_with_the_batch_opt_in_and_a_failed_threshold(live, tmp_path):  # noqa: F811
    """--batch sent with the CONNECT against live: at this rate the hub writes each message at once (an idle room),
    so frames may all be plain; batch frames are read in test_naive_server (a server that always batches).
    --deflate: every viewer agrees on permessage-deflate and reads the compressed chat frames."""
    tokens = await real_users(live, tmp_path, "nodebatch", 2)
    before = await metrics(live)
    code, r, stdout, stderr = await loadtest(
        tmp_path, url_of(live), "nodegen", "--viewers", "12", "--chatters", "2", "--rate", "1", "--duration", "2",
        "--tokens", str(tokens), "--procs", "3", "--probe-viewers", "2", "--batch", "--deflate", "--min-delivery",
        "1.0", "--max-p99-ms", "0.001", "--generator-cpus", str(max(os.sched_getaffinity(0))))
    after = await metrics(live)
    assert code == 1, stdout + stderr
    assert (counted(after, "live_door_websockets_total", compression="deflate")
            - counted(before, "live_door_websockets_total", compression="deflate")) == 12
    d = r["delivery"]
    assert r["batch"] is True and r["deflate"] is True and d["messages_sent"] >= 2 and not r["errors"]
    assert d["deliveries"] == d["deliveries_expected"] == 12 * d["messages_sent"] and d["seqs_short"] == 0
    assert r["latency_ms"]["delivery"]["n"] == 4 * d["messages_sent"]
    verdicts = {t["name"]: t["passed"] for t in r["thresholds"]}
    assert verdicts == {"delivery p99 ms": False, "delivered ratio": True} and not r["passed"]
    assert "FAIL         delivery p99 ms" in stdout


async def test_a_process_is_pinned_and_reports_a_refused_connection():
    mine = os.sched_getaffinity(0)
    cpu = max(mine)
    proc = Proc({"cmd": "config", "role": "bulk", "proc": 1, "host": "127.0.0.1", "port": free_port(),
                 "path": "/socket.io/?EIO=4&transport=websocket", "stream": "demo", "viewers": 2, "tokens": [],
                 "concurrency": 2})
    try:
        await proc.start("node", {cpu})
        ready = await proc.recv("ready", 30)
        assert ready["joined"] == 0 and ready["errors"] == {"connect_failed:ECONNREFUSED": 2}
        assert os.sched_getaffinity(proc.proc.pid) == {cpu}  # waiting for go, on the generator's core only
        assert os.sched_getaffinity(0) == mine  # the driver is as it was
        proc.send({"cmd": "stop"})  # not the command it waits for: a usage error
        assert await proc.proc.wait() == 2 and 'expected the "go" command' in proc.stderr_tail()
    finally:
        proc.kill()


def result(proc: int, role: str, accounting: list, seq_count: dict) -> dict:
    """A node process's `result` line as gen.js writes it (the parts nodegen_report.build reads)."""
    empty = [{}, 0, 0.0, None, 0.0]
    return {"proc": proc, "role": role, "viewers": len(accounting), "joined": len(accounting), "chat_seqs": [],
            "accounting": accounting, "seq_count": seq_count, "latency": empty, "join": empty, "by_second": {},
            "acks": {}, "errors": {}, "ok": {}, "refused": {}, "notes": [], "sent": 0, "connected": 2,
            "frames": 0, "chat_frames": 0, "batch_frames": 0, "join_cpu_s": 0.1, "join_wall_s": 1.0,
            "run_cpu_s": 0.1, "run_wall_s": 1.0, "cpu_s": 0.2}


@pytest.mark.parametrize("bulk_counts, short", [({1: 2, 2: 2}, 0), ({1: 1, 2: 3}, 1)])
def test_a_message_short_of_a_viewer_fails_the_run(bulk_counts, short):
    """Four viewers joined at seq 0, two messages: the bulk process's per-seq counts can add up (4 of 4) while
    message 1 reached one of its two viewers; that fails the run whatever the delivered ratio."""
    args = parser().parse_args(["--viewers", "4", "--probe-viewers", "2", "--procs", "2"])
    args.scenario = "audience"
    results = [result(0, "probe", [[0, 2, True, [1, 2], 0]] * 2, {}),
               result(1, "bulk", [[0, 2, True, None, 0]] * 2, bulk_counts)]
    results[0]["chat_seqs"] = [1, 2]
    run = {"t0": 1.0, "end": 5.0, "results": results, "ready": [{"last_join_wall": 2.0}] * 2, "cores": None}
    r = build(args, run, ServerProbe(None), None, None)
    (check,) = [c for c in r["checks"] if c["name"] == "every message reached every viewer joined before it"]
    assert r["delivery"]["seqs_short"] == check["value"] == short and r["delivery"]["delivered_ratio"] == 1.0
    assert check["passed"] is r["passed"] is (short == 0)


def test_usage_errors_exit_2_before_starting_anything(tmp_path):
    out = subprocess.run([sys.executable, "-m", "loadtests", "nodegen", "--chatters", "3", "--rate", "1",
                          "--viewers", "600"], capture_output=True, text=True, timeout=60, cwd=GEN.parents[2])
    assert out.returncode == 2 and "need as many tokens" in out.stderr
    out = subprocess.run([sys.executable, "-m", "loadtests", "nodegen", "--viewers", "10", "--probe-viewers", "2",
                          "--node", "no-such-node-binary"], capture_output=True, text=True, timeout=60,
                         cwd=GEN.parents[2])
    assert out.returncode == 2 and "no node binary" in out.stderr
    base = [sys.executable, "-m", "loadtests", "nodegen", "--viewers", "2", "--probe-viewers", "0"]
    for extra, message in ((["--generator-cpus", "4096"], "--generator-cpus: CPU 4096 is not one this process"),
                           (["--url", "http://127.0.0.1:99999"], "Port out of range 0-65535")):
        out = subprocess.run(base + extra, capture_output=True, text=True, timeout=60, cwd=GEN.parents[2])
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
