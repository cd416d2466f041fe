"""The notification benchmark at a tiny scale (`python -m loadtests notify` in a subprocess, on a fresh test
database, nothing pinned): 50 followers, 10 of them online, a room of 20 viewers chatting. What is asserted is
what the benchmark counts and checks (one notification, one mail with its own Message-ID per follower, every online
follower's `notification:new`), again from the database; timings never are."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import asyncpg

from loadtests.notify_sink import Sink

ROOT = Path(__file__).resolve().parents[2]


def test_the_sink_counts_arrivals_message_ids_and_recipients():
    class Envelope:
        def __init__(self, content: bytes, rcpt: list[str]):
            self.original_content, self.rcpt_tos = content, rcpt

    sink = Sink(None, None, limit=3)
    for i, mid in enumerate((b"<a@x>", b"<b@x>", b"<a@x>")):
        asyncio.run(sink.handle_DATA(None, None, Envelope(b"Subject: s\r\nMessage-ID: " + mid + b"\r\n\r\nbody",
                                                          [f"u{i % 2}@x"])))
    asyncio.run(sink.handle_DATA(None, None, Envelope(b"Subject: no id\r\n\r\nbody", ["u9@x"])))
    stats = sink.stats(0)
    assert (stats["messages"], stats["distinct_message_ids"], stats["recipients"], stats["max_per_recipient"]) == \
        (3, 2, 2, 2)
    assert stats["dropped"] == 1  # over the limit: counted, not kept
    assert stats["per_second"] == []  # seconds since the epoch: past the first hour, not counted per second
    assert sum(sink.stats(stats["first"])["per_second"]) == 3
    assert sink.stats(stats["last"] + 1)["messages"] == 0


async def test_a_seller_with_50_followers_starts_a_stream(dsn, tmp_path):
    out = tmp_path / "notify"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests", "notify", "--database-url", dsn, "--out", str(out),
        "--followers", "50", "--online", "10", "--viewers", "20", "--chatters", "4", "--rate", "2", "--before", "1",
        "--after", "2", "--timeout", "60", "--runs", "1", "--server-cpus", "", "--generator-cpus", "",
        cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 180)
    report = json.loads((out / "notify.json").read_text())
    assert proc.returncode == 0, stdout.decode()[-3000:] + stderr.decode()[-3000:]
    assert report["passed"] and "PASSED" in (out / "notify.txt").read_text()
    (run,) = report["runs"]
    assert all(c["passed"] for c in run["checks"]), run["checks"]
    assert run["start"]["status"] == 200
    assert run["final"]["rows"] == run["final"]["delivered"] == 50 and run["final"]["sent"] == 50
    assert run["mail"]["messages"] == run["mail"]["distinct_message_ids"] == run["mail"]["recipients"] == 50
    assert run["mail"]["max_per_recipient"] == 1
    assert run["notices"]["received"] == 10 and run["notices"]["kinds"] == {"follow.live_now": 10}
    assert run["enqueue"]["notifications_s"] is not None and run["enqueue"]["outbox_s"] is not None
    assert run["chat"]["delivery"]["messages_sent"] > 0 and run["chat"]["whole_run"]["n"] > 0

    conn = await asyncpg.connect(dsn)  # what the benchmark says, from the database itself
    try:
        follows = await conn.fetchval("SELECT count(*) FROM follows f JOIN sellers s ON s.id = f.seller_id "
                                      "WHERE s.slug = $1", run["seller"])
        mails = await conn.fetchval("SELECT count(DISTINCT message_id) FROM email_outbox WHERE kind = "
                                    "'follow.live_now' AND sent_at IS NOT NULL")
    finally:
        await conn.close()
    assert follows == 50 and mails == 50
