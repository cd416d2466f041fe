"""Rows left `recording` by a worker that stopped are finished by the sweep: a complete file makes its row ready
(duration and size read back), a partial file untouched for STALE_AFTER seconds makes it failed and is deleted, a
row without a file yet is left alone until STALE_AFTER has passed, a fresh partial file (a recording going on) and
this worker's own recordings are left alone."""
from __future__ import annotations

import os
import shutil
import time

from db import recordings as recordings_db
from live.auth.principal import SYSTEM
from live.media.embedded.recorder import STALE_AFTER
from live.media.embedded.writer import SegmentWriter
from tests.media.test_recording_writer import vp8_frames


async def test_the_sweep_finishes_what_a_stopped_worker_left(live):
    recorder = live.services.recorder
    state = await live.demo_state()
    root = recorder.root
    root.mkdir(parents=True, exist_ok=True)
    # a real file, as a worker leaves it when it stopped between the rename and the row's update
    source = SegmentWriter(root / "src.webm", "video/VP8", audio=False)
    for i, (data, key) in enumerate(vp8_frames(30)):
        source.video(data, i * 3000, key)
    assert (await source.close()).ok
    names = {k: f"{state.id}-{n * 16}.webm" for k, n in (("complete", "a"), ("stale", "b"), ("fresh", "c"),
                                                             ("nofile", "d"), ("oldnofile", "e"))}
    ids = {}
    async with live.services.db.tx(SYSTEM) as conn:
        for kind, name in names.items():
            ids[kind] = await recordings_db.start(conn, state.id, name, "video/webm")
        await conn.execute("UPDATE recordings SET started_at = now() - interval '1 hour' WHERE id = $1::uuid",
                           ids["oldnofile"])
    shutil.move(root / "src.webm", root / names["complete"])
    old = time.time() - STALE_AFTER - 5
    for kind in ("stale", "fresh"):
        (root / f".{names[kind]}.part").write_bytes(b"partial")
    os.utime(root / f".{names['stale']}.part", (old, old))

    assert await recorder.sweep() == 3
    async with live.services.db.tx(SYSTEM) as conn:
        got = {str(r["id"]): r for r in await conn.fetch("SELECT * FROM recordings")}
    complete = got[ids["complete"]]
    assert complete["status"] == "ready" and 900 <= complete["duration_ms"] <= 1100
    assert complete["bytes"] == (root / names["complete"]).stat().st_size and complete["width"] == 160
    assert got[ids["stale"]]["status"] == "failed" and "stopped" in got[ids["stale"]]["error"]
    assert not (root / f".{names['stale']}.part").exists()
    assert got[ids["oldnofile"]]["status"] == "failed"
    assert got[ids["fresh"]]["status"] == got[ids["nofile"]]["status"] == "recording"
    assert (root / f".{names['fresh']}.part").exists()
    assert await recorder.sweep() == 0  # once
