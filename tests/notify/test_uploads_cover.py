"""A stream's cover image over real HTTP: a real PNG (larger than the JSON body limit) stored content-addressed and
served back with its type, a long cache and nosniff; the type told by the bytes, not the name or header (a text
file called cover.png: 422); over COVER_MAX_BYTES: 413 however framed; only the stream's seller (403); unknown
upload names: 404 without touching the disk outside the directory."""
from __future__ import annotations

import hashlib
import struct
import zlib

import asyncpg
import pytest

from live.auth.principal import SYSTEM
from live.uploads import Uploads, sniff_image, write_atomic
from tests.commerce.harness import API, Shop, make_client


def png(extra: int = 0) -> bytes:
    """A valid 1x1 PNG, with an ancillary text chunk of `extra` bytes to make it as large as wanted."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    text = chunk(b"tEXt", b"Comment\x00" + b"x" * extra) if extra else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + text
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def test_sniffing():
    assert sniff_image(png()) == "png"
    assert sniff_image(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "jpg"
    assert sniff_image(b"RIFF\x24\x00\x00\x00WEBPVP8 ") == "webp"
    for bad in (b"", b"hello, I am a PNG", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"\x89PNG", b"GIF89a"):
        assert sniff_image(bad) is None, bad


async def post_cover(shop: Shop, stream_id: str, actor, data, content_type: str = "image/png"):
    headers = {"Content-Type": content_type, **(actor.headers if actor else {})}
    resp = await shop.client.post(f"{API}/livestreams/{stream_id}/cover", data=data, headers=headers)
    return resp.status, await resp.json()


async def test_cover_upload(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, cover_max_bytes=200_000))
    seller, other, customer = await shop.seller("painter"), await shop.seller("rival"), await shop.user()
    stream = await shop.call("POST", "/livestreams", seller, json={"title": "Paint", "slug": "paint"}, expect=201)
    assert stream["cover_url"] is None
    image = png(100_000)  # over the 64 KiB JSON body limit, under the cover's
    # the header says JPEG, the bytes say PNG: stored as the PNG it is
    status, body = await post_cover(shop, "paint", seller, image, "image/jpeg")
    assert status == 200, body
    name = hashlib.sha256(image).hexdigest() + ".png"
    assert body["cover_url"] == f"/uploads/{name}" and body["id"] == stream["id"]
    assert (tmp_path / "data" / "uploads" / name).read_bytes() == image
    assert (await shop.call("GET", "/livestreams/paint"))["cover_url"] == f"/uploads/{name}"
    assert (await shop.call("GET", "/sellers/painter"))["upcoming"][0]["cover_url"] == f"/uploads/{name}"
    resp = await shop.client.get(f"/uploads/{name}")
    assert resp.status == 200 and await resp.read() == image
    assert resp.headers["Content-Type"] == "image/png" and resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in resp.headers["Cache-Control"] and "immutable" in resp.headers["Cache-Control"]
    async with shop.services.db.tx(SYSTEM) as conn:
        audit = await conn.fetchrow("SELECT actor_id::text, data FROM audit_log WHERE action = 'stream.cover'")
    assert audit["actor_id"] == seller.id and audit["data"]["after"] == {"cover_url": f"/uploads/{name}"}

    # the same bytes again: the same file, nothing new
    assert (await post_cover(shop, stream["id"], seller, image))[0] == 200
    assert [p.name for p in (tmp_path / "data" / "uploads").iterdir()] == [name]

    # a text file named cover.png
    status, body = await post_cover(shop, "paint", seller, b"just some text, honest\n" * 10)
    assert status == 422 and body["error"]["code"] == "validation_failed"
    assert body["error"]["details"][0]["field"] == "body"
    status, body = await post_cover(shop, "paint", seller, b"")
    assert status == 422
    # too large, with a Content-Length and chunked (no length: refused as it is read)
    big = png(250_000)
    status, body = await post_cover(shop, "paint", seller, big)
    assert status == 413 and body["error"]["code"] == "payload_too_large"

    async def chunks():
        for i in range(0, len(big), 16_384):
            yield big[i:i + 16_384]
    status, body = await post_cover(shop, "paint", seller, chunks())
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    # not the stream's seller; not a seller; nobody; no such stream
    for actor, code in ((other, 403), (customer, 403), (None, 401)):
        status, body = await post_cover(shop, "paint", actor, png())
        assert status == code, (actor, body)
    assert (await post_cover(shop, "nope", seller, png()))[0] == 404
    assert (await shop.call("GET", "/livestreams/paint"))["cover_url"] == f"/uploads/{name}"  # unchanged
    assert len(list((tmp_path / "data" / "uploads").iterdir())) == 1  # refused uploads stored nothing

    for bad in ("0" * 64 + ".png", "..%2Fjwt_secret", name.replace(".png", ".gif"), name.upper(), "x"):
        resp = await shop.client.get(f"/uploads/{bad}")
        assert resp.status == 404, bad
        assert (await resp.json())["error"]["code"] == "not_found"


class ProbedUploads(Uploads):
    """The real store, which first looks (as the database owner, in pg_stat_activity) for a session left idle
    inside a transaction after reading the stream: a transaction held open while the file is written."""

    def __init__(self, data_dir, dsn: str):
        super().__init__(data_dir)
        self.dsn, self.open_transactions = dsn, []

    async def store_image(self, data: bytes):
        conn = await asyncpg.connect(self.dsn)
        try:
            self.open_transactions.append(await conn.fetchval(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND pid <> pg_backend_pid()
                     AND state LIKE 'idle in transaction%' AND query LIKE '%FROM livestreams s JOIN sellers se%'"""))
        finally:
            await conn.close()
        return await super().store_image(data)


