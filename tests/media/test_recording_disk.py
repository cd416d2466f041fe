"""Recordings and free disk space (RECORDING_MIN_FREE_BYTES), real aiortc peers over loopback: a segment is not
started when the recordings' file system has less free, and one being written is finished (kept, ready) when a
periodic check finds less; the stream keeps publishing either way."""
from __future__ import annotations

import shutil

from live.media.embedded import recorder as recorder_module
from tests.helpers import until
from tests.media.test_recording import publish, rows
from tests.rooms.harness import SELLER


async def test_no_recording_starts_below_the_free_space(live):
    recorder = live.services.recorder
    recorder.min_free_bytes = shutil.disk_usage(live.services.settings.data_dir).free + 1024**4  # never enough
    _, token = await live.user(SELLER, "seller")
    state = await live.demo_state()
    pc, location = await publish(live, token, audio=False)
    try:
        fanout = live.services.embedded.publishers[state.id].fanouts["video"]
        await until(lambda: fanout.frames > 10, what="frames")
        assert not recorder.segments and await rows(live, state.id) == []
    finally:
        await live.client.delete(location, headers={"Authorization": f"Bearer {token}"})
        await pc.close()


async def test_a_recording_is_finished_when_the_disk_fills(live, monkeypatch):
    monkeypatch.setattr(recorder_module, "FREE_CHECK_FRAMES", 10)
    recorder = live.services.recorder
    checks = []
    real = recorder._free

    async def free() -> int:  # enough at the start, then the disk "fills"
        checks.append(1)
        return await real() if len(checks) == 1 else 0

    recorder._free = free
    recorder.min_free_bytes = 1
    _, token = await live.user(SELLER, "seller")
    state = await live.demo_state()
    pc, location = await publish(live, token, audio=False)
    try:
        await until(lambda: len(recorder.segments) == 1, what="recording")
        await until(lambda: not recorder.segments, what="the recording finished on a full disk")
        (row,) = await rows(live, state.id)
        assert row["status"] == "ready" and row["bytes"] > 0, dict(row)
        assert len(checks) >= 2 and live.services.embedded.publishing(state.id)
    finally:
        await live.client.delete(location, headers={"Authorization": f"Bearer {token}"})
        await pc.close()
