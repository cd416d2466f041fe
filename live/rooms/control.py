"""The control channel between workers, apart from the rooms' pub/sub (live/rooms/broker.py): an event pushed to
one user's sockets wherever they are connected (`order:update`), events pushed to many users in one message
(`notification:new` to a seller's followers: `push_users`), and "this stream's row changed, read it again".

`MemoryControl` is one worker's (nothing to tell anybody); `RedisControl` sends over one Redis channel
(`live:control`) and skips what it sent itself. Each has one handler, registered once by the container
(RoomService). Best effort: a worker cut off from Redis misses messages, and the order page or the next load of
the stream shows the state anyway.
"""
from __future__ import annotations

import asyncio
from typing import Protocol

from live.redis.link import FAILURES, RedisLink

CHANNEL = b"live:control"
MAX_USERS_PER_MESSAGE = 500  # pushes in one `users` message (a bigger list goes as several)


class ControlHandler(Protocol):
    def on_user_push(self, user_id: str, packet: bytes) -> None:
        """Another worker pushed an encoded event to a user: deliver it to their sockets here."""
        ...

    def on_users_push(self, pushes: list[tuple[str, bytes]]) -> None:
        """Another worker pushed encoded events to many users, one (user_id, packet) each: deliver them here."""
        ...

    def on_reload(self, stream_id: str) -> None:
        """Another worker changed a stream's row: read it again if it is loaded here."""
        ...


class Control(Protocol):
    def register(self, handler: ControlHandler) -> None: ...

    def push_user(self, user_id: str, packet: bytes) -> None:
        """Send an encoded event to one user's sockets on the other workers (none with one worker)."""
        ...

    def push_users(self, pushes: list[tuple[str, bytes]]) -> None:
        """Send encoded events to many users' sockets on the other workers in one message, one (user_id, packet)
        each (the caller bounds the list: MAX_USERS_PER_MESSAGE)."""
        ...

    def announce(self, stream_id: str) -> None:
        """Tell the other workers that a stream's row changed (they read it again)."""
        ...


class MemoryControl:
    """One worker: every change happens here, and the gateway delivers its own pushes."""

    def register(self, handler: ControlHandler) -> None:
        return None

    def push_user(self, user_id: str, packet: bytes) -> None:
        return None

    def push_users(self, pushes: list[tuple[str, bytes]]) -> None:
        return None

    def announce(self, stream_id: str) -> None:
        return None


class RedisControl:
    def __init__(self, link: RedisLink):
        self.link = link
        self._handler: ControlHandler | None = None
        self._me = link.name.encode()
        link.listen(CHANNEL, self._on_message)

    def register(self, handler: ControlHandler) -> None:
        self._handler = handler

    def push_user(self, user_id: str, packet: bytes) -> None:
        self._send(b"user\n" + self._me + b"\n" + user_id.encode() + b"\n" + packet)

    def push_users(self, pushes: list[tuple[str, bytes]]) -> None:
        # each push: user id, packet length, then the packet (length-prefixed: a packet is opaque bytes)
        for start in range(0, len(pushes), MAX_USERS_PER_MESSAGE):
            body = b"".join(b"%s\n%d\n%s" % (user_id.encode(), len(packet), packet)
                            for user_id, packet in pushes[start:start + MAX_USERS_PER_MESSAGE])
            self._send(b"users\n" + self._me + b"\n" + body)

    def announce(self, stream_id: str) -> None:
        self._send(b"reload\n" + self._me + b"\n" + stream_id.encode())

    def _send(self, message: bytes) -> None:
        if self.link.up:
            asyncio.get_running_loop().create_task(self._publish(message))

    async def _publish(self, message: bytes) -> None:
        try:
            await self.link.client.publish(CHANNEL, message)
        except FAILURES as exc:
            self.link.failed(exc)

    def _on_message(self, data: bytes) -> None:
        op, sender, arg = data.split(b"\n", 2)
        if sender == self._me or self._handler is None:
            return
        if op == b"reload":
            self._handler.on_reload(arg.decode())
        elif op == b"user":
            user_id, packet = arg.split(b"\n", 1)
            self._handler.on_user_push(user_id.decode(), packet)
        elif op == b"users":
            self._handler.on_users_push(_pushes(arg))


def _pushes(body: bytes) -> list[tuple[str, bytes]]:
    """The (user_id, packet) pairs of a `users` message."""
    out, i = [], 0
    while i < len(body):
        j = body.index(b"\n", i)
        k = body.index(b"\n", j + 1)
        end = k + 1 + int(body[j + 1:k])
        out.append((body[i:j].decode(), body[k + 1:end]))
        i = end
    return out
