"""The load tester's issue-17 parts: the server cores' /proc/stat reader (CoreStat) against a fake /proc/stat,
batched room events (counted per element, timed by tracked viewers), the new flags' usage errors, and one small
real run (probe/bulk split over two processes, two small rooms, the server's cores) against the app on a real
port, checked against the server's own counters."""
from __future__ import annotations

import time
import uuid

import pytest

from live.appkeys import SERVICES
from live.rooms.packets import encode_event
from live.rooms.wsframes import text_frame, unmask
from loadtests import cli
from loadtests.coordinator import room_refusals
from loadtests.probe import CoreStat, parse_cores
from loadtests.scenarios import delivery_summary, rooms_summary
from loadtests.stats import Stats
from loadtests.viewer import Viewer, split_frames
from tests.helpers import SECRET, make_settings
from tests.loadtests.test_loadtests import counted, loadtest, metrics, real_users, url_of
from tests.loadtests.test_loadtests_parts import FakeTransport

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
    assert parse_cores("0") == [0] and parse_cores("0, 1") == [0, 1] and parse_cores("2-4,0,3") == [2, 3, 4, 0]
    for bad in ("", "a", "0;1", "-1", "3-1", "1-"):
        with pytest.raises(ValueError, match="--server-cores"):
            parse_cores(bad)


# ---- batched room events (docs/protocol.md: `42["batch",[[name,data],...]]`) ----


class Ctx:
    def __init__(self) -> None:
        self.stats = Stats()
        self.path, self.host_header, self.stream, self.first_ack = "/socket.io/", "h:1", "demo", None


def batch_frame(*events: tuple[str, dict]) -> bytes:
    """The server's batched frame, built as the hub builds it: each event's encoded bytes after `42`, joined."""
    return text_frame(b'42["batch",[' + b",".join(encode_event(n, d)[2:] for n, d in events) + b"]]")


def sent_packet(frame: bytes) -> bytes:
    """The payload of a short masked client frame."""
    assert frame[1] & 0x80 and frame[1] & 0x7F < 126
    return unmask(frame[6:], frame[2:6])


def opened(ctx, index, *, track=False, watch=False, batch=False, token=None) -> Viewer:
    v = Viewer(ctx, index, token, track=track, watch=watch, batch=batch)
    v.upgraded, v.transport = True, FakeTransport()
    return v


async def test_batch_frames_are_counted_by_element_and_tracked_viewers_time_each():
    now = time.time()
    tricky = 'says ["chat:new",{"seq":1}] in its text'  # escaped inside the JSON string: not an element
    chunk = (batch_frame(("chat:new", {"seq": 5, "text": f"t={now - 0.2:.6f} a"}),
                         ("viewer:count", {"count": 3, "seq": 6}),
                         ("chat:new", {"seq": 7, "text": tricky}),
                         ("stock:update", {"variant_id": "v1", "available": 4, "seq": 8}),
                         ("chat:new", {"seq": 9, "text": f"t={now - 0.1:.6f} b"}))
             + text_frame(encode_event("chat:new", {"seq": 10, "text": "plain, alone"}))  # one event: plain
             + text_frame(b"2"))
    cut = split_frames(chunk)
    assert cut.texts == 3 and cut.chats == 4 and len(cut.batches) == 1 and len(cut.others) == 1  # the ping
    ctx = Ctx()
    bulk, watcher, probe = opened(ctx, 0), opened(ctx, 1, watch=True), opened(ctx, 2, track=True)
    for v in (bulk, watcher, probe):
        v.data_received(chunk)
    assert bulk.received == watcher.received == probe.received == 4
    assert sorted(probe.seqs) == [5, 7, 9, 10] and probe.last_seq == 10 and probe.dups == 0
    assert watcher.stock == {"v1": 4} and bulk.stock == {} and bulk.seqs is None
    assert ctx.stats.received == 12 and ctx.stats.frames == 9 and ctx.stats.batches == 3
    assert ctx.stats.delivery.n == 2 and 90 < ctx.stats.delivery.lo and ctx.stats.delivery.hi < 1000
    # the same batch again is a duplicate for the tracked viewer, and counted again by the others
    probe.data_received(chunk[:20])
    probe.data_received(chunk[20:])
    assert probe.dups == 4 and probe.received == 4


