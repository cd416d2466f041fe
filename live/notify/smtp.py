"""One SMTP connection per worker process, reused for every message of every `email.send` job.

`SmtpClient.send` takes a lock (one message at a time on the connection), connects when there is no connection
(TLS from the first byte for smtps://; for smtp:// STARTTLS is required on port 587 and used on any other port
whenever the server offers it, before AUTH; AUTH when the URL has a user), and sends.
Any failure while connecting (no answer, a 4xx/5xx greeting, EHLO, STARTTLS or AUTH answer such as 535) is raised
as ConnectionError: the server or the settings are wrong, not the message, so the job is tried again and no mail
is given up.
A connection the server dropped while idle (SMTPServerDisconnected, a reset) is opened again once and the message
sent on the new one; a second failure goes to the caller (the job is retried). A refusal of the message itself
(SMTPResponseException; a refused recipient is raised as its own SMTPRecipientRefused, so its code tells 4xx
"later" from 5xx "never") leaves the connection in use after a RSET. The connection is closed after
SMTP_IDLE_SECONDS without a message, and by `close` (worker stop)."""
from __future__ import annotations

import asyncio
import time
from urllib.parse import unquote, urlparse

import aiosmtplib

from live.logging import get_logger

log = get_logger("live.notify.smtp")
TIMEOUT_SECONDS = 15.0  # connect, and each command's answer


class SmtpClient:
    def __init__(self, url: str, *, idle_seconds: float = 30.0, timeout: float = TIMEOUT_SECONDS):
        u = urlparse(url)
        tls = u.scheme == "smtps"
        self._args = {
            "hostname": u.hostname, "port": u.port or (465 if tls else 25), "use_tls": tls,
            # smtps: TLS from the first byte; 587: STARTTLS required; else STARTTLS when offered (None)
            "start_tls": False if tls else (True if u.port == 587 else None),
            "username": unquote(u.username) if u.username else None,
            "password": unquote(u.password or "") if u.username else None, "timeout": timeout}
        self._idle = idle_seconds
        self._lock = asyncio.Lock()
        self._client: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self._closer: asyncio.Task | None = None
        self.connections = 0  # opened since start (metrics, tests)

    async def send(self, sender: str, recipients: list[str], data: bytes) -> None:
        """Send one message (`data`: the whole message, CRLF lines) from envelope `sender` to `recipients`."""
        async with self._lock:
            for attempt in (1, 2):
                fresh = self._client is None
                client = await self._connect()
                try:
                    await client.sendmail(sender, recipients, data)
                    break
                except (ConnectionError, OSError, TimeoutError) as exc:  # aiosmtplib's disconnects are these too
                    await self._drop()
                    if fresh or attempt == 2:  # a new connection failing is the server's state: no retry here
                        raise
                    log.info("smtp_reconnect", error=repr(exc)[:200])
                except aiosmtplib.SMTPResponseException as exc:
                    if exc.code != 421:  # the message itself refused: the connection stays usable
                        await self._reset()
                        raise
                    await self._drop()  # 421: the server is closing the connection
                    if fresh or attempt == 2:
                        raise
                except aiosmtplib.SMTPRecipientsRefused as exc:  # the recipient refused: its own answer, 4xx or 5xx
                    await self._reset()
                    if len(exc.recipients) == 1:  # one recipient per message here
                        raise exc.recipients[0] from exc
                    raise
                except Exception:  # the message refused, or one aiosmtplib cannot encode: a clean state for the next
                    await self._reset()
                    raise
            self._last_used = time.monotonic()
            if self._closer is None or self._closer.done():
                self._closer = asyncio.create_task(self._close_when_idle(), name="smtp-idle")

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        await self._drop()
        client = aiosmtplib.SMTP(**self._args)
        try:
            await client.connect()  # with a username, connect() also logs in
        except aiosmtplib.SMTPException as exc:  # greeting, EHLO, STARTTLS, AUTH: not the message's fault
            client.close()
            raise ConnectionError(f"SMTP connect: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            client.close()
            raise
        self._client = client
        self.connections += 1
        return client

    async def _reset(self) -> None:
        try:
            if self._client is not None:
                await self._client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            await self._drop()

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _close_when_idle(self) -> None:
        while True:
            wait = self._last_used + self._idle - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            async with self._lock:
                if self._last_used + self._idle > time.monotonic():
                    continue
                await self._quit()
                return

    async def _quit(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await asyncio.wait_for(client.quit(), 5)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            client.close()

    async def close(self) -> None:
        closer, self._closer = self._closer, None
        if closer is not None and not closer.done():
            closer.cancel()
            await asyncio.gather(closer, return_exceptions=True)
        async with self._lock:
            await self._quit()
