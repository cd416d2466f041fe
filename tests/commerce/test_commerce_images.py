"""Product image uploads over real HTTP (POST /api/v1/seller/uploads, live/commerce/images.py): JPEG, PNG and WebP
made with Pillow are stored by content hash and served back (type, nosniff, a year's cache, ETag and 304); every
limit: the Content-Type (415), bytes that are not the type they claim or not an image (422 on `body`), a damaged
image, more than 4096 pixels a side and a decompression bomb (422), more than 5 MiB however framed (413; exactly 5 MiB
is taken), sellers and admins only (401, 403), the per-user rates (429: per hour and per day); the check runs in a
thread, off the event loop; image_urls takes the upload's path and the demo's pictures, nothing else of this site."""
from __future__ import annotations

import hashlib
import io
import struct
import threading
import zlib

import pytest
from PIL import Image

from live.commerce import images
from live.commerce.images import MAX_BYTES
from live.ratelimit import DEFAULT_LIMITS, Limit
from tests.commerce.harness import API, Shop, make_client


def image(fmt: str = "JPEG", size: tuple[int, int] = (40, 30), color: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def png(width: int = 1, height: int = 1, extra: int = 0) -> bytes:
    """A PNG whose header says width x height (the pixels are not all there: only the header is read), with a text
    chunk of `extra` bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    text = chunk(b"tEXt", b"Comment\x00" + b"x" * extra) if extra else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + text
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


async def upload(shop: Shop, actor, data, content_type: str | None = "image/jpeg"):
    headers = dict(actor.headers) if actor else {}
    if content_type:
        headers["Content-Type"] = content_type
    resp = await shop.client.post(f"{API}/seller/uploads", data=data, headers=headers)
    return resp.status, await resp.json(), resp.headers


async def test_upload_serve_and_every_limit(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client))
    seller, admin, customer = await shop.seller(), await shop.user(role="admin"), await shop.user()
    stored = tmp_path / "data" / "uploads"

    jpeg = image()
    status, body, _ = await upload(shop, seller, jpeg)
    assert status == 201, body
    name = hashlib.sha256(jpeg).hexdigest() + ".jpg"
    assert body == {"url": f"/uploads/{name}", "content_type": "image/jpeg", "size": len(jpeg), "width": 40,
                    "height": 30}
    resp = await shop.client.get(body["url"])
    assert resp.status == 200 and await resp.read() == jpeg
    assert resp.headers["Content-Type"] == "image/jpeg" and resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    etag = resp.headers["ETag"]
    again = await shop.client.get(body["url"], headers={"If-None-Match": etag})
    assert again.status == 304
    # the same image twice is one file; PNG and WebP (charset parameters and case do not matter)
    assert (await upload(shop, admin, jpeg, "Image/JPEG; charset=binary"))[1]["url"] == body["url"]
    for fmt, ctype, ext in (("PNG", "image/png", "png"), ("WEBP", "image/webp", "webp")):
        status, out, _ = await upload(shop, seller, image(fmt, (64, 64)), ctype)
        assert status == 201 and out["url"].endswith(f".{ext}") and out["content_type"] == ctype, out
    assert len(list(stored.iterdir())) == 3

    # what is refused stores nothing
    async def refused(data, ctype, code: int, error: str, actor=seller) -> str:
        status, out, _ = await upload(shop, actor, data, ctype)
        assert status == code and out["error"]["code"] == error, (status, out)
        return out["error"]["message"]

    text = b"a text file renamed photo.jpg\n" * 20
    assert "not a JPEG, PNG or WebP image" in await refused(text, "image/jpeg", 422, "validation_failed")
    assert await refused(image("PNG"), "image/jpeg", 422, "validation_failed") == \
        "this file is a PNG image, not image/jpeg"
    assert "could not be read" in await refused(b"\xff\xd8\xff" + b"\x00" * 200, "image/jpeg", 422,
                                                "validation_failed")
    for ctype in ("text/plain", "image/gif", "application/octet-stream", None):
        assert "Content-Type" in await refused(jpeg, ctype, 415, "unsupported_media_type")
    # pixels: 4096 a side is fine, 4097 is not, nor a small file whose header claims 100000 x 100000 (a bomb)
    status, out, _ = await upload(shop, seller, image("PNG", (4096, 8)), "image/png")
    assert status == 201 and out["width"] == 4096
    assert "at most 4096 x 4096" in await refused(image("PNG", (8, 4097)), "image/png", 422, "validation_failed")
    assert "larger than 4096 x 4096" in await refused(png(100_000, 100_000), "image/png", 422, "validation_failed")
    # bytes: 5 MiB is taken, one more is 413 with a Content-Length and chunked (refused as it is read)
    exact = png(extra=MAX_BYTES - len(png(extra=1)) + 1)
    assert len(exact) == MAX_BYTES
    assert (await upload(shop, seller, exact, "image/png"))[0] == 201
    big = png(extra=MAX_BYTES - len(png(extra=1)) + 2)
    await refused(big, "image/png", 413, "payload_too_large")

    async def chunks():
        for i in range(0, len(big), 65_536):
            yield big[i:i + 65_536]
    await refused(chunks(), "image/png", 413, "payload_too_large")
    # sellers and admins only
    await refused(jpeg, "image/jpeg", 403, "forbidden", customer)
    await refused(jpeg, "image/jpeg", 401, "unauthorized", None)
    assert len(list(stored.iterdir())) == 5

    # image_urls: the upload's path and the demo's pictures, besides http(s) URLs; no other path of this site
    product = await shop.product(seller)
    urls = [body["url"], "/static/demo/sneaker.svg", "https://example.com/a.jpg"]
    patched = await shop.call("PATCH", f"/products/{product['id']}", seller, json={"image_urls": urls})
    assert patched["image_urls"] == urls
    for bad in ("/uploads/../jwt_secret", "/uploads/" + name.upper(), "/static/js/api.js", "/etc/passwd",
                "javascript:alert(1)", "/static/demo/../app.css"):
        status, out, _ = await shop.call("PATCH", f"/products/{product['id']}", seller, json={"image_urls": [bad]},
                                         expect=None)
        assert status == 422 and out["error"]["details"][0]["field"].startswith("image_urls"), (bad, out)


async def test_upload_rate_limit(tmp_path, dsn, aiohttp_client):
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, rate_limits="upload=2/3600"))
    seller, other = await shop.seller(), await shop.seller()
    for color in ("red", "blue"):
        assert (await upload(shop, seller, image(color=color)))[0] == 201
    status, body, headers = await upload(shop, seller, image(color="green"))
    assert status == 429 and body["error"]["code"] == "rate_limited" and int(headers["Retry-After"]) > 0
    assert (await upload(shop, other, image(color="green")))[0] == 201  # per user


async def test_upload_daily_limit(tmp_path, dsn, aiohttp_client):
    """Uploads are never deleted yet: besides 60 an hour, at most 100 a day (`upload_daily`) bound a seller's disk."""
    assert DEFAULT_LIMITS["upload_daily"] == Limit(100, 86400)
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client, rate_limits="upload_daily=2/86400"))
    seller, other = await shop.seller(), await shop.seller()
    for color in ("red", "blue"):
        assert (await upload(shop, seller, image(color=color)))[0] == 201
    status, body, headers = await upload(shop, seller, image(color="green"))  # the hourly 60 would let it through
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert int(headers["Retry-After"]) > 3600  # the day's bucket: one more in 12 hours
    assert (await upload(shop, other, image(color="green")))[0] == 201  # per user


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
async def test_the_check_runs_off_the_event_loop(tmp_path, dsn, aiohttp_client, monkeypatch):
    """Pillow parses a header in pure Python: a valid JPEG under 5 MiB made of ~1.3 million empty comment markers
    took seconds (measured: 2.1 s, the loop's worst lag 0.1-0.2 s once the check moved to a thread). The check must
    run in a worker thread: a loop-lag bound would be a flaky benchmark, so the test records the thread it ran in."""
    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client))
    seller = await shop.seller()
    ran_in: list[int] = []
    check = images.check_image

    def recorded(data: bytes, declared: str):
        ran_in.append(threading.get_ident())
        return check(data, declared)

    monkeypatch.setattr(images, "check_image", recorded)
    jpeg = image()
    padded = jpeg[:2] + b"\xff\xfe\x00\x02" * 20_000 + jpeg[2:]  # empty COM segments after SOI: valid, slow
    status, body, _ = await upload(shop, seller, padded)
    assert status == 201 and (body["width"], body["height"]) == (40, 30), body
    assert ran_in and threading.get_ident() not in ran_in  # not the event loop's thread
    # Pillow only warns of a bomb of 100 million pixels (from a thread; no process-wide filter): the size refuses it
    status, body, _ = await upload(shop, seller, png(10_000, 10_000), "image/png")
    assert status == 422 and body["error"]["message"] == "the image is 10000 x 10000 pixels: at most 4096 x 4096"
    assert len(ran_in) == 2


