"""A raw websocket client's steps for the front door tests: the server's address, the opening handshake, the next
frame (within 10 s), the close code."""
from __future__ import annotations

import asyncio
import base64
import os

from tests.rooms.harness import read_frame


def hostport(live):
    return live.client.server.host, live.client.server.port


async def handshake(host: str, port: int, extra: str = "", target: str = "/socket.io/?EIO=4&transport=websocket"):
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16))
    writer.write((f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
                  f"{extra}\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return reader, writer, key, head


async def next_frame(reader) -> tuple[int, bytes]:
    return await asyncio.wait_for(read_frame(reader), 10)


async def closed_with(reader) -> int:
    """Read frames until the server's close frame; its status code."""
    while True:
        opcode, payload = await next_frame(reader)
        if opcode == 0x8:
            return int.from_bytes(payload[:2], "big")
