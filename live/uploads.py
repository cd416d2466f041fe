"""Uploaded files (a stream's cover image; product images later): the type is sniffed from the first bytes, never
taken from a header or a file name; the file is stored content-addressed (`<sha256>.<ext>`) under
LIVE_DATA_DIR/uploads, written to a temporary file then renamed (a reader never sees half a file, and the same
bytes uploaded twice are one file), and served back at `/uploads/<name>` with its type and a long cache (the name
changes with the content, so a cached copy is never stale)."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from live.errors import DomainError

URL_PREFIX = "/uploads/"
# extension -> Content-Type of the image types a cover (and later a product image) may be
IMAGE_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp)$")


def sniff_image(data: bytes) -> str | None:
    """The extension of a JPEG, PNG or WebP image by its signature, else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def write_atomic(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write `data` to `path` (whose directory exists) so that a reader sees the old file or the whole new one,
    never half of it: a temporary file (`.<name>.<random>` beside it) is written, fsynced when `fsync`, and renamed
    over `path`. On any failure the temporary file is deleted and the error raised. Blocking: call it in a thread
    from the event loop. Also the development mailbox's writer (live/notify/devmail.py, without fsync)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class Stored:
    name: str  # <sha256 hex>.<ext>
    content_type: str
    size: int

    @property
    def url(self) -> str:
        return URL_PREFIX + self.name


class Uploads:
    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "uploads"

    async def store_image(self, data: bytes) -> Stored:
        """Store a JPEG, PNG or WebP image; anything else is 422 `validation_failed` naming the body. The file is
        written in a worker thread (the event loop never waits on the disk)."""
        ext = sniff_image(data)
        if ext is None:
            raise DomainError("validation_failed", "not a JPEG, PNG or WebP image",
                              details=[{"field": "body", "message": "must be a JPEG, PNG or WebP image"}])
        name = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        await asyncio.to_thread(self._write, name, data)
        return Stored(name, IMAGE_TYPES[ext], len(data))

    def _write(self, name: str, data: bytes) -> None:
        path = self.root / name
        if path.exists():  # same content, same name: stored already
            return
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)

    def find(self, name: str) -> tuple[Path, str] | None:
        """The file and Content-Type of a stored upload's name; None for a name this store could not have given
        out (so no path outside the directory is ever opened) or a file that is not there."""
        if not NAME.match(name):
            return None
        path = self.root / name
        if not path.is_file():
            return None
        return path, IMAGE_TYPES[name.rsplit(".", 1)[1]]