async def test_the_demo_pictures_are_served_here(tmp_path, dsn, aiohttp_client):
    """The demo's products show small local pictures (no internet at run time), each served by the server; a database
    seeded when they were picsum.photos URLs gets them at the next seed, and a seller's own pictures are kept."""
    from live.auth.principal import SYSTEM
    from live.seed import seed

    shop = Shop(await make_client(tmp_path, dsn, aiohttp_client))
    ids = await seed(shop.services)
    total = 0
    for pid in ids["product_ids"]:
        (url,) = (await shop.call("GET", f"/products/{pid}"))["image_urls"]
        assert url.startswith("/static/demo/") and url.endswith(".svg"), url
        resp = await shop.client.get(url)
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("image/svg+xml"), url
        total += len(await resp.read())
    assert total <= 200_000  # static files are held in memory
    old, own = ids["product_ids"][:2]
    async with shop.services.db.tx(SYSTEM) as conn:
        await conn.execute("UPDATE products SET image_urls = $2 WHERE id = $1::uuid", old,
                           ["https://picsum.photos/seed/live-snk-aur-blk/600/600"])
        await conn.execute("UPDATE products SET image_urls = $2 WHERE id = $1::uuid", own,
                           ["/uploads/" + "a" * 64 + ".png"])
    await seed(shop.services)
    assert (await shop.call("GET", f"/products/{old}"))["image_urls"] == ["/static/demo/sneaker.svg"]
    assert (await shop.call("GET", f"/products/{own}"))["image_urls"] == ["/uploads/" + "a" * 64 + ".png"]
