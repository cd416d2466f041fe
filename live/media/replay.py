"""Replays: a stream's recorded segments (the embedded server's files, LiveKit's egresses) and its product timeline
(every spotlight change, placed in the segment it falls in, with its offset from that segment's start: "this
product at 12:34"). The embedded server's files are served at /replays/<file name> (live/http/replay.py), with
HTTP range requests; an egress's `location` is its URL when it is http(s).

Who may see a replay: whoever may watch the stream (everyone, signed in or not, but a user banned from it). The
file names hold 64 random bits besides the stream's id: the replay's JSON is how one learns them.
Limits: MAX_SEGMENTS recordings and MAX_SPOTLIGHTS timeline entries per replay (the oldest ones)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from db import Database
from db import recordings as recordings_db
from live.auth.principal import Principal
from live.errors import DomainError, not_found
from live.media.embedded.recorder import RECORDINGS_DIR

URL_PREFIX = "/replays/"
MAX_SEGMENTS = 100
MAX_SPOTLIGHTS = 2000
NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{16}\.(mp4|webm)$")
CONTENT_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}


def _url(row) -> str | None:
    if row["status"] != "ready":
        return None
    if row["source"] == "embedded":
        return URL_PREFIX + row["file_name"] if row["file_name"] else None
    location = row["location"] or ""
    return location if location.startswith(("http://", "https://")) else None


def _end(row) -> datetime | None:
    """When a segment's recorded time ends: start + duration; None while it is still recording (open)."""
    if row["duration_ms"] is not None:
        return row["started_at"] + timedelta(milliseconds=row["duration_ms"])
    if row["status"] == "recording":
        return None
    return row["ended_at"] or row["started_at"]


def timeline(segments: list, spotlights: list) -> list[dict]:
    """Each spotlight change with the segment it falls in (start <= at <= end) and its offset from that segment's
    start in ms; recording_id and offset_ms are null for a change made while nothing was recorded. A cleared
    spotlight has product_id and title null."""
    out = []
    for s in spotlights:
        where = None
        for seg in segments:
            end = _end(seg)
            if seg["status"] != "failed" and seg["started_at"] <= s["at"] and (end is None or s["at"] <= end):
                where = seg
        out.append({"product_id": s["product_id"], "title": s["title"], "at": s["at"],
                    "recording_id": where["id"] if where else None,
                    "offset_ms": round((s["at"] - where["started_at"]).total_seconds() * 1000) if where else None})
    return out


def spotlight_at_start(segment, spotlights: list) -> dict | None:
    """The product in the spotlight when a segment began (the last change before its start), so a player shows it
    from 0:00; None when none was (never set, or cleared)."""
    before = [s for s in spotlights if s["at"] <= segment["started_at"]]
    if not before or before[-1]["product_id"] is None:
        return None
    return {"product_id": before[-1]["product_id"], "title": before[-1]["title"]}


class Replays:
    def __init__(self, db: Database, data_dir: Path):
        self.db, self.root = db, Path(data_dir) / RECORDINGS_DIR

    async def replay(self, principal: Principal, id_or_slug: str) -> dict:
        """The stream's recordings and product timeline (404 for no such stream, 403 `banned` for a user banned
        from it)."""
        async with self.db.tx(principal) as conn:
            stream_id = await recordings_db.stream_id(conn, id_or_slug)
            if stream_id is None:
                raise not_found("stream")
            if principal.user_id is not None and await recordings_db.is_banned(conn, stream_id, principal.user_id):
                raise DomainError("banned", "you are banned from this stream")
            segments = await recordings_db.for_stream(conn, stream_id, MAX_SEGMENTS)
            spotlights = await recordings_db.spotlights(conn, stream_id, MAX_SPOTLIGHTS)
        recordings = [{"id": r["id"], "source": r["source"], "status": r["status"], "url": _url(r),
                       "content_type": r["content_type"], "started_at": r["started_at"],
                       "duration_ms": r["duration_ms"], "bytes": r["bytes"], "width": r["width"],
                       "height": r["height"], "spotlight_at_start": spotlight_at_start(r, spotlights)}
                      for r in segments]
        return {"stream_id": stream_id, "recordings": recordings, "timeline": timeline(segments, spotlights)}

    def find(self, name: str) -> tuple[Path, str] | None:
        """A complete recording's file and Content-Type by its name; None for a name the recorder could not have
        given (no path outside the directory is ever opened) or a file that is not there (a recording in progress
        is written under another name)."""
        if not NAME.match(name):
            return None
        path = self.root / name
        if not path.is_file():
            return None
        return path, CONTENT_TYPES[name.rsplit(".", 1)[1]]
