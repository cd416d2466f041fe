"""The naive server (loadtests/naive_server.py, issue 17's bench target) as a real process on a real port: raw
websocket clients join and chat and get each flush as one `batch` frame, bad input gets an error ack or a close,
the command fails loudly on bad arguments, and both load generators (`--batch`) get every message out of its
batch frames."""
from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from live.rooms import packets
from loadtests.worker import mint
from tests.rooms.harness import RawWs

ROOT = Path(__file__).resolve().parents[2]
SECRET = "naive-server-test-secret-of-32-bytes-or-more"  # the server does not check it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.fixture
def naive():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "loadtests", "naive-server", "--port", str(port)], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while health(port) != 200:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "naive-server not healthy in 30 s"
        time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


async def client(port: int, token: str | None = None) -> RawWs:
    ws = await RawWs.connect("127.0.0.1", port)
    ws.send(packets.encode_connect({"token": token} if token else None))
    answer = await ws.recv_until(lambda t: t.startswith("4"))
    assert answer.startswith("40{") and "sid" in json.loads(answer[2:]), answer
    return ws


async def batch(ws: RawWs) -> list:
    """The elements of the next room event frame, which must be a batch."""
    text = await ws.recv_until(lambda t: t.startswith("42"))
    name, elements = json.loads(text[2:])
    assert name == "batch" and isinstance(elements, list) and elements, text
    return elements


async def test_a_flush_is_one_batch_frame_to_every_member(naive):
    chatter = await client(naive, mint(SECRET, "live"))
    watcher = await client(naive)
    try:
        joins = [await ws.call(1, "join", {"stream_id": "demo"}) for ws in (chatter, watcher)]
        for ack in joins:
            assert ack["ok"] is True and ack["recovered"] is False and ack["stream"]["slug"] == "demo", ack
            assert ack["seq"] == 0 and isinstance(ack["epoch"], str) and ack["chat"] == []
        # three messages within one flush (50 ms): one frame holding the three, in order, to both
        for n in range(3):
            chatter.send(packets.encode_emit(10 + n, "chat:send", {"stream_id": "demo", "text": f"hello {n}"}))
        acks = [await chatter.recv_until(lambda t, n=n: t.startswith(f"43{10 + n}[")) for n in range(3)]
        messages = [packets.decode_ack(a.encode())[1][0]["message"] for a in acks]
        assert [m["seq"] for m in messages] == [1, 2, 3]
        assert messages[0]["user"]["name"] == "viewer" and messages[0]["stream_id"] == "demo"
        for ws in (chatter, watcher):
            assert await batch(ws) == [["chat:new", m] for m in messages]
        # a later one is a batch of one
        assert (await chatter.call(20, "chat:send", {"text": "alone"}))["ok"]  # stream_id: its only room
        assert [e[1]["text"] for e in await batch(watcher)] == ["alone"]
        # recovery by seq and epoch, as live's join
        again = await client(naive)
        ack = await again.call(1, "join", {"stream_id": "demo", "last_seq": 2, "epoch": joins[0]["epoch"]})
        assert ack["recovered"] is True and [e[1]["seq"] for e in ack["events"]] == [3, 4], ack
        ack = await again.call(2, "join", {"stream_id": "demo", "last_seq": 2, "epoch": "another"})
        assert ack["recovered"] is False and [m["text"] for m in ack["chat"]] == [
            "hello 0", "hello 1", "hello 2", "alone"]
        # errors are acks, not crashes
        codes = [(await watcher.call(30 + i, event, data))["error"]["code"] for i, (event, data) in enumerate([
            ("chat:send", {"stream_id": "demo", "text": "anonymous"}), ("no:such", {}), ("join", "demo"),
            ("join", {"stream_id": ""}), ("join", {"stream_id": ["demo"]})])]
        assert codes == ["unauthorized", "invalid", "invalid", "invalid", "invalid"]
        for i, text in enumerate((None, "", "   ", "x" * 501)):
            ack = await chatter.call(60 + i, "chat:send", {"stream_id": "demo", "text": text})
            assert ack["error"]["code"] == "invalid", (text, ack)
        assert [(await again.call(40 + i, "join", {"stream_id": f"r{i}"}))["ok"] for i in range(3)] == [
            True, True, False]  # at most 3 streams per connection
        # a packet that is not Socket.IO closes that connection only
        again.send("42not json")
        assert await again.drained_to_eof()
        assert health(naive) == 200
        assert (await chatter.call(50, "chat:send", {"text": "still here"}))["ok"]
        assert [e[1]["text"] for e in await batch(watcher)] == ["still here"]
    finally:
        for ws in (chatter, watcher):
            ws.close()


