"""The load-test tool end to end: each scenario runs briefly through the real CLI (`python -m loadtests` in a
subprocess) against the app served on a real port with a real database, and the JSON report is checked
against what the server itself recorded (its /metrics counters, and the database for the flash sale).
The Node reference server (loadtests/reference) gets the same audience run when node is installed."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

import jwt
import pytest

from live.appkeys import GATEWAY, SERVICES
from loadtests.probe import samples
from tests.helpers import SECRET, make_settings
from tests.workers.cluster import free_port

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "loadtests" / "reference"


@pytest.fixture
async def live(tmp_path, dsn, aiohttp_client):
    """The app with the demo data (stream 'demo', live, a spotlighted product) on a real port."""
    from live.app import create_app

    return await aiohttp_client(create_app(make_settings(tmp_path, seed_demo="true"), dsn, run_migrations=False))


async def real_users(live, tmp_path, prefix: str, n: int) -> Path:
    """n real users and a file of their tokens, one per line (as `live token --count n` prints)."""
    from db import users as users_db
    from live.auth.principal import SYSTEM

    services = live.app[SERVICES]
    tokens = []
    async with services.db.tx(SYSTEM) as conn:
        for i in range(n):
            tokens.append(services.token_for(await users_db.find_or_create_by_name(conn, f"{prefix}-{i}", "customer")))
    path = tmp_path / f"{prefix}.txt"
    path.write_text("\n".join(tokens) + "\n")
    return path


async def loadtest(tmp_path, url: str, *args: str, timeout: float = 60) -> tuple[int, dict | None, str, str]:
    """Run the CLI; (exit status, the JSON report or None, stdout, stderr)."""
    out = tmp_path / f"report-{time.monotonic_ns()}.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests", *args, "--url", url, "--json", str(out), cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    report = json.loads(out.read_text()) if out.exists() else None
    return proc.returncode, report, stdout.decode(), stderr.decode()


async def metrics(client) -> dict:
    """The server's counters: {(sample name, (label, value) pairs without worker): value}."""
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    return samples(await resp.text())


def counted(m: dict, name: str, **labels) -> int:
    return int(m.get((name, tuple(sorted(labels.items()))), 0))


def url_of(client) -> str:
    return str(client.make_url("/")).rstrip("/")


def check_latency(summary: dict) -> None:
    assert summary["n"] > 0
    assert 0 <= summary["p50"] <= summary["p95"] <= summary["p99"] <= summary["max"]


async def test_audience_numbers_match_the_server_over_two_processes_with_html(live, tmp_path):
    tokens = await real_users(live, tmp_path, "chatter", 5)
    html = tmp_path / "report.html"
    before = await metrics(live)
    code, r, stdout, stderr = await loadtest(
        tmp_path, url_of(live), "audience", "--viewers", "50", "--chatters", "5", "--rate", "2", "--reactions", "4",
        "--duration", "3", "--sample", "0.2", "--secret", SECRET, "--tokens", str(tokens), "--procs", "2",
        "--html", str(html), "--progress", "--min-delivery", "1.0", "--max-p99-ms", "60000")
    after = await metrics(live)
    assert code == 0, stdout + stderr
    assert r["passed"] and not r["errors"] and not r["failures"]
    # what the server recorded during the run
    joins = counted(after, "live_joins_total", result="ok") - counted(before, "live_joins_total", result="ok")
    chats = (counted(after, "live_chat_messages_total", result="ok")
             - counted(before, "live_chat_messages_total", result="ok"))
    reactions = (counted(after, "live_reactions_total", result="ok")
                 - counted(before, "live_reactions_total", result="ok"))
    assert r["viewers"]["joined"] == joins == 50
    d = r["delivery"]
    assert d["messages_sent"] == chats == r["events"]["ok"]["chat:send"] >= 4
    assert r["events"]["ok"].get("reaction", 0) == reactions >= 8
    # everyone joined before the chat: every viewer (chatters too) gets every message once
    assert d["deliveries"] == d["deliveries_expected"] == 50 * chats
    assert d["delivered_ratio"] == 1.0 and d["missing"] == 0 and d["duplicates"] == 0
    assert r["server_metrics"]["joins"] == {"ok": 50} and r["server_metrics"]["chat_messages"] == {"ok": chats}
    check_latency(r["latency_ms"]["delivery"])
    check_latency(r["latency_ms"]["ack"]["chat:send"])
    assert d["tracked_viewers"] > 0 and d["latency_samples"] == r["latency_ms"]["delivery"]["n"]
    # the two generator processes split the audience and report their own CPU
    procs = r["generator"]["procs"]
    assert [p["viewers"] for p in procs] == [25, 25]
    assert all(p["total_cpu_pct"] is not None and p["pid"] for p in procs)
    assert r["generator"]["total_cpu_s"] >= sum(p["cpu_s"] for p in procs) and "total" in stdout
    assert r["timeline"] and max(row["viewers"] for row in r["timeline"]) == 50
    assert sum(row["msgs_in"] for row in r["timeline"]) <= d["deliveries"]
    assert "viewers 50/50" in stderr  # the progress line
    assert f"delivered {d['deliveries']:,} of {d['deliveries_expected']:,} (100.000 %)" in stdout  # the table
    page = html.read_text()
    assert page.count("<svg") >= 4 and "<polyline" in page
    assert "<script" not in page and "<link" not in page and " src=" not in page  # self-contained


