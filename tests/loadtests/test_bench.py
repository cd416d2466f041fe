"""`python -m loadtests bench` (loadtests/bench.py, bench_scenarios.py, bench_rows.py): the generator command
lines each scenario gets, the limits it checks before running, the markdown rows it prints, and the rooms it
opens on a real `live serve` through the seller REST API."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from loadtests import bench, bench_rows
from loadtests import bench_scenarios as plan
from loadtests.probe import samples

ROOT = Path(__file__).resolve().parents[2]
CTX = plan.Ctx("http://127.0.0.1:8090", "s3cret", Path("/o/chat.txt"), Path("/o/buy.txt"), "0", "1", 42)


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_the_probe_split_audiences_at_full_scale():
    full = plan.SCALES["full"]
    a = plan.generator("audience", full["audience"], CTX)
    assert a[0] == "audience" and flag(a, "--viewers") == "10000" and flag(a, "--chatters") == "100"
    assert (flag(a, "--procs"), flag(a, "--probe-viewers"), flag(a, "--server-cores")) == ("3", "500", "0")
    assert flag(a, "--rate") == "50" and flag(a, "--tokens") == "/o/chat.txt" and flag(a, "--server-pid") == "42"
    assert "--batch" not in a and "--rooms" not in a
    b = plan.generator("audience-batch", full["audience-batch"], CTX)
    assert b == a + ["--batch"]
    assert plan.generator("audience-deflate", full["audience-deflate"], CTX) == a + ["--batch", "--deflate"]
    n = plan.generator("audience-node", full["audience-node"], CTX)
    assert n[0] == "nodegen" and n[1:-2] == a[1:] and n[-2:] == ["--generator-cpus", "1"]
    w = plan.generator("audience-2w", full["audience-2w"], CTX)
    assert flag(w, "--viewers") == "20000" and flag(w, "--procs") == "4" and full["audience-2w"]["workers"] == 2


def test_the_rooms_scenario_and_its_tokens():
    s = plan.SCALES["full"]["rooms"]
    r = plan.generator("rooms", s, CTX)
    assert r[0] == "audience" and flag(r, "--viewers") == "10000" and flag(r, "--probe-viewers") == "500"
    assert [flag(r, f) for f in ("--rooms", "--room-viewers", "--room-chatters", "--room-rate", "--room-prefix")] \
        == ["200", "50", "5", "2", "bench-room-"]
    # the main room's 100 chatters, then 5 in each of the 200 rooms; 200 rooms are 400 REST writes: 4 sellers
    assert plan.chatter_tokens(plan.SCALES["full"], plan.ORDER) == 1100
    assert plan.chatter_tokens(plan.SCALES["full"], ["audience"]) == 100
    assert plan.sellers_needed(200) == 4 and plan.sellers_needed(20) == 1 and plan.sellers_needed(51) == 2


def test_the_old_scenarios_keep_their_command_lines():
    full = plan.SCALES["full"]
    ctx = plan.Ctx(**{**CTX.__dict__, "variant": "v-1"})
    assert plan.generator("join-storm", full["join-storm"], CTX) == [
        "join-storm", "--url", CTX.url, "--server-pid", "42", "--viewers", "10000", "--duration", "1",
        "--secret", "s3cret"]
    f = plan.generator("flash-sale", full["flash-sale"], ctx)
    assert flag(f, "--viewers") == "5000" and flag(f, "--tokens") == "/o/buy.txt" and flag(f, "--variant") == "v-1"
    r = plan.generator("reconnect", full["reconnect"], CTX)
    assert flag(r, "--drop") == "0.3" and "--probe-viewers" not in r


def test_small_scale_is_the_full_one_at_a_tenth_within_1000_connections():
    small, full = plan.SCALES["small"], plan.SCALES["full"]
    assert set(small) == set(full) == set(plan.ORDER)
    for name, s in small.items():
        connections = s.get("viewers", s.get("buyers", 0)) + s.get("rooms", 0) * s.get("room_viewers", 0)
        assert connections <= 1000, name
    assert small["audience"]["viewers"] * 10 == full["audience"]["viewers"]
    assert small["rooms"]["rooms"] * 10 == full["rooms"]["rooms"]
    for scale in (small, full):
        plan.validate(scale)  # no SystemExit
    for bad in ({"x": dict(rate=50, chatters=99)}, {"x": dict(room_rate=2, room_chatters=3, room_viewers=9)},
                {"x": dict(probe=500, procs=1)}, {"x": dict(room_chatters=6, room_viewers=5)}):
        with pytest.raises(SystemExit):
            plan.validate(bad)


def test_the_rooms_scenario_is_fitted_under_the_file_limit():
    s = plan.SCALES["full"]["rooms"]
    same, note = plan.fit_fds(s, 40000)
    assert same == s and note is None
    fitted, note = plan.fit_fds(s, 20000)  # this machine's hard limit: 10,000 + 10,000 sockets do not fit
    assert fitted["viewers"] == 20000 - plan.FD_RESERVE - 10000 and "9,800" in note and "20,000" in note
    assert fitted["rooms"] == 200 and s["viewers"] == 10000
    with pytest.raises(SystemExit, match="file limit"):
        plan.fit_fds(s, 10100)


@pytest.mark.parametrize("argv, message", [
    (["--only", "audience,nope"], "unknown scenarios: nope"),
    (["--targets", "live,nginx"], "unknown targets: nginx"),
    (["--runs", "0"], "--runs must be >= 1"),
])
def test_usage_errors_exit_2(argv, message):
    out = subprocess.run([sys.executable, "-m", "loadtests", "bench", *argv], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and message in out.stderr


def test_arguments():
    args = bench.parse(["--only", "rooms,audience", "--targets", "live,naive", "--runs", "3"])
    assert args.only == ["rooms", "audience"] and args.targets == ["live", "naive"] and args.runs == 3
    assert (args.server_cpus, args.generator_cpus, args.both_cpus) == ("0", "1", "0,1")


METRICS = """# TYPE live_hub_socket_writes counter
live_hub_socket_writes_total{{worker="1"}} {writes}
# TYPE live_hub_bytes counter
live_hub_bytes_total{{worker="1"}} {bytes}
# TYPE live_hub_write_seconds counter
live_hub_write_seconds_total{{worker="1"}} {seconds}
# TYPE live_hub_timers gauge
live_hub_timers{{worker="1"}} {timers}
# TYPE live_socket_connections gauge
live_socket_connections{{worker="1"}} 5
"""


def report(**extra) -> dict:
    return {"viewers": {"joined": 10000}, "wall_s": 25.0, "params": {"room_viewers": 50},
            "delivery": {"messages_sent": 1000, "deliveries": 10_000_000, "expected": 10_000_000,
                         "delivered_ratio": 1.0, "duplicates": 0},
            "latency_ms": {"delivery": {"n": 9, "p50": 101.4, "p95": 180.0, "p99": 233.2, "max": 301.0}},
            "server": {"cpu_pct_run": 52.3, "cpu_us_per_delivery": 1.02,
                       "cores": {"user": 20.0, "system": 30.0, "softirq": 24.5, "irq": 0.0, "idle": 44.0,
                                 "busy": 56.0, "cores": [0], "ticks": 2000}},
            "generator": {"procs": [{"run_cpu_pct": 40.0, "join_cpu_pct": 60.0},
                                    {"run_cpu_pct": 71.5, "join_cpu_pct": 80.0}], "saturated": False},
            "latency_source": "probe (500 viewers)", **extra}


def cells(line: str) -> list[str]:
    assert line.startswith("| ") and line.endswith(" |")
    return [c.strip() for c in line[1:-1].split(" | ")]


def test_the_hub_numbers_come_from_metrics_deltas():
    before = samples(METRICS.format(writes=1000, bytes=2_000_000, seconds=0.5, timers=0))
    after = samples(METRICS.format(writes=6_001_000, bytes=24_002_000_000, seconds=30.5, timers=3))
    hub = bench_rows.hub_delta(before, after)
    assert hub == {"socket_writes": 6_000_000, "bytes": 24_000_000_000, "write_seconds": 30.0, "timers": 3}
    assert bench_rows.hub_text(hub, 25.0) == "240,000/s, 4,000 B, 5.00 µs"
    assert bench_rows.hub_text({}, 25.0) == "-"
    other = dict(after, _worker="2")  # the second scrape reached the other worker: no numbers
    assert bench_rows.hub_delta(before, other) == {} and bench_rows.hub_delta(None, after) == {}


def test_a_probe_split_row_matches_its_header():
    hub = {"socket_writes": 6_000_000, "bytes": 24_000_000_000, "write_seconds": 30.0}
    line = bench_rows.row("audience-batch", "live", report(), ", run 2", hub)
    head = bench_rows.header("audience-batch").splitlines()
    assert len(cells(line)) == len(cells(head[0])) == len(cells(head[1]))
    c = dict(zip(cells(head[0]), cells(line)))
    assert c["scenario, run"] == "audience-batch, run 2" and c["viewers"] == "10,000"
    assert c["delivered"] == "100.000 % (10,000,000)" and c["p50"] == "101 ms" and c["p99"] == "233 ms"
    assert c["server CPU"] == "52.3 %" and c["server CPU per delivery"] == "1.02 µs"
    assert c["server cores: busy / softirq"] == "56.0 % / 24.5 %"
    assert c["hub: writes/s, bytes and µs per write"] == "240,000/s, 4,000 B, 5.00 µs"
    assert c["generator CPU (busiest process)"] == "71.5 %" and c["latency from"] == "probe (500 viewers)"


def test_a_node_generator_row():
    """The Node generator's report names itself (`generator: "node"`) and keeps its processes beside."""
    r = report()
    r.update(generator="node", generator_procs=r["generator"]["procs"], generator_saturated=True)
    c = dict(zip(cells(bench_rows.header("audience-node").splitlines()[0]),
                 cells(bench_rows.row("audience-node", "naive", r, ""))))
    assert c["generator CPU (busiest process)"] == "71.5 % (generator saturated)" and c["server"] == "naive"
    assert c["hub: writes/s, bytes and µs per write"] == "-"