async def test_chat_needs_a_join_and_an_empty_room_is_forgotten(naive):
    """chat:send to a stream the connection has not joined is refused (it made a room of 1,000 history events);
    a room left empty is dropped once its pending events are written (leave, or the connection lost)."""
    chatter = await client(naive, mint(SECRET, "live"))
    other = await client(naive, mint(SECRET, "live"))
    try:
        ack = await chatter.call(1, "chat:send", {"stream_id": "elsewhere", "text": "hi"})
        assert ack["ok"] is False and ack["error"] == {"code": "invalid", "message": "join first"}, ack
        assert (await chatter.call(2, "join", {"stream_id": "gone"}))["seq"] == 0
        assert (await chatter.call(3, "chat:send", {"text": "one"}))["message"]["seq"] == 1
        assert (await chatter.call(4, "leave", {"stream_id": "gone"}))["ok"]  # before its flush: still pending
        assert (await other.call(1, "join", {"stream_id": "kept"}))["ok"]
        assert (await other.call(2, "chat:send", {"text": "two"}))["message"]["seq"] == 1
        await asyncio.sleep(0.2)  # past the flush
        ack = await chatter.call(5, "join", {"stream_id": "gone"})
        assert ack["seq"] == 0 and ack["chat"] == [] and ack["viewers"] == 1, ack  # afresh
        other.close()  # the connection lost: "kept" is empty now
        await asyncio.sleep(0.2)
        ack = await chatter.call(6, "join", {"stream_id": "kept"})
        assert ack["seq"] == 0 and ack["chat"] == [], ack
        # a room with a member stays
        assert (await chatter.call(7, "chat:send", {"stream_id": "kept", "text": "three"}))["message"]["seq"] == 1
        await asyncio.sleep(0.2)
        third = await client(naive)
        ack = await third.call(1, "join", {"stream_id": "kept"})
        assert ack["seq"] == 1 and [m["text"] for m in ack["chat"]] == ["three"], ack
        third.close()
    finally:
        chatter.close()
        other.close()


async def test_fifty_viewers_get_every_message_once(naive):
    viewers = [await client(naive) for _ in range(50)]
    chatters = [await client(naive, mint(SECRET, "live")) for _ in range(3)]
    try:
        for i, ws in enumerate(viewers + chatters):
            assert (await ws.call(1, "join", {"stream_id": "crowd"}))["ok"], i
        sent = []
        for k in range(5):
            for c in chatters:
                sent.append((await c.call(2 + k, "chat:send", {"text": f"m{k}"}))["message"]["seq"])
            await asyncio.sleep(0.03)  # across several flushes

        async def seqs(ws: RawWs) -> list[int]:
            got: list[int] = []
            while len(got) < len(sent):
                got += [e[1]["seq"] for e in await batch(ws) if e[0] == "chat:new"]
            return got

        for got in await asyncio.gather(*(seqs(ws) for ws in viewers)):
            assert got == sorted(sent)
    finally:
        for ws in viewers + chatters:
            ws.close()


def test_bad_arguments_and_a_busy_port_fail_loudly():
    run = [sys.executable, "-m", "loadtests", "naive-server"]
    out = subprocess.run([*run, "--port", "70000"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--port" in out.stderr
    out = subprocess.run([*run, "--flush-ms", "soon"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--flush-ms" in out.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run([*run, "--port", str(port)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in out.stderr, out.stderr


def test_the_load_generator_gets_every_message_through_it(naive, tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("".join(mint(SECRET, "live") + "\n" for _ in range(5)))
    report = tmp_path / "run.json"
    out = subprocess.run(
        [sys.executable, "-m", "loadtests", "audience", "--url", f"http://127.0.0.1:{naive}", "--viewers", "50",
         "--chatters", "5", "--rate", "2", "--duration", "3", "--tokens", str(tokens), "--secret", SECRET,
         "--metrics", "none", "--batch", "--min-delivery", "1", "--json", str(report), "--no-progress", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(report.read_text())
    delivery = r["delivery"]
    assert delivery["messages_sent"] >= 5 and delivery["deliveries_expected"] == 50 * delivery["messages_sent"]
    assert delivery["delivered_ratio"] == 1.0 and delivery["duplicates"] == 0, delivery
    assert r["events"]["batch_frames_received"] > 0  # the naive server batches every flush


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_node_generator_reads_its_batches(naive, tmp_path):
    """nodegen --batch through a server that always batches (live's hub writes an idle room's message at once,
    so only here are batch frames sure to arrive): every message reaches every viewer, out of batch frames."""
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("".join(mint(SECRET, "live") + "\n" for _ in range(3)))
    report = tmp_path / "node.json"
    out = subprocess.run(
        [sys.executable, "-m", "loadtests", "nodegen", "--url", f"http://127.0.0.1:{naive}", "--viewers", "20",
         "--chatters", "3", "--rate", "3", "--duration", "2", "--tokens", str(tokens), "--procs", "2",
         "--probe-viewers", "4", "--metrics", "none", "--batch", "--min-delivery", "1", "--json", str(report),
         "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(report.read_text())
    d = r["delivery"]
    assert r["batch"] is True and d["messages_sent"] >= 3 and not r["errors"], r
    assert d["delivered_ratio"] == 1.0 and d["deliveries"] == 20 * d["messages_sent"] and d["seqs_short"] == 0
    assert r["events"]["batch_frames_received"] > 0 and r["events"]["chat_frames_received"] == d["deliveries"]
