"""The notification benchmark's mail server (loadtests/notify.py): a real SMTP server (aiosmtpd, AUTH PLAIN/LOGIN
with the user and password given) that keeps, for every message it accepts, only its arrival time, its
`Message-ID` and its recipients, and answers `GET /stats?since=<epoch s>` on a second port with the counts of the
messages that arrived since then (total, distinct Message-IDs, recipients, the most any recipient got, first and
last arrival, per second for the first hour; `&full=0`: only the count and the last arrival, cheap enough to poll)
and its own CPU seconds, so the benchmark can tell that the sink kept up.

    python -m loadtests.notify_sink --smtp-port 2525 --http-port 2526 --user live --password s3cret

Its own process, pinned to the generator's core by the benchmark: the server's SMTP client talks to it over
loopback. Bounded: at most --max-messages (default 1,000,000) are remembered; later ones are counted only."""
from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import re
import resource
import time
from collections import Counter

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)
HEADER_BYTES = 16384  # the Message-ID is looked for in the first bytes of a message (its headers)
PER_SECOND_MAX = 3600  # arrivals per second are counted for this many seconds after `since`
FREEZE_EVERY = 1000  # messages kept between two gc.freeze() calls


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Sink:
    def __init__(self, user: str | None, password: str | None, limit: int):
        self.user, self.password, self.limit = user, password, limit
        self.seen: list[tuple[float, bytes | None, tuple[str, ...]]] = []  # (arrival, Message-ID, recipients)
        self.dropped = 0  # arrived after `limit` messages: counted only
        self.refused_auth = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        now = time.time()
        found = _MESSAGE_ID.search(envelope.original_content[:HEADER_BYTES] if envelope.original_content else b"")
        if len(self.seen) < self.limit:
            self.seen.append((now, found.group(1) if found else None, tuple(envelope.rcpt_tos)))
            if len(self.seen) % FREEZE_EVERY == 0:
                gc.freeze()  # what is kept is kept for good: the collector stops walking it (no growing pauses)
        else:
            self.dropped += 1
        return "250 OK"

    def _since(self, since: float) -> list:
        """The arrivals since `since` (arrival times only grow: a bisection, not a scan of everything kept)."""
        return self.seen[bisect.bisect_left(self.seen, since, key=lambda r: r[0]):]

    def count(self, since: float) -> dict:
        """Cheap, for polling: how many arrived since `since`, and the last arrival."""
        rows = self._since(since)
        return {"messages": len(rows), "last": rows[-1][0] if rows else None}

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == (self.user or "").encode() \
            and auth_data.password == (self.password or "").encode()
        self.refused_auth += not ok
        return AuthResult(success=ok)

    def stats(self, since: float) -> dict:
        rows = self._since(since)
        per_rcpt = Counter(a.lower() for r in rows for a in r[2])
        ids = {r[1] for r in rows if r[1] is not None}
        per_second = Counter(s for s in (int(r[0] - since) for r in rows) if s < PER_SECOND_MAX)
        first, last = (rows[0][0], rows[-1][0]) if rows else (None, None)
        return {"messages": len(rows), "distinct_message_ids": len(ids),
                "without_message_id": sum(1 for r in rows if r[1] is None), "recipients": len(per_rcpt),
                "max_per_recipient": max(per_rcpt.values(), default=0), "first": first, "last": last,
                "per_second": [per_second.get(s, 0) for s in range(max(per_second, default=-1) + 1)],
                "dropped": self.dropped, "refused_auth": self.refused_auth, "cpu_s": round(cpu_seconds(), 3)}


async def serve(args) -> None:
    sink = Sink(args.user, args.password, args.max_messages)
    loop = asyncio.get_running_loop()
    auth = {"authenticator": sink.authenticate, "auth_required": True} if args.user else {}
    smtp = await loop.create_server(
        lambda: SMTP(sink, hostname="bench-sink", auth_require_tls=False, data_size_limit=1 << 20, **auth),
        args.host, args.smtp_port)

    async def stats(request: web.Request) -> web.Response:
        try:
            since = float(request.query.get("since", "0"))
        except ValueError:
            return web.json_response({"error": "since: epoch seconds"}, status=400)
        return web.json_response(sink.stats(since) if request.query.get("full", "1") != "0" else sink.count(since))

    app = web.Application()
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.http_port).start()
    try:
        await asyncio.Event().wait()
    finally:
        smtp.close()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m loadtests.notify_sink", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--smtp-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--user", help="AUTH user (none: no AUTH)")
    p.add_argument("--password")
    p.add_argument("--max-messages", type=int, default=1_000_000)
    args = p.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
