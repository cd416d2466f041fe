"""The web app's static files (live/web/static/: CSS, ES modules, the vendored client libraries), read once at
start-up and served from memory: `GET /static/{path}`.

Each file has an ETag (its SHA-256); `If-None-Match` answers 304. A page links a file as `/static/<path>?v=<hash>`
(`Assets.url`): such a URL names one content forever and is cached for a year (`immutable`); any other request
(the modules' own relative imports, an old `v`) must revalidate (`no-cache`). Text files are also kept gzipped
and sent so when the browser accepts gzip. Only the files present at start-up exist: a path is a key of a dict,
never joined to a directory, so nothing outside static/ can be read; an unknown path is 404. Their total size is
what the package ships (MAX_TOTAL_BYTES, checked at load: a stray large file fails the start, not a request)."""
from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from live.errors import not_found

MAX_TOTAL_BYTES = 4 * 1024 * 1024
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
         ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json", ".webmanifest":
         "application/manifest+json"}
TEXT = ("text/", "application/json", "application/manifest+json", "image/svg+xml")
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str

    @property
    def version(self) -> str:
        return self.etag.strip('"')[:12]


class Assets:
    def __init__(self, files: dict[str, bytes]):
        total = sum(len(b) for b in files.values())
        if total > MAX_TOTAL_BYTES:
            raise ValueError(f"live/web/static holds {total} bytes, over {MAX_TOTAL_BYTES}")
        self.files: dict[str, Asset] = {}
        for path, body in files.items():
            suffix = path[path.rfind("."):] if "." in path.rsplit("/", 1)[-1] else ""
            ctype = TYPES.get(suffix, "text/plain")  # LICENSE, VERSIONS
            packed = gzip.compress(body, 9, mtime=0) if ctype.startswith(TEXT) and len(body) > 512 else None
            self.files[path] = Asset(body, packed if packed and len(packed) < len(body) else None, ctype,
                                     '"' + hashlib.sha256(body).hexdigest() + '"')

    @classmethod
    def load(cls) -> "Assets":
        root = resources.files("live.web").joinpath("static")
        files: dict[str, bytes] = {}

        def walk(node, prefix: str) -> None:
            for child in node.iterdir():
                if child.name.startswith("."):
                    continue
                if child.is_dir():
                    walk(child, f"{prefix}{child.name}/")
                else:
                    files[prefix + child.name] = child.read_bytes()

        walk(root, "")
        return cls(files)

    def url(self, path: str) -> str:
        """The URL a template links (`{{ asset('js/watch.js') }}`); a missing file fails the render, loudly."""
        return f"/static/{path}?v={self.files[path].version}"

    async def serve(self, request: web.Request) -> web.Response:
        asset = self.files.get(request.match_info["path"])
        if asset is None:
            raise not_found("file")
        return self.respond(request, asset, IMMUTABLE if request.query.get("v") == asset.version else "no-cache")

    @staticmethod
    def respond(request: web.Request, asset: Asset, cache: str) -> web.Response:
        """The asset with its ETag and `cache` (Cache-Control): 304 on a matching If-None-Match, gzipped when
        the browser takes it. Also the favicon's (favicon.py)."""
        headers = {"ETag": asset.etag, "Cache-Control": cache, "Vary": "Accept-Encoding"}
        if asset.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
            body, headers["Content-Encoding"] = asset.gzipped, "gzip"
        return web.Response(body=body, content_type=asset.content_type, headers=headers,
                            charset="utf-8" if asset.content_type.startswith(TEXT) else None)
