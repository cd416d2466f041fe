"""The development mailbox (docs/notifications.md "Development mailbox"): with SMTP_URL unset and LIVE_ENV not
production, `live serve` (and `live worker`) starts `DevMailServer`, a real SMTP server (aiosmtpd, in a thread of
the process that also starts the embedded PostgreSQL and Redis) on a free loopback port, and the workers'
SMTP_URL points at it. Every message it accepts is kept by `Mailbox` under LIVE_DATA_DIR/mailbox, where every
worker reads it for the pages /dev/mailbox and /dev/mailbox/<id> (live/http/devmail.py).

On disk: `<id>.eml` (the message as received) and `<id>.json` (what the list shows), `id` = the first 32 hex
digits of the SHA-256 of the Message-ID (of the bytes when there is none). A resent copy (same Message-ID)
replaces the earlier one, so the mailbox shows one message per Message-ID. Files are written under a temporary
name and renamed, so a reader never sees half a message. Limits: MAX_MESSAGE_BYTES per message (a larger one is
refused by the SMTP server: 552), the newest MAILBOX_MAX_MESSAGES (500) kept (the oldest are deleted as new ones
arrive)."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape

from live.logging import get_logger
from live.uploads import write_atomic

log = get_logger("live.devmail")
# aiosmtpd logs every connection, command and EOF at INFO on "mail.log": only its warnings reach the server's log
logging.getLogger("mail.log").setLevel(logging.WARNING)
MAX_MESSAGE_BYTES = 1024 * 1024  # the SMTP server refuses a larger message (552)
TEXT_PREVIEW_CHARS = 2000  # of the plain-text part, kept in the list entry (the JSON route shows it)
MAX_HEADERS = 100  # shown on a message's page
ID = re.compile(r"^[0-9a-f]{32}$")
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates" / "dev"),
                         autoescape=select_autoescape(default=True, default_for_string=True))


def message_key(raw: bytes, message_id: str | None) -> str:
    seed = message_id.strip().encode() if message_id and message_id.strip() else raw
    return hashlib.sha256(seed).hexdigest()[:32]


def _part(msg: EmailMessage, subtype: str) -> str | None:
    try:
        part = msg.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else None
    except (LookupError, ValueError, AttributeError):  # an unknown charset, a broken part: shown as missing
        return None


def _header(msg: EmailMessage, name: str) -> str:
    try:
        return str(msg.get(name, "") or "")[:1000]
    except (ValueError, IndexError):  # a header the parser cannot decode
        return ""


class Mailbox:
    """The received messages in one directory, newest first."""

    def __init__(self, directory: Path, max_messages: int = 500):
        self.dir = Path(directory)
        self.max_messages = max_messages

    # ---- writing (the SMTP server's thread) ----

    def store(self, raw: bytes, mail_from: str | None = None, rcpt_tos: list[str] | None = None) -> str:
        msg = message_from_bytes(raw, policy=email_policy.default)
        key = message_key(raw, _header(msg, "Message-ID"))
        text = _part(msg, "plain")
        meta = {"id": key, "message_id": _header(msg, "Message-ID"), "from": _header(msg, "From"),
                "to": _header(msg, "To") or ", ".join(rcpt_tos or []), "subject": _header(msg, "Subject"),
                "envelope_from": mail_from, "envelope_to": list(rcpt_tos or [])[:50], "size": len(raw),
                "received_at": time.time(), "text": (text or "")[:TEXT_PREVIEW_CHARS]}
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.dir / f"{key}.eml", raw, fsync=False)  # a development mailbox: no fsync
        write_atomic(self.dir / f"{key}.json", orjson.dumps(meta), fsync=False)
        self.prune()
        return key

    def prune(self) -> int:
        """Delete all but the newest `max_messages`; returns how many were deleted."""
        entries = self._entries()
        for _, key in entries[self.max_messages:]:
            for suffix in (".json", ".eml"):
                (self.dir / f"{key}{suffix}").unlink(missing_ok=True)
        return max(0, len(entries) - self.max_messages)

    # ---- reading (any worker) ----

    def _entries(self) -> list[tuple[float, str]]:
        """(mtime, id) of every stored message, newest first."""
        out = []
        try:
            with os.scandir(self.dir) as it:
                for entry in it:
                    if entry.name.endswith(".json") and ID.match(entry.name[:-5]):
                        try:
                            out.append((entry.stat().st_mtime, entry.name[:-5]))
                        except FileNotFoundError:
                            continue
        except FileNotFoundError:
            return []
        out.sort(reverse=True)
        return out

    def list(self, limit: int = 500, to: str | None = None) -> list[dict]:
        """The newest `limit` messages (to `to`, a part of the To header, when given), newest first."""
        items = []
        needle = to.lower() if to else None
        for _, key in self._entries()[:self.max_messages]:
            meta = self._meta(key)
            if meta is None or (needle and needle not in meta["to"].lower()):
                continue
            items.append(meta)
            if len(items) >= limit:
                break
        return items

    def _meta(self, key: str) -> dict | None:
        try:
            return orjson.loads((self.dir / f"{key}.json").read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None

    def get(self, key: str) -> dict | None:
        """One message: its list entry, its headers, its HTML and plain-text parts (None when absent)."""
        if not ID.match(key):
            return None
        meta = self._meta(key)
        try:
            raw = (self.dir / f"{key}.eml").read_bytes()
        except FileNotFoundError:
            return None
        if meta is None:
            return None
        msg = message_from_bytes(raw, policy=email_policy.default)
        headers = []
        for name in list(msg.keys())[:MAX_HEADERS]:
            headers.append((name, _header(msg, name)))
        return {**meta, "headers": headers, "html": _part(msg, "html"), "text": _part(msg, "plain")}

    # ---- pages ----

    def render_list(self, items: list[dict]) -> str:
        return _TEMPLATES.get_template("mailbox.html").render(items=items, max_messages=self.max_messages,
                                                              when=_when)

    def render_message(self, message: dict) -> str:
        return _TEMPLATES.get_template("message.html").render(m=message, when=_when)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


class _Handler:
    def __init__(self, mailbox: Mailbox):
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook
        try:
            key = self.mailbox.store(envelope.content, envelope.mail_from, list(envelope.rcpt_tos))
        except OSError as exc:
            log.warning("devmail_store_failed", error=str(exc))
            return "451 Requested action aborted: could not store the message"
        log.info("devmail_received", id=key, to=list(envelope.rcpt_tos)[:5])
        return "250 OK"


class DevMailServer:
    """The development mailbox's SMTP server on a free loopback port, in a thread of its own (aiosmtpd's
    Controller); no AUTH, no TLS (loopback only); messages over MAX_MESSAGE_BYTES refused."""

    def __init__(self, mailbox: Mailbox, host: str = "127.0.0.1"):
        self.mailbox = mailbox
        self.host = host
        self.port: int | None = None
        self._controller = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> str:
        """Start listening; returns the SMTP_URL that reaches it."""
        from aiosmtpd.controller import Controller

        last: Exception | None = None
        for _ in range(5):  # a free port found here may be taken before the server binds it: try another
            port = _free_port(self.host)
            controller = Controller(_Handler(self.mailbox), hostname=self.host, port=port,
                                    data_size_limit=MAX_MESSAGE_BYTES, ident="live development mailbox")
            try:
                controller.start()
            except (OSError, RuntimeError, TimeoutError) as exc:
                last = exc
                continue
            self._controller, self.port = controller, port
            return self.url
        raise RuntimeError(f"the development mailbox could not listen: {last}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def entry(meta: dict[str, Any], base: str = "") -> dict:
    """A list entry as the JSON route answers it."""
    return {"id": meta["id"], "message_id": meta["message_id"], "from": meta["from"], "to": meta["to"],
            "subject": meta["subject"], "size": meta["size"],
            "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(meta["received_at"])),
            "text": meta["text"], "url": f"{base}/dev/mailbox/{meta['id']}"}