async def test_join_storm_counts_joins_and_server_memory(live, tmp_path):
    before = await metrics(live)
    code, r, stdout, stderr = await loadtest(
        tmp_path, url_of(live), "join-storm", "--viewers", "80", "--secret", SECRET, "--duration", "0.5",
        "--concurrency", "40", "--server-pid", str(os.getpid()), "--max-join-s", "60")
    after = await metrics(live)
    assert code == 0, stdout + stderr
    assert r["viewers"]["joined"] == 80 and r["viewers"]["all_joined_s"] is not None
    assert counted(after, "live_joins_total", result="ok") - counted(before, "live_joins_total", result="ok") == 80
    assert counted(after, "live_socket_connects_total", result="ok") - counted(
        before, "live_socket_connects_total", result="ok") == 80
    check_latency(r["latency_ms"]["join"])
    assert r["server"]["pid"] == os.getpid() and r["server"]["rss_mb_joined"] > 0
    assert isinstance(r["server"]["kb_per_connection"], float)
    assert r["thresholds"] == [{"name": "all joined within s", "limit": 60.0, "value": r["viewers"]["all_joined_s"],
                                "passed": True}]


async def test_thresholds_set_the_exit_status(live, tmp_path):
    code, r, stdout, _ = await loadtest(tmp_path, url_of(live), "join-storm", "--viewers", "10", "--duration", "0",
                                        "--max-p99-ms", "0.001", "--max-join-s", "600")
    assert code == 1
    assert not r["passed"]
    verdicts = {t["name"]: t["passed"] for t in r["thresholds"]}
    assert verdicts == {"join p99 ms": False, "all joined within s": True}
    assert "FAIL         join p99 ms" in stdout
    # a usage error is status 2 and runs nothing
    code, r, _, stderr = await loadtest(tmp_path, url_of(live), "audience", "--chatters", "3", "--rate", "1")
    assert code == 2 and r is None and "need as many tokens" in stderr


async def test_reconnect_recovers_without_gap_or_duplicate(live, tmp_path):
    tokens = await real_users(live, tmp_path, "talker", 4)
    before = await metrics(live)
    code, r, stdout, stderr = await loadtest(
        tmp_path, url_of(live), "reconnect", "--viewers", "40", "--chatters", "4", "--rate", "2", "--duration", "4",
        "--drop", "0.3", "--pause", "0.5", "--tokens", str(tokens))
    after = await metrics(live)
    assert code == 0, stdout + stderr
    c = r["reconnect"]
    assert c["dropped"] == round(0.3 * 36) == c["rejoined"] == c["recovered"] and c["not_recovered"] == 0
    assert c["missing_after_rejoin"] == 0 and c["duplicates_after_rejoin"] == 0
    d = r["delivery"]
    chats = (counted(after, "live_chat_messages_total", result="ok")
             - counted(before, "live_chat_messages_total", result="ok"))
    assert d["messages_sent"] == chats >= 4
    assert d["deliveries"] == d["deliveries_expected"] == 40 * chats
    # first joins and rejoins, as the server counted them
    assert (counted(after, "live_joins_total", result="ok")
            - counted(before, "live_joins_total", result="ok")) == 40 + c["dropped"]
    assert d["tracked_viewers"] >= c["dropped"]


async def test_flash_sale_sells_exactly_the_stock(live, tmp_path):
    if "cart:add" not in live.app[GATEWAY].sio.handlers["/"]:
        pytest.skip("cart:add is not registered on this server yet (commerce)")
    services = live.app[SERVICES]
    from live.auth.principal import SYSTEM

    async with services.db.tx(SYSTEM) as conn:
        variant, available = await conn.fetchrow(
            """SELECT v.id::text, v.on_hand - v.reserved - v.sold FROM livestreams s
               JOIN product_variants v ON v.product_id = s.spotlight_product_id
               WHERE s.slug = 'demo' AND v.on_hand - v.reserved - v.sold > 0 ORDER BY v.sku LIMIT 1""")
        await conn.execute("UPDATE product_variants SET on_hand = reserved + sold + 12 WHERE id = $1::uuid", variant)
    tokens = await real_users(live, tmp_path, "buyer", 20)
    code, r, stdout, stderr = await loadtest(
        tmp_path, url_of(live), "flash-sale", "--viewers", "30", "--tokens", str(tokens), "--variant", variant,
        "--secret", SECRET, "--max-ack-p99-ms", "60000")
    assert code == 0, stdout + stderr
    f = r["flash_sale"]
    assert f["buyers"] == 20 and f["initial_available"] == 12
    assert f["succeeded"] == 12 and f["out_of_stock"] == 8 and not f["other_errors"] and not f["oversold"]
    assert f["stock_zero_seen_by"] == f["watchers"] == 30
    check_latency(r["latency_ms"]["ack"]["cart:add"])
    assert r["server_metrics"]["cart_adds"] == {"ok": 12, "out_of_stock": 8}
    async with services.db.tx(SYSTEM) as conn:
        reserved = await conn.fetchval("SELECT reserved FROM product_variants WHERE id = $1::uuid", variant)
        lines = await conn.fetchval("SELECT coalesce(sum(quantity), 0) FROM cart_items WHERE variant_id = $1::uuid",
                                    variant)
    assert reserved == lines == f["units_added"] == 12


