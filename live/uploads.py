"""Uploaded files (a stream's cover image; product images later): the type is sniffed from the first bytes, never
taken from a header or a file name; the file is stored content-addressed (`<sha256>.<ext>`) under
LIVE_DATA_DIR/uploads, written to a temporary file then renamed (a reader never sees half a file, and the same
bytes uploaded twice are one file), and served back at `/uploads/<name>` with its type and a long cache (the name
changes with the content, so a cached copy is never stale).

Storing bytes that are stored already refreshes the file's mtime (the rename of a new file sets it too), which the
sweep of unreferenced uploads (`UploadSweep`, the `uploads.sweep` job, docs/commerce.md "Product images") reads as
"young": a file is deleted only when it is older than SWEEP_GRACE_SECONDS and no row names it."""
from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import os
import re
import stat
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from db import Database
from db import uploads as uploads_db
from live.auth.principal import SYSTEM
from live.errors import DomainError
from live.jobs import Jobs, enqueue
from live.logging import get_logger

log = get_logger("live.uploads")

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
        try:  # same content, same name: stored already; its mtime refreshed, so the sweep sees it young
            os.utime(path)
            return
        except FileNotFoundError:  # not there (or just taken away by the sweep, which then leaves it): write it
            pass
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)

    def keep(self, urls: list[str]) -> list[str]:
        """Refresh the mtime of every stored upload `urls` name (same-site `/uploads/<name>` paths), so that the
        sweep sees it young for another SWEEP_GRACE_SECONDS: the urls whose file is not stored (any more). A row
        about to name a file calls this first: either the mtime is refreshed before the sweep moves the file aside
        (the sweep then sees it young and puts it back) or the file is gone and the row is refused."""
        missing = []
        for url in urls:
            name = url[len(URL_PREFIX):] if url.startswith(URL_PREFIX) else ""
            if NAME.match(name):
                try:
                    os.utime(self.root / name)
                except FileNotFoundError:
                    missing.append(url)
        return missing

    def find(self, name: str) -> tuple[Path, str] | None:
        """The file and Content-Type of a stored upload's name; None for a name this store could not have given
        out (so no path outside the directory is ever opened) or a file that is not there."""
        if not NAME.match(name):
            return None
        path = self.root / name
        if not path.is_file():
            return None
        return path, IMAGE_TYPES[name.rsplit(".", 1)[1]]



# ---- the sweep of unreferenced uploads (the `uploads.sweep` job) ----

SWEEP_KIND = "uploads.sweep"
SWEEP_GRACE_SECONDS = 24 * 3600  # a file younger than this (by mtime) is kept: uploaded, its product not saved yet
SWEEP_EVERY_SECONDS = 3600  # a run is queued this long after the last one ended (plus up to SWEEP_CHECK_SECONDS)
SWEEP_CHECK_SECONDS = 300  # each serving process looks this often whether a run is queued, and queues one if not
SWEEP_MAX_FILES = 20000  # files examined (so at most deleted) per run; the next run goes on from where this one ended
SWEEP_QUERY_NAMES = 1000  # names asked about in one query of the rows that still name them
# write_atomic's temporary files (`.<name>.<random>`) and the sweep's own `.<name>.swept`: left by a crash
TEMP = re.compile(r"^\.[0-9a-f]{64}\.(jpg|png|webp)\.")
CURSOR = ".sweep-cursor"  # the last name a run examined (the directory is shared by every machine, and so is this)


