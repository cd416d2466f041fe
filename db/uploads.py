"""The upload sweep's queries (live/uploads.py `UploadSweep`): one run at a time across every worker and machine, and
which stored upload names (`<sha256>.<ext>`, served at /uploads/<name>) rows still name."""
from __future__ import annotations

import asyncpg

# an upload's name inside a URL: a same-site path (/uploads/<name>) or an absolute URL of this site
NAME_IN_URL = r"/uploads/([0-9a-f]{64}\.(?:jpg|png|webp))"

# Every column that may hold an upload's URL: a product's pictures (archived products too: their orders show them),
# a stream's cover and its thumbnail, a user's avatar (both http(s) only, but an absolute URL of this site is one),
# and the cover a follower's notice carries (`data.cover_url`, absolute: live/notify/follows.py `stream_data`).
# Each is read once per run (a scan of the column), filtered by the candidates' names.
_REFERENCED = """
SELECT DISTINCT r.name FROM (
    SELECT substring(u FROM $2) AS name FROM products p CROSS JOIN LATERAL unnest(p.image_urls) u
        WHERE u LIKE '%/uploads/%'
    UNION ALL SELECT substring(cover_url FROM $2) FROM livestreams WHERE cover_url LIKE '%/uploads/%'
    UNION ALL SELECT substring(thumbnail_url FROM $2) FROM livestreams WHERE thumbnail_url LIKE '%/uploads/%'
    UNION ALL SELECT substring(avatar_url FROM $2) FROM users WHERE avatar_url LIKE '%/uploads/%'
    UNION ALL SELECT substring(n.data->>'cover_url' FROM $2) FROM notifications n
        WHERE n.data ? 'cover_url' AND n.data->>'cover_url' LIKE '%/uploads/%'
) r WHERE r.name = ANY($1::text[])"""


async def try_lock(conn: asyncpg.Connection) -> bool:
    """Take the sweep's lock for the rest of this transaction; False when another run holds it."""
    return await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended('uploads:sweep', 0))")


async def referenced(conn: asyncpg.Connection, names: list[str]) -> set[str]:
    """Those of `names` that a row still names (see _REFERENCED); run as system (every row)."""
    if not names:
        return set()
    return {r["name"] for r in await conn.fetch(_REFERENCED, names, NAME_IN_URL)}