@pytest.mark.skipif(shutil.which("node") is None or not (REFERENCE / "node_modules" / "socket.io").exists(),
                    reason="node and loadtests/reference/node_modules (make test runs npm ci there) are needed")
async def test_node_reference_server_runs_the_audience(tmp_path):
    port = free_port()
    node = await asyncio.create_subprocess_exec("node", str(REFERENCE / "server.js"), "--port", str(port),
                                                "--secret", SECRET, stderr=asyncio.subprocess.PIPE)
    try:
        await asyncio.wait_for(node.stderr.readline(), 20)  # "reference socket.io ..." once listening
        now = int(time.time())
        chatters = tmp_path / "ref-chatters.txt"
        chatters.write_text("\n".join(jwt.encode({"sub": f"ref-user-{i}", "role": "customer", "name": f"r{i}",
                                                  "iss": "live", "iat": now, "exp": now + 600}, SECRET, "HS256")
                                      for i in range(3)))
        url = f"http://127.0.0.1:{port}"
        code, r, stdout, stderr = await loadtest(
            tmp_path, url, "audience", "--viewers", "30", "--chatters", "3", "--rate", "1.5", "--duration", "2",
            "--secret", SECRET, "--tokens", str(chatters), "--server-pid", str(node.pid), "--min-delivery", "1")
        assert code == 0, stdout + stderr
        assert r["viewers"]["joined"] == 30 and r["delivery"]["delivered_ratio"] == 1.0
        assert r["server_metrics"]["joins"] == {"ok": 30}
        assert (r["server_metrics"]["chat_messages"] == {"ok": r["delivery"]["messages_sent"]}
                and r["delivery"]["messages_sent"] >= 2)
        assert r["server"]["cpu_pct_run"] is not None
        # a forged token is refused, as by live
        code, r, _, _ = await loadtest(tmp_path, url, "join-storm", "--viewers", "3", "--duration", "0",
                                       "--secret", "not-the-secret-" + "y" * 30)
        assert code == 1 and r["viewers"]["joined"] == 0 and r["errors"] == {"connect_unauthorized": 3}
    finally:
        node.terminate()
        await node.wait()


async def test_metrics_count_socket_events_by_ack_result(live, tmp_path):
    """/metrics counts what the gateway answered, refusals by their error code, through a real client."""
    import socketio

    from tests.helpers import Viewer

    base = url_of(live)
    tokens = (await real_users(live, tmp_path, "metered", 1)).read_text().split()
    before = await metrics(live)
    anon, user = await Viewer(base).connect(), await Viewer(base, tokens[0]).connect()
    try:
        assert (await anon.call("join", {"stream_id": "demo"}))["ok"]
        assert (await anon.call("chat:send", {"stream_id": "demo", "text": "hi"}))["error"]["code"] == "unauthorized"
        assert (await anon.call("no:such:event", {}))["error"]["code"] == "invalid"
        assert (await user.call("join", {"stream_id": "no-such-stream"}))["error"]["code"] == "not_found"
        assert (await user.call("join", {"stream_id": "demo"}))["ok"]
        assert (await user.call("chat:send", {"stream_id": "demo", "text": "hello"}))["ok"]
        with pytest.raises(socketio.exceptions.ConnectionError):
            await Viewer(base, "not-a-token").connect()
        m = await metrics(live)
        assert counted(m, "live_socket_connections") == 2
        assert counted(m, "live_room_members") == 2
    finally:
        await anon.close()
        await user.close()

    def delta(name, **labels):
        return counted(m, name, **labels) - counted(before, name, **labels)

    assert delta("live_socket_connects_total", result="ok") == 2
    assert delta("live_socket_connects_total", result="refused") == 1
    assert delta("live_joins_total", result="ok") == 2 and delta("live_joins_total", result="not_found") == 1
    assert delta("live_chat_messages_total", result="ok") == 1
    assert delta("live_chat_messages_total", result="unauthorized") == 1
    assert delta("live_socket_events_total", event="unknown", result="invalid") == 1
    assert delta("live_socket_events_total", event="chat:send", result="ok") == 1
    assert delta("live_hub_frames_total") >= 1 and delta("live_hub_socket_writes_total") >= 2
    assert m[("process_cpu_seconds_total", ())] > 0 and m[("process_resident_memory_bytes", ())] > 0