def test_a_rooms_row_shows_the_worst_room_and_the_timers():
    rooms = {"count": 200, "worst_p99_ms": 260.7, "worst_delivery": 0.998, "expected": 990000, "delivered": 989990,
             "duplicates": 0, "per_room": {"bench-room-1": {"delivered_ratio": 1.0, "p99_ms": 120.0}}}
    r = report(rooms=rooms)
    r["server"]["cpu_us_per_delivery_all_rooms"] = 0.93
    line = bench_rows.row("rooms", "live", r, ", run 1", {"timers_max": 187.0})
    head = bench_rows.header("rooms").splitlines()
    assert len(cells(line)) == len(cells(head[0])) == len(cells(head[1]))
    c = dict(zip(cells(head[0]), cells(line)))
    assert c["run"] == "run 1" and c["rooms × viewers"] == "200 × 50"
    assert c["main room: viewers, delivered, p50 / p99"] == "10,000, 100.000 % (10,000,000), 101 ms / 233 ms"
    assert c["rooms: worst delivered"].startswith("99.800 %") and c["rooms: worst p99"] == "261 ms"
    assert c["rooms holding a hub timer (most seen)"] == "187"
    # the report's own figure over every room's deliveries (not cpu_us_per_delivery, per main-room delivery)
    assert c["server CPU per delivery (every room's)"] == "0.93 µs"
    del r["server"]["cpu_us_per_delivery_all_rooms"]  # a report without it (no small-room delivery counted)
    c = dict(zip(cells(head[0]), cells(bench_rows.row("rooms", "live", r, ", run 1", {}))))
    assert c["server CPU per delivery (every room's)"] == "- µs"
    r["rooms"] = dict(rooms, delivered=0)
    c = dict(zip(cells(head[0]), cells(bench_rows.row("rooms", "live", r, ", run 1", {}))))
    assert c["server CPU per delivery (every room's)"] == "1.02 µs"