async def test_a_watcher_applies_batched_and_plain_stock_updates_in_order():
    """A batch frame then a plain frame in one read: the plain one (newer) is the stock the watcher keeps."""
    chunk = (batch_frame(("chat:new", {"seq": 1, "text": "a"}),
                         ("stock:update", {"variant_id": "v1", "available": 4, "seq": 2}))
             + text_frame(encode_event("stock:update", {"variant_id": "v1", "available": 3, "seq": 3})))
    watcher = opened(Ctx(), 0, watch=True)
    watcher.data_received(chunk)
    assert watcher.stock == {"v1": 3}


async def test_out_of_order_chat_is_reported_and_still_received():
    ctx = Ctx()
    probe = opened(ctx, 0, track=True)
    for seq in (5, 7, 6, 7, 8):  # 6 after 7: out of order; the second 7: a duplicate
        probe.data_received(text_frame(encode_event("chat:new", {"seq": seq, "text": "x"})))
    assert probe.received == 4 and probe.dups == 1 and sorted(probe.seqs) == [5, 6, 7, 8]
    assert dict(ctx.stats.errors) == {"chat_out_of_order": 1}
    probe.on_chat({"seq": 2, "text": "x"}, live=False)  # a recovery ack's event: no order to keep with live ones
    assert dict(ctx.stats.errors) == {"chat_out_of_order": 1} and probe.received == 5


async def test_batch_opt_in_is_sent_in_the_connect_auth():
    ctx = Ctx()
    for kw, auth in ((dict(batch=True, token="tk"), b'40{"token":"tk","batch":1}'),
                     (dict(batch=True), b'40{"batch":1}'), (dict(token="tk"), b'40{"token":"tk"}'), ({}, b"40")):
        v = opened(ctx, 0, **kw)
        v.on_packet(b'0{"sid":"s","pingInterval":25000,"pingTimeout":20000}')
        assert sent_packet(v.transport.written[-1]) == auth


# ---- usage errors (exit 2, before anything connects) ----

def usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.run(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_usage_errors_of_the_probe_rooms_and_cores_flags(tmp_path, capsys):
    tokens = tmp_path / "t.txt"
    tokens.write_text("a\nb\nc\nd\ne\n")
    base = ["audience", "--viewers", "40", "--chatters", "1", "--rate", "0.5", "--tokens", str(tokens)]
    assert "--probe-viewers needs --procs >= 2" in usage_error(base + ["--probe-viewers", "5"], capsys)
    assert "leave 4 of --viewers 40 for 5 bulk processes: each needs at least one" in usage_error(
        base + ["--probe-viewers", "35", "--procs", "6"], capsys)
    err = usage_error(base + ["--rooms", "2", "--room-chatters", "1", "--room-rate", "0.6"], capsys)
    assert "0.60 messages/s each" in err and "use --room-chatters >= 2" in err
    assert "need 9 tokens in --tokens; got 5" in usage_error(base + ["--rooms", "2"], capsys)
    assert "--rooms is for the audience scenario" in usage_error(
        ["join-storm", "--viewers", "5", "--rooms", "1"], capsys)
    assert "--server-cores: 'x' is not a core number" in usage_error(base + ["--server-cores", "0,x"], capsys)
    assert "no line for cpu4096" in usage_error(base + ["--server-cores", "4096"], capsys)
    assert "Port out of range 0-65535" in usage_error(base + ["--url", "http://127.0.0.1:99999"], capsys)


# ---- a real run: probe/bulk split, two small rooms, the server's cores, the batch opt-in sent (at this rate the
# hub writes each message at once, so no batch frame is expected: batches are read in test_naive_server) ----

@pytest.fixture
async def app(tmp_path, dsn, aiohttp_client):
    """The app with the demo data (stream 'demo', live; seller 'demo-seller') on a real port."""
    from live.app import create_app

    return await aiohttp_client(create_app(make_settings(tmp_path, seed_demo="true"), dsn, run_migrations=False))


async def seller_streams(live, slugs: list[str]) -> None:
    """Live streams of the demo seller, made through the seller REST API as bench makes them."""
    from db import users as users_db
    from live.auth.principal import SYSTEM

    services = live.app[SERVICES]
    async with services.db.tx(SYSTEM) as conn:
        token = services.token_for(await users_db.find_or_create_by_name(conn, "demo-seller", "seller"))
    headers = {"Authorization": f"Bearer {token}"}
    for slug in slugs:
        resp = await live.post("/api/v1/livestreams", json={"title": slug, "slug": slug}, headers=headers)
        assert resp.status == 201, await resp.text()
        resp = await live.post(f"/api/v1/livestreams/{slug}/start", headers=headers)
        assert resp.status == 200, await resp.text()


async def test_probe_split_and_small_rooms_against_the_server(app, tmp_path):
    live = app
    prefix = f"probe-{uuid.uuid4().hex[:6]}-"
    rooms = [f"{prefix}1", f"{prefix}2"]
    await seller_streams(live, rooms)
    tokens = await real_users(live, tmp_path, "chatter", 3 + 2 * 2)
    before = await metrics(live)
    code, r, stdout, stderr = await loadtest(
        tmp_path, url_of(live), "audience", "--viewers", "30", "--chatters", "3", "--rate", "1.5",
        "--duration", "3", "--secret", SECRET, "--tokens", str(tokens), "--procs", "2", "--probe-viewers", "5",
        "--rooms", "2", "--room-viewers", "6", "--room-chatters", "2", "--room-rate", "1", "--room-prefix", prefix,
        "--server-cores", "0", "--batch", "--deflate", "--min-delivery", "1.0", "--max-p99-ms", "60000",
        "--html", str(tmp_path / "run.html"))  # --deflate: batches arrive compressed, every one still counted
    after = await metrics(live)
    assert code == 0, stdout + stderr
    assert r["passed"] and not r["errors"] and not r["failures"] and r["latency_source"] == "probe"
    # the probe holds the 3 chatters and 5 viewers, all tracked; the bulk process the other 22, none tracked
    assert [p["viewers"] for p in r["generator"]["procs"]] == [8, 22]
    assert all(p["run_cpu_pct"] is not None for p in r["generator"]["procs"])  # the bulk ran through the chat too
    d = r["delivery"]
    sent = d["messages_sent"]
    assert sent >= 3 and d["deliveries"] == d["deliveries_expected"] == 30 * sent
    assert d["tracked_viewers"] == 8 and r["latency_ms"]["delivery"]["n"] == 8 * sent  # the probe's, every one
    # each small room accounted alone, its viewers all tracked; the main room's figures are the main room's
    rs = r["rooms"]
    assert rs["count"] == 2 and list(rs["per_room"]) == rooms and rs["worst_delivery"] == 1.0
    room_sent = 0
    for slug in rooms:
        x = rs["per_room"][slug]
        assert x["sent"] >= 2 and x["joined"] == 6 and x["expected"] == x["delivered"] == 6 * x["sent"]
        assert x["errors"] == {} and x["refused"] == {}
        assert x["latency_samples"] == 6 * x["sent"] and 0 <= x["p50_ms"] <= x["p99_ms"] <= rs["worst_p99_ms"]
        room_sent += x["sent"]
    chats = (counted(after, "live_chat_messages_total", result="ok")
             - counted(before, "live_chat_messages_total", result="ok"))
    joins = counted(after, "live_joins_total", result="ok") - counted(before, "live_joins_total", result="ok")
    assert chats == sent + room_sent and joins == 30 + 2 * 6
    opened = (counted(after, "live_door_websockets_total", compression="deflate")
              - counted(before, "live_door_websockets_total", compression="deflate"))
    assert opened == 30 + 2 * 6  # every viewer agreed on permessage-deflate
    assert r["viewers"]["joined"] == 30
    # core 0 over the running phase
    c = r["server"]["cores"]
    assert c["cores"] == [0] and c["ticks"] > 0 and 0 <= c["busy"] <= 100
    assert abs(c["busy"] + c["idle"] - 100) <= 0.2
    assert c["user"] + c["system"] + c["softirq"] + c["irq"] <= c["busy"] + 0.5
    assert "rooms        2 small rooms" in stdout and "server cores 0: busy" in stdout
    page = (tmp_path / "run.html").read_text()
    assert "Small rooms (2)" in page and all(f"<th>{slug}</th>" in page for slug in rooms)


async def test_a_room_that_refuses_its_viewers_is_named(app, tmp_path):
    code, r, stdout, stderr = await loadtest(
        tmp_path, url_of(app), "audience", "--viewers", "4", "--duration", "1", "--rooms", "1",
        "--room-viewers", "2", "--room-chatters", "0", "--room-rate", "0", "--room-prefix", "no-such-room-")
    assert code == 2, stdout + stderr
    assert "room no-such-room-1: 2 of 2 viewers not joined (join_not_found x2)" in stderr, stderr


def test_only_joins_the_server_refused_stop_the_run():
    """A slow join (timed out, no ack) or a failed connection is no refusal of the room: only error acks are."""
    def room(errors: dict, joined: int = 1) -> dict:
        return {"viewers": 4, "joined": joined, "errors": errors}

    joined = {0: {"rooms": {"slow": room({"join_timeout": 2, "join_no_ack": 1}),
                            "cut": room({"connect_refused": 1, "connect_failed:ECONNRESET": 1, "disconnected": 1}),
                            "gone": room({"join_not_found": 3, "join_timeout": 1}, joined=0)}},
              1: {}}  # a bulk process: no rooms
    assert room_refusals(joined) == ["room gone: 4 of 4 viewers not joined (join_not_found x3); "
                                     "is the stream 'gone' created and live?"]
    assert room_refusals({0: {"rooms": {"slow": room({"join_timeout": 4}, joined=0)}}}) == []


def test_rooms_are_accounted_per_stream_and_the_worst_reported():
    def stats(latencies: list[float], errors: dict | None = None) -> dict:
        s = Stats()
        for ms in latencies:
            s.latency(ms)
        for _ in range(2):
            s.join.add(1.0)
        s.errors.update(errors or {})
        return s.dump()

    # seqs are per room: both rooms have a seq 3; room-10 sorts after room-2
    results = [
        {"ran": {}, "accounting": [], "rooms": {
            "r-2": {"chat_seqs": [3, 4], "accounting": [(2, 2, True, [3, 4], 0, False), (3, 1, True, [4], 0, False)],
                    "stats": stats([10, 20, 30])},
            "r-10": {"chat_seqs": [5, 3], "accounting": [(2, 1, True, [3], 0, False),  # 5 missing
                                                         (2, 2, True, [3, 5], 1, False)],  # one duplicate
                     "stats": stats([100, 300], {"ack_timeout:chat:send": 1})}}},
        {"ran": {}, "accounting": []},  # a bulk process: no rooms
    ]
    r = rooms_summary(results)
    assert r["count"] == 2 and list(r["per_room"]) == ["r-2", "r-10"]
    a, b = r["per_room"]["r-2"], r["per_room"]["r-10"]
    assert (a["expected"], a["delivered"], a["delivered_ratio"], a["sent"], a["joined"]) == (3, 3, 1.0, 2, 2)
    assert (b["expected"], b["delivered"], b["missing"], b["duplicates"]) == (4, 3, 1, 1)
    assert a["p99_ms"] == pytest.approx(30, rel=0.011) and b["p99_ms"] == pytest.approx(300, rel=0.011)
    assert b["errors"] == {"ack_timeout:chat:send": 1} and a["latency_samples"] == 3
    assert r["worst_p99_ms"] == b["p99_ms"] and r["worst_delivery"] == 0.75
    assert (r["expected"], r["delivered"], r["duplicates"]) == (7, 6, 1)
    assert delivery_summary(results)["messages_sent"] == 0  # the main room's accounting ignores the rooms


async def test_a_bulk_process_tracks_seqs_without_timing():
    """--probe-viewers: a bulk process's tracked viewers (the reconnect scenario's droppers) check seqs but add
    no latency sample: delivery percentiles come from the probe alone."""
    now = time.time()
    chunk = batch_frame(("chat:new", {"seq": 5, "text": f"t={now:.6f} a"}), ("chat:new", {"seq": 6, "text": "b"}))
    chunk += text_frame(encode_event("chat:new", {"seq": 7, "text": f"t={now:.6f} c"}))
    probe_ctx, bulk_ctx = Ctx(), Ctx()
    bulk_ctx.timed = False
    probe, bulk = opened(probe_ctx, 0, track=True), opened(bulk_ctx, 0, track=True)
    for v in (probe, bulk):
        v.data_received(chunk)
        assert sorted(v.seqs) == [5, 6, 7] and v.received == 3
    assert probe_ctx.stats.delivery.n == 2 and bulk_ctx.stats.delivery.n == 0
