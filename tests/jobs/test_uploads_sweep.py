"""The sweep of unreferenced uploads (live/uploads.py `UploadSweep`, the `uploads.sweep` job) against a real server,
real PostgreSQL and real files: an old file no row names goes, a young one stays, and so does every kind of
reference (a product's picture as a path and as an absolute URL, a stream's cover and thumbnail, an avatar, a
follower's notice); stale temporary files go; bytes uploaded again are kept; a file touched just before its
deletion is kept; at most max_files examined a run, the next run going on from there; one run at a time; the job
registered, queued once (its key) by the serving process's timer and run by the job queue; a product naming an old
upload keeps it from a sweep under way, and one naming a swept upload is refused."""
from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid

from live.auth.principal import SYSTEM
from live.uploads import CURSOR, SWEEP_CHECK_SECONDS, SWEEP_GRACE_SECONDS, SWEEP_KIND, UploadSweep
from tests.commerce.harness import API, Shop, make_client
from tests.commerce.test_commerce_images import image
from tests.helpers import until

DAY = 24 * 3600


def age(path, seconds: float) -> None:
    """The file was last written `seconds` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


async def upload(shop: Shop, seller, data: bytes) -> str:
    resp = await shop.client.post(f"{API}/seller/uploads", data=data,
                                  headers={**seller.headers, "Content-Type": "image/jpeg"})
    assert resp.status == 201, await resp.text()
    return (await resp.json())["url"]


async def test_the_sweep_keeps_every_reference_and_removes_the_rest(tmp_path, dsn, aiohttp_client, capsys):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client))
    services = shop.services
    root = tmp_path / "data" / "uploads"
    seller = await shop.seller("sweeper")
    colors = ["red", "green", "blue", "navy", "olive", "maroon", "purple", "teal", "gray", "orange"]
    urls = [await upload(shop, seller, image(color=c)) for c in colors]
    names = [u.rsplit("/", 1)[1] for u in urls]
    picture, absolute, cover, thumb, avatar, notice, orphan, young, again, _ = names
    site = "https://shop.example"

    product = await shop.product(seller)
    await shop.call("PATCH", f"/products/{product['id']}", seller,
                    json={"image_urls": [f"/uploads/{picture}", f"{site}/uploads/{absolute}"]})
    stream = await shop.call("POST", "/livestreams", seller, json={"title": "Sweep", "slug": "sweep"}, expect=201)
    cover_bytes = (root / cover).read_bytes()
    resp = await shop.client.post(f"{API}/livestreams/{stream['id']}/cover", data=cover_bytes,
                                  headers={**seller.headers, "Content-Type": "image/jpeg"})
    assert resp.status == 200 and (await resp.json())["cover_url"] == f"/uploads/{cover}"
    await shop.call("PATCH", f"/livestreams/{stream['id']}", seller,
                    json={"thumbnail_url": f"{site}/uploads/{thumb}"})
    await shop.call("PATCH", "/me", seller, json={"avatar_url": f"{site}/uploads/{avatar}"})
    async with services.db.tx(SYSTEM) as conn:
        await conn.execute(
            """INSERT INTO notifications (user_id, kind, key, data) VALUES ($1::uuid, 'follow.live_now', $2, $3)""",
            seller.id, f"follow.live_now:{uuid.uuid4()}", {"cover_url": f"{site}/uploads/{notice}"})
    # a crash's leftovers: an old temporary file, and a young one (an upload being written)
    (root / f".{orphan}.abc123").write_bytes(b"half")
    (root / f".{young}.def456").write_bytes(b"half")

    for name in names:
        age(root / name, 2 * DAY)
    age(root / f".{orphan}.abc123", 2 * DAY)
    age(root / young, SWEEP_GRACE_SECONDS - 3600)  # uploaded 23 h ago: its product may be saved yet
    # the same bytes uploaded again: the stored file's mtime is refreshed, so it is young again
    assert await upload(shop, seller, (root / again).read_bytes()) == f"/uploads/{again}"
    assert time.time() - (root / again).stat().st_mtime < 60

    # the job is registered and queued once, whichever process asks, due SWEEP_EVERY_SECONDS later
    assert SWEEP_KIND in services.jobs.kinds()
    assert "uploads-sweep-scheduler" in {t.get_name() for t in services._tasks}
    assert SWEEP_CHECK_SECONDS < services.upload_sweep.every
    job = await services.upload_sweep.schedule()
    assert job is not None and await services.upload_sweep.schedule() is None
    async with services.db.tx(SYSTEM) as conn:
        due = await conn.fetchval("SELECT execute_after - now() FROM pgqueuer WHERE id = $1", job)
        assert 3500 < due.total_seconds() <= 3600
        await conn.execute("UPDATE pgqueuer SET execute_after = now() WHERE id = $1", job)
    capsys.readouterr()
    await services.jobs.drain()  # the queue runs it: this drain, or the app's own job worker, whichever picks it

    async def finished() -> bool:
        async with services.db.tx(SYSTEM) as conn:
            return await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE entrypoint = $1", SWEEP_KIND) == 0
    await until(finished, 10, what="the sweep job's end")
    left = {p.name for p in root.iterdir()}
    kept = {picture, absolute, cover, thumb, avatar, notice, young, again}
    assert kept <= left
    gone = set(names) - kept
    assert gone and not gone & left  # the orphan and the last color: old, named by no row
    assert f".{orphan}.abc123" not in left and f".{young}.def456" in left
    assert not [n for n in left if n.endswith(".swept")]
    assert services.upload_sweep.outcomes["removed"] == len(gone) + 1
    assert services.upload_sweep.outcomes["referenced"] == 6
    metrics = await (await shop.client.get("/metrics")).text()  # what an operator reads
    [removed] = [line for line in metrics.splitlines()
                 if line.startswith("live_upload_sweep_files_total{") and 'outcome="removed"' in line]
    assert float(removed.rsplit(" ", 1)[1]) == len(gone) + 1
    logged = capsys.readouterr().out  # the structlog lines: one for each file removed, then the run's counts
    assert all(f"name={n}" in logged for n in gone) and "uploads_swept" in logged
    # the removed files are no longer served; the kept ones are
    assert (await shop.client.get(f"/uploads/{orphan}")).status == 404
    assert (await shop.client.get(f"/uploads/{picture}")).status == 200
    # the product lets go of its pictures: they go at the next run (their mtime is old)
    await shop.call("PATCH", f"/products/{product['id']}", seller, json={"image_urls": []})
    await services.upload_sweep.sweep()
    assert not (root / picture).exists() and not (root / absolute).exists() and (root / cover).exists()


async def test_the_serving_process_timer_queues_one_sweep_and_no_more(tmp_path, dsn, aiohttp_client, monkeypatch):
    """The serving process's own timer (checking every 50 ms here) queues the job, and only ever one."""
    monkeypatch.setattr("live.container.SWEEP_CHECK_SECONDS", 0.05)
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client))

    async def queued() -> int:
        async with shop.services.db.tx(SYSTEM) as conn:
            return await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE entrypoint = $1", SWEEP_KIND)

    async def one() -> bool:
        return await queued() == 1
    await until(one, 10, what="the timer queued the sweep")
    await asyncio.sleep(0.3)  # six more checks
    assert await queued() == 1