def test_old_tables_keep_their_layout():
    r = report(flash_sale={"buyers": 5000, "initial_available": 100, "succeeded": 100, "out_of_stock": 4900,
                           "other_errors": {}, "stock_zero_seen_by": 5000, "watchers": 5000, "oversold": False},
               reconnect={"dropped": 2970, "recovered": 2970, "missing_after_rejoin": 0,
                          "duplicates_after_rejoin": 0, "rejoin_ms": {"p50": 280.0, "p99": 440.0}})
    r["latency_ms"].update(join={"p50": 77.0, "p99": 139.0}, ack={"cart:add": {"p50": 290, "p99": 317, "max": 320}})
    r["viewers"]["all_joined_s"] = 4.3
    r["server"]["kb_per_connection"] = 3.4
    docs = (ROOT / "docs" / "benchmarks.md").read_text()
    for scenario, head in (("join-storm", "| date | server | change / run | joined |"),
                           ("flash-sale", "| date | server | buyers | units |"),
                           ("reconnect", "| date | server | viewers | dropped |")):
        header = next(line for line in docs.splitlines() if line.startswith(head))
        assert len(cells(bench_rows.row(scenario, "live", r, "bench --scale full"))) == len(cells(header)), scenario
    assert bench_rows.header("join-storm") is None