async def test_cover_is_stored_outside_any_transaction(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client))
    seller = await shop.seller("sculptor")
    await shop.call("POST", "/livestreams", seller, json={"title": "Clay", "slug": "clay"}, expect=201)
    probe = ProbedUploads(tmp_path / "data", dsn)
    shop.services.schedule.uploads = probe
    status, body = await post_cover(shop, "clay", seller, png())
    assert status == 200, body
    assert probe.open_transactions == [0]
    assert body["cover_url"] == "/uploads/" + hashlib.sha256(png()).hexdigest() + ".png"
    async with shop.services.db.tx(SYSTEM) as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'stream.cover'") == 1


async def test_cover_uploads_are_rate_limited(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, rate_limits="cover=2/3600"))
    seller, other = await shop.seller("potter"), await shop.seller("weaver")
    await shop.call("POST", "/livestreams", seller, json={"title": "Pots", "slug": "pots"}, expect=201)
    await shop.call("POST", "/livestreams", other, json={"title": "Rugs", "slug": "rugs"}, expect=201)
    for extra in (1, 2):
        assert (await post_cover(shop, "pots", seller, png(extra)))[0] == 200
    resp = await shop.client.post(f"{API}/livestreams/pots/cover", data=png(3),
                                  headers={"Content-Type": "image/png", **seller.headers})
    body = await resp.json()
    assert resp.status == 429 and body["error"]["code"] == "rate_limited", body
    assert int(resp.headers["Retry-After"]) > 0
    # the refused upload stored nothing; another seller has a count of their own
    assert len(list((tmp_path / "data" / "uploads").iterdir())) == 2
    assert (await post_cover(shop, "rugs", other, png(3)))[0] == 200


def test_write_atomic_replaces_whole_and_cleans_up_after_a_failure(tmp_path):
    target = tmp_path / "file.bin"
    write_atomic(target, b"old")
    write_atomic(target, b"new" * 1000, fsync=False)
    assert target.read_bytes() == b"new" * 1000
    # the rename fails (a non-empty directory is in the way): raised, and no temporary file is left beside it
    blocked = tmp_path / "blocked.bin"
    (blocked / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        write_atomic(blocked, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked.bin", "file.bin"]
    # the write itself fails (not bytes): the same
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "other.bin", "not bytes")  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked.bin", "file.bin"]