async def test_the_cap_the_lock_and_a_file_touched_at_the_last_moment(tmp_path, dsn, aiohttp_client, monkeypatch):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client))
    services = shop.services
    root = services.uploads.root
    stored = [await services.uploads.store_image(image(color=c))
              for c in ("red", "green", "blue", "navy", "olive", "maroon", "purple")]
    for s in stored:
        age(root / s.name, 2 * DAY)
    sweep = UploadSweep(services.db, services.uploads, max_files=3)

    # another run holds the lock: this one does nothing
    async with services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended('uploads:sweep', 0))")
        assert await sweep.sweep() == {}
    assert len([p for p in root.iterdir() if p.name != CURSOR]) == 7

    # at most 3 examined a run; the next run goes on after the last name examined
    first = await sweep.sweep()
    assert first == {"examined": 3, "removed": 3, "referenced": 0, "young": 0}
    assert (root / CURSOR).read_text() == sorted(s.name for s in stored)[2]
    assert (await sweep.sweep())["removed"] == 3
    assert (await sweep.sweep()) == {"examined": 1, "removed": 1, "referenced": 0, "young": 0}
    assert [p.name for p in root.iterdir()] == [CURSOR]

    # a file found old, then uploaded again (mtime refreshed) before its removal: kept
    s = await services.uploads.store_image(image(color="black"))
    age(root / s.name, 2 * DAY)
    cutoff = time.time() - sweep.grace
    os.utime(root / s.name)
    assert sweep._remove([s.name], cutoff) == [] and (root / s.name).is_file()
    # moved aside by a sweep that then sees a refreshed mtime (an upload touched it just before the rename): put back
    age(root / s.name, 2 * DAY)
    original = os.rename

    def touch_then_rename(src, dst):
        if str(src).endswith(s.name):
            os.utime(src)
        original(src, dst)
    with monkeypatch.context() as patch:
        patch.setattr(os, "rename", touch_then_rename)
        assert sweep._remove([s.name], cutoff) == []
    assert (root / s.name).is_file() and not (root / f".{s.name}.swept").exists()
    # and an upload while the file is moved aside writes it anew
    os.rename(root / s.name, root / f".{s.name}.swept")
    again = await services.uploads.store_image((root / f".{s.name}.swept").read_bytes())
    assert again.name == s.name and hashlib.sha256((root / s.name).read_bytes()).hexdigest() == s.name[:64]

    # a product about to name an old upload refreshes its mtime first: the sweep keeps it (even with the names
    # it found unreferenced before the save); an upload already swept is refused on image_urls, not saved
    seller = await shop.seller("late-saver")
    product = await shop.product(seller)
    late = await services.uploads.store_image(image(color="white"))
    age(root / late.name, 2 * DAY)
    cutoff = time.time() - sweep.grace
    await shop.call("PATCH", f"/products/{product['id']}", seller, json={"image_urls": [late.url]})
    assert sweep._remove([late.name], cutoff) == [] and (root / late.name).is_file()
    gone = await services.uploads.store_image(image(color="yellow"))
    (root / gone.name).unlink()
    refused = await shop.call("PATCH", f"/products/{product['id']}", seller, expect=422,
                              json={"image_urls": [late.url, gone.url]})
    assert refused["error"]["details"][0]["field"] == "image_urls" and gone.url in refused["error"]["message"]
    refused = await shop.call("POST", "/products", seller, expect=422,
                              json={"title": "Gone", "image_urls": [gone.url],
                                    "variants": [{"sku": "G-1", "price_minor": 100, "currency": "USD", "stock": 1}]})
    assert refused["error"]["details"][0]["field"] == "image_urls"
    assert (await shop.call("GET", f"/products/{product['id']}", seller))["image_urls"] == [late.url]