def test_rooms_open_through_the_seller_api(tmp_path, monkeypatch):
    """A real `live serve`: 5 rooms over 3 sellers (a seller's writes capped at 4 here), all live; a second
    call reuses them (same --out), and an ended one is refused loudly."""
    monkeypatch.setattr(plan, "WRITES_PER_SELLER", 4)
    b = bench.Bench(bench.parse(["--out", str(tmp_path), "--port", str(free_port())]))
    try:
        live = b.start_live(b.args.port, 1, None, tmp_path / "data")
        b.open_rooms(live.url, 5, b.env)
        streams = {s["slug"]: s for s in bench.http_json(f"{live.url}/api/v1/livestreams?status=live&limit=100")
                   ["items"]}
        rooms = {slug: s for slug, s in streams.items() if slug.startswith("bench-room-")}
        assert sorted(rooms) == [f"bench-room-{i}" for i in range(1, 6)]
        assert len({s["seller"]["id"] for s in rooms.values()}) == 3
        assert len((tmp_path / "bench-seller.txt").read_text().split()) == 3
        b.open_rooms(live.url, 5, b.env)  # again: reused, still live
        seller = (tmp_path / "bench-seller.txt").read_text().split()[2]
        req = urllib.request.Request(f"{live.url}/api/v1/livestreams/bench-room-5/end", data=b"{}", method="POST",
                                     headers={"Authorization": f"Bearer {seller}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read())["status"] == "ended"
        with pytest.raises(SystemExit, match="bench-room-5 has ended"):
            b.open_rooms(live.url, 5, b.env)
    finally:
        for proc in b.procs:
            proc.terminate()
            proc.wait(20)


def free_port() -> int:
    from loadtests.procs import free_port as port

    return port()


def test_a_run_without_a_report_is_noted_under_the_rows(tmp_path):
    """A generator that exits before writing its report (here a usage error: exit 2) gets no row, and a note
    under the rows names the run and the generator's exit code."""
    b = bench.Bench(bench.parse(["--out", str(tmp_path)]))
    target = bench.Server("naive", None, f"http://127.0.0.1:{free_port()}")  # nothing listens: no /metrics
    r, hub = b.run(target, "audience", ["--no-such-flag"], ", run 2")
    assert r is None and hub == {}
    assert b.notes == ["naive audience, run 2: no report (generator exit 2)"]
    assert "\nNote: naive audience, run 2: no report (generator exit 2)" in b.markdown()


def test_the_docs_tables_have_the_printed_layouts():
    """The rows bench prints paste into docs/benchmarks.md's issue 17 tables: same header, same columns."""
    docs = (ROOT / "docs" / "benchmarks.md").read_text().splitlines()
    for scenario in ("audience", "rooms"):
        head, rule = bench_rows.header(scenario).splitlines()
        assert head in docs and docs[docs.index(head) + 1] == rule, scenario


TINY = {"rooms": dict(viewers=12, chatters=2, rate=1, duration=2, procs=2, probe=4, rooms=3, room_viewers=4,
                      room_chatters=2, room_rate=1),
        "audience-batch": dict(viewers=12, chatters=2, rate=1, duration=2, procs=2, probe=4, batch=True),
        "flash-sale": dict(buyers=1, units=1)}


def test_a_tiny_bench_runs_rooms_and_the_audience_batch_scenario(tmp_path, capsys):
    """bench end to end at a tiny scale (the processes unpinned): a real `live serve`, its rooms opened, the
    generators run with the probe split, and the printed rows read from their reports and /metrics. audience-batch
    is checked for its --batch opt-in and its row: at 1 msg/s the hub writes each message at once, unbatched."""
    args = bench.parse(["--out", str(tmp_path), "--port", str(free_port()), "--only", "rooms,audience-batch",
                        "--targets", "live", "--server-cpus", "", "--generator-cpus", ""])
    bench.Bench(args, TINY).main()
    out = capsys.readouterr().out
    rooms = json.loads((tmp_path / "live-rooms.json").read_text())
    assert rooms["rooms"]["count"] == 3 and rooms["rooms"]["worst_delivery"] == 1.0
    assert rooms["delivery"]["delivered_ratio"] == 1.0 and rooms["latency_source"] == "probe"
    batch = json.loads((tmp_path / "live-audience-batch.json").read_text())
    assert batch["params"]["batch"] and batch["delivery"]["delivered_ratio"] == 1.0
    tables = {}
    for line in out.splitlines():
        if line.startswith("### "):
            tables[line[4:]] = current = []
        elif line.startswith("| 20"):
            current.append(cells(line))
    (room_row,) = tables["rooms"]
    assert room_row[4] == "3 × 4" and room_row[5] == "100.000 %"
    timers = room_row[10]  # the most rooms seen holding a timer: never more than the 4 busy rooms
    assert timers == "-" or 0 <= int(timers) <= 4
    (batch_row,) = tables["audience-batch"]
    assert batch_row[2] == "audience-batch" and batch_row[5].startswith("100.000 %") and batch_row[-1] == "probe"
    assert batch_row[14].count(",") == 2  # the hub's writes/s, bytes and µs per write, from /metrics
    assert "--probe-viewers 4" in out and "--rooms 3 --room-viewers 4" in out and "--batch" in out
    assert f"live: LIVE_DATA_DIR={tmp_path / 'data'} " in out and " serve --port " in out