class UploadSweep:
    """Deletes stored uploads no row names (db/uploads.py `referenced`: product pictures, stream covers and
    thumbnails, avatars, followers' notices) once older than `grace` seconds, at most `max_files` examined a run.

    One run at a time: the job's dedupe key keeps one `uploads.sweep` queued or running, and the run holds a
    PostgreSQL advisory lock besides (a second run finds it taken and ends). A file the same bytes are uploaded to
    during the run is kept: the upload refreshes its mtime or, once the sweep has moved the file aside, writes it
    again; the sweep moves a file aside (rename) before deleting it and reads its mtime once more there."""

    def __init__(self, db: Database, uploads: Uploads, *, grace: float = SWEEP_GRACE_SECONDS,
                 every: float = SWEEP_EVERY_SECONDS, max_files: int = SWEEP_MAX_FILES):
        self.db, self.root = db, uploads.root
        self.grace, self.every, self.max_files = grace, every, max_files
        self.outcomes: Counter[str] = Counter()  # this process's runs' files: removed, referenced, young

    def register(self, jobs: Jobs) -> None:
        jobs.register(SWEEP_KIND, self._job, max_attempts=3, first_delay=60.0, max_delay=600.0)

    async def _job(self, payload: dict) -> None:
        await self.sweep()

    async def schedule(self) -> int | None:
        """Queue the next run, due in `every` seconds, unless one is queued or running (the job's key): the id of
        the job queued, else None. Called every SWEEP_CHECK_SECONDS by every serving process."""
        async with self.db.tx(SYSTEM) as conn:
            return await enqueue(conn, SWEEP_KIND, {}, key=SWEEP_KIND, delay=self.every)

    async def sweep(self) -> dict[str, int]:
        """One run: the counts of files examined, removed, kept as referenced and kept as young ({} when another
        run holds the lock)."""
        cutoff = time.time() - self.grace
        async with self.db.tx(SYSTEM) as conn:
            if not await uploads_db.try_lock(conn):
                log.info("uploads_sweep_busy")
                return {}
            examined, old = await asyncio.to_thread(self._pick, cutoff)
            stored = [n for n in old if NAME.match(n)]
            kept: set[str] = set()
            for i in range(0, len(stored), SWEEP_QUERY_NAMES):
                kept |= await uploads_db.referenced(conn, stored[i:i + SWEEP_QUERY_NAMES])
            removed = await asyncio.to_thread(self._remove, [n for n in old if n not in kept], cutoff)
        counts = {"examined": examined, "removed": len(removed), "referenced": len(kept),
                  "young": examined - len(old)}
        for name, size in removed:
            log.info("upload_removed", name=name, size=size)
        self.outcomes.update({k: counts[k] for k in ("removed", "referenced", "young")})
        log.info("uploads_swept", **counts, grace_seconds=self.grace)
        return counts

    def _pick(self, cutoff: float) -> tuple[int, list[str]]:
        """Examine up to max_files names after the cursor (sorted, wrapping round): how many, and the old ones."""
        try:
            names = sorted(n for n in os.listdir(self.root) if NAME.match(n) or TEMP.match(n))
        except FileNotFoundError:
            return 0, []
        try:
            after = (self.root / CURSOR).read_text()
        except (FileNotFoundError, UnicodeDecodeError):
            after = ""
        start = bisect.bisect_right(names, after)
        chosen = (names[start:] + names[:start])[:self.max_files]
        old = []
        for name in chosen:
            try:
                st = os.lstat(self.root / name)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mtime <= cutoff:
                old.append(name)
        if chosen:
            write_atomic(self.root / CURSOR, chosen[-1].encode(), fsync=False)
        return len(chosen), old

    def _remove(self, names: list[str], cutoff: float) -> list[tuple[str, int]]:
        """Delete each file unless its mtime moved past `cutoff` meanwhile: (name, bytes) of those deleted."""
        removed = []
        for name in names:
            path = self.root / name
            aside = path if TEMP.match(name) else self.root / f".{name}.swept"
            try:
                st = os.stat(path)
                if st.st_mtime > cutoff:
                    continue
                if aside != path:
                    # an upload of these bytes from now on finds no file and writes it anew; one that refreshed
                    # the mtime before this rename shows in the stat below, and the file is put back
                    os.rename(path, aside)
                    st = os.stat(aside)
                    if st.st_mtime > cutoff:
                        os.rename(aside, path)
                        continue
                os.unlink(aside)
            except FileNotFoundError:
                continue
            removed.append((name, st.st_size))
        return removed
