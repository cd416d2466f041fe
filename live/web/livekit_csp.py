"""The Content-Security-Policy of the pages that publish or play video, `/live/{stream}` and
`/studio/live/{stream}`, when LiveKit serves it (LIVEKIT_URL set; docs/web.md, Going live): the app's page policy
(live/http/middleware.py HTML_CSP) whose connect-src names this origin and the LiveKit server's origin only: as a
websocket (its signalling, ws or wss as livekit-client derives it from the URL) and over HTTP(S) (livekit-client's
`GET <url>/rtc/.../validate` after a refused connection, which says why). Without LiveKit they keep the app's
policy."""
from __future__ import annotations

from urllib.parse import urlsplit

WS = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
HTTP = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def policy(livekit_url: str) -> str | None:
    """The pages' policy for this LiveKit URL (validated by live/config.py: ws, wss, http or https), None without."""
    if not livekit_url:
        return None
    parts = urlsplit(livekit_url)
    scheme, host = parts.scheme.lower(), parts.netloc.rsplit("@", 1)[-1].lower()
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
            f"connect-src 'self' {WS[scheme]}://{host} {HTTP[scheme]}://{host}; media-src 'self' blob: https:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
