"""Product images uploaded by sellers (`POST /api/v1/seller/uploads`, docs/api.md "Uploads"): the body is the image
itself, sent with its own Content-Type (image/jpeg, image/png or image/webp). The bytes must be that type: their
signature (live/uploads.py `sniff_image`) and the header Pillow decodes (never the pixels) must agree with the
Content-Type, and the picture must be at most MAX_SIDE pixels a side (a small file that would decode to a huge
bitmap, a decompression bomb, is refused before anything decodes it). The file is stored content-addressed under
LIVE_DATA_DIR/uploads by live/uploads.py (the same image twice is one file) and served at `/uploads/<sha256>.<ext>`;
the path it returns is what a product's `image_urls` takes.

The check runs in a worker thread (`asyncio.to_thread`), never on the event loop: Pillow parses headers in pure
Python, and a valid file under 5 MiB can hold a million empty JPEG comment markers or PNG text chunks, seconds of
parsing that would stall every socket of the worker. No warnings filter is touched (`warnings.catch_warnings` swaps
the process-wide filters: not thread-safe; and a filter set at import is lost under any enclosing catch_warnings, as
pytest's): a header over 2 x Image.MAX_IMAGE_PIXELS raises DecompressionBombError, and one in Pillow's warning range
(over 89 million pixels) is far over MAX_SIDE, refused by the size check like any other."""
from __future__ import annotations

import asyncio
import io

from PIL import Image, UnidentifiedImageError

from live.errors import DomainError
from live.uploads import IMAGE_TYPES, Uploads, sniff_image

MAX_BYTES = 5 * 1024 * 1024  # an upload's body; more is 413, refused as it is read
MAX_SIDE = 4096  # pixels, width and height
PIL_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
ACCEPTED = ", ".join(IMAGE_TYPES.values())


def _refuse(message: str) -> DomainError:
    return DomainError("validation_failed", message, details=[{"field": "body", "message": message}])


def media_type(content_type: str | None) -> str:
    """The request's media type, which must be one of the image types (415 otherwise)."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if declared not in IMAGE_TYPES.values():
        raise DomainError("unsupported_media_type", f"send the image itself with its Content-Type: {ACCEPTED}")
    return declared


def check_image(data: bytes, declared: str) -> tuple[str, int, int]:
    """(extension, width, height) of an image whose bytes are the `declared` type and whose size is within
    MAX_SIDE; 422 `validation_failed` (field `body`) with the reason otherwise. Blocking (up to seconds for a
    crafted file): call it in a thread, as store_product_image does."""
    ext = next(e for e, t in IMAGE_TYPES.items() if t == declared)
    found = sniff_image(data)
    if found is None:
        raise _refuse("this file is not a JPEG, PNG or WebP image")
    if found != ext:
        raise _refuse(f"this file is a {PIL_FORMATS[found]} image, not {declared}")
    try:
        with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[ext]]) as img:
            width, height = img.size
    except Image.DecompressionBombError:
        raise _refuse(f"the image is larger than {MAX_SIDE} x {MAX_SIDE} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _refuse(f"this {PIL_FORMATS[ext]} image could not be read (damaged or incomplete)") from None
    if width > MAX_SIDE or height > MAX_SIDE:
        raise _refuse(f"the image is {width} x {height} pixels: at most {MAX_SIDE} x {MAX_SIDE}")
    return ext, width, height


async def store_product_image(uploads: Uploads, data: bytes, declared: str) -> dict:
    """Check and store an uploaded product image; its `url` (a same-site path for `image_urls`), type, size and
    pixel size."""
    _, width, height = await asyncio.to_thread(check_image, data, declared)
    stored = await uploads.store_image(data)
    return {"url": stored.url, "content_type": stored.content_type, "size": stored.size, "width": width,
            "height": height}
