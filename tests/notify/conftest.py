"""The notification tests' mail server: a real SMTP server (aiosmtpd) on a free loopback port that requires AUTH
(PLAIN or LOGIN, user `live`, password `s3cret`), keeps every message it accepted, and can be stopped and started
again on the same port (SMTP down, then up). A client with a wrong password gets no answer after its AUTH (an
aiosmtpd quirk): give such a client a short timeout."""
from __future__ import annotations

import asyncio
import socket
import time
from email import message_from_bytes
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "live", "s3cret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MailServer:
    """`url` is the SMTP_URL to give the server; `messages` the parsed messages received, in order."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"smtp://{USER}:{PASSWORD}@127.0.0.1:{self.port}"
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TOs) of each message
        self.refused_auth = 0
        self._controller: Controller | None = None

    # aiosmtpd handler hook
    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() \
            and auth_data.password == PASSWORD.encode()
        if not ok:
            self.refused_auth += 1
        return AuthResult(success=ok)

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, authenticator=self._authenticate,
                                      auth_require_tls=False, auth_required=True)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def message_ids(self, address: str | None = None) -> list[str]:
        return [str(m["Message-ID"]) for m in (self.to(address) if address else self.messages)]

    async def wait(self, count: int, timeout: float = 15.0, address: str | None = None) -> list[Message]:
        """Wait until at least `count` messages arrived (to `address` when given); fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.to(address) if address else self.messages
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(got)} of {count} messages arrived in {timeout} s")
            await asyncio.sleep(0.02)


@pytest.fixture
def mail_server():
    server = MailServer()
    server.start()
    yield server
    server.stop()
