"""The room test harness (tests/rooms/, and the front door, workers, commerce and js tests that watch a room).

`live` (the fixture, in tests/conftest.py) is the app seeded with the demo data (stream 'demo', seller
'demo-seller', live, a spotlighted product) served on a real port; its helpers make users, real Socket.IO viewers
over real websockets and REST calls.
`RawWs` is a hand-written Engine.IO websocket client over a raw TCP socket, for clients that misbehave."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import uuid

from live.appkeys import GATEWAY, SERVICES
from live.rooms import packets
from live.rooms.wsframes import BINARY, CLOSE, TEXT, masked_frame
from tests.helpers import Viewer, make_settings

SELLER = "demo-seller"
API = "/api/v1"
CODES = {"unauthorized", "forbidden", "not_found", "invalid", "rate_limited", "muted", "banned", "stream_not_live",
         "out_of_stock", "conflict", "limit_exceeded", "hold_expired"}  # docs/protocol.md's, but `internal`
BAD_VALUES = (None, True, -1, 0, 2 ** 64, 1.5, [], {}, "", " ", "a\x00b", "\x07", "\ud83d", "x\udc00", "😀" * 3,
              "y" * 3000, "00000000-0000-4000-8000-000000000000")


class RoomViewer(Viewer):
    """A Viewer with a name, room helpers, and that notices its own disconnection."""

    def __init__(self, base_url: str, token: str | None = None, name: str | None = None, user_id: str | None = None):
        super().__init__(base_url, token)
        self.name = name
        self.user_id = user_id
        self.joined: dict | None = None
        self.disconnected = asyncio.Event()
        self.disconnect_reason: str | None = None
        self.sio.on("disconnect", self._on_disconnect)

    async def _on_disconnect(self, *args):
        self.disconnect_reason = args[0] if args else None
        self.disconnected.set()

    async def join(self, stream: str = "demo", **extra) -> dict:
        self.joined = await self.call("join", {"stream_id": stream, **extra})
        return self.joined

    async def say(self, text: str, stream: str = "demo") -> dict:
        return await self.call("chat:send", {"stream_id": stream, "text": text})

    async def sync(self) -> None:
        """A round trip: whatever the server had written to this socket before the ack has been received
        (room broadcasts are written on the hub's tick, so use `Live.barrier` for those)."""
        ack = await self.call("sync:probe", {})
        assert ack["ok"] is False and ack["error"]["code"] == "invalid"


def err(ack: dict) -> str | None:
    """The error code of an ack (None when ok), after checking the ack's shape."""
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    if ack["ok"]:
        return None
    assert set(ack) == {"ok", "error"}, ack
    fields = {"code", "message"}
    if ack["error"].get("code") == "rate_limited" and "retry_after" in ack["error"]:  # the per-socket limit
        assert isinstance(ack["error"]["retry_after"], (int, float)) and ack["error"]["retry_after"] > 0, ack
        fields.add("retry_after")
    assert set(ack["error"]) == fields, ack
    assert isinstance(ack["error"]["message"], str) and ack["error"]["message"], ack
    return ack["error"]["code"]


async def make_user(conn, name: str, role: str = "customer"):
    """A user found or created by name (and a seller row for sellers), on a connection of the app's database."""
    from db import users as users_db

    user = await users_db.find_or_create_by_name(conn, name, role)
    if role == "seller":
        await users_db.ensure_seller(conn, user["id"], name, name.lower())
    return user


class ViewerSet:
    """Real Socket.IO viewers, all closed by `close_viewers`."""

    def __init__(self):
        self.viewers: list[RoomViewer] = []

    async def open_viewer(self, url: str, token: str | None, name: str | None, user_id: str | None,
                          join: str | None, join_extra: dict) -> RoomViewer:
        """A viewer connected to `url`, joined to `join` unless it is None."""
        v = RoomViewer(url, token, name, user_id)
        self.viewers.append(v)
        await v.connect()
        if join is not None:
            ack = await v.join(join, **join_extra)
            assert ack["ok"], ack
        return v

    async def close_viewers(self) -> None:
        for v in self.viewers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(v.close(), 5)
        self.viewers.clear()


class Live(ViewerSet):
    """One running app on a real port and helpers around it."""

    def __init__(self, client):
        super().__init__()
        self.client = client

    @property
    def services(self):
        return self.client.app[SERVICES]

    @property
    def gateway(self):
        return self.client.app[GATEWAY]

    @property
    def base(self) -> str:
        return str(self.client.make_url("/"))

    async def user(self, name: str, role: str = "customer") -> tuple[str, str]:
        """(user_id, bearer token) of a user, created if missing (and a seller row for sellers)."""
        from live.auth.principal import SYSTEM

        async with self.services.db.tx(SYSTEM) as conn:
            user = await make_user(conn, name, role)
        return user["id"], self.services.token_for(user)

    async def viewer(self, name: str | None = None, role: str = "customer", *, join: str | None = "demo",
                     **join_extra) -> RoomViewer:
        """A connected viewer (anonymous when name is None), joined to `join` unless it is None."""
        user_id = token = None
        if name is not None:
            user_id, token = await self.user(name, role)
        return await self.open_viewer(self.base, token, name, user_id, join, join_extra)

    async def seller(self, **kw) -> RoomViewer:
        return await self.viewer(SELLER, "seller", **kw)

    async def api(self, method: str, path: str, token: str | None = None, json=None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.request(method, API + path, json=json, headers=headers)
        body = await resp.json() if resp.content_type == "application/json" else {}
        return resp.status, body

    async def barrier(self, *viewers: RoomViewer, stream: str = "demo") -> None:
        """Publish a marker into the room and wait until every viewer got it: each has then received every
        room event published before (the hub delivers in seq order, one flush for all members)."""
        self._barriers = getattr(self, "_barriers", 0) + 1
        n = self._barriers
        state = await self.services.rooms.streams.get(stream)
        await self.services.rooms.publish(state, "test:barrier", {"n": n})
        for v in viewers:
            await v.wait_for("test:barrier", lambda d: d["n"] == n)

    async def demo_state(self):
        return await self.services.rooms.streams.get("demo")

    async def product(self, seller_name: str, title: str = "Other product", stock: int = 5) -> dict:
        """Create an active product with one variant for a seller; returns {id, variant_id}."""
        from live.auth.principal import SYSTEM

        async with self.services.db.tx(SYSTEM) as conn:
            seller_id = await conn.fetchval(
                "SELECT s.id FROM sellers s JOIN users u ON u.id = s.user_id WHERE u.name = $1", seller_name)
            pid = await conn.fetchval(
                """INSERT INTO products (seller_id, title, status) VALUES ($1, $2, 'active') RETURNING id::text""",
                seller_id, title)
            vid = await conn.fetchval(
                """INSERT INTO product_variants (product_id, sku, price_minor, currency, on_hand)
                   VALUES ($1::uuid, $2, 1000, 'USD', $3) RETURNING id::text""",
                pid, "SKU-" + uuid.uuid4().hex[:10], stock)
        return {"id": pid, "variant_id": vid}


async def start_live(tmp_path, dsn, aiohttp_client, **settings) -> Live:
    from live.app import create_app

    conf = make_settings(tmp_path, seed_demo="true", **settings)
    return Live(await aiohttp_client(create_app(conf, dsn, run_migrations=False)))


# ---------------------------------------------------------------- a raw websocket client


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, payload) of the next frame from the server (unmasked)."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, await reader.readexactly(n)


class RawWs:
    """A minimal Engine.IO v4 websocket client on a raw TCP socket: it does the HTTP upgrade, writes masked
    text frames and reads frames only when asked, so a test can make it stop reading altogether."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int, *, rcvbuf: int | None = None) -> "RawWs":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=16 * 1024)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        ws = cls(reader, writer)
        opened = await ws.recv()
        assert opened.startswith("0{") and "sid" in opened, opened
        return ws

    def send(self, text: str | bytes, *, binary: bool = False) -> None:
        self.send_frame(BINARY if binary else TEXT, text if isinstance(text, bytes) else text.encode())

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """One final, masked frame (client to server)."""
        self.writer.write(masked_frame(opcode, payload))

    async def recv(self, timeout: float = 10) -> str:
        """The next text frame's payload (server frames are unmasked and unfragmented)."""
        async def read() -> str:
            while True:
                opcode, data = await read_frame(self.reader)
                if opcode == TEXT:
                    return data.decode()
                if opcode == CLOSE:  # the server closes: answer as a client does, then report it
                    self.send_frame(CLOSE, data[:2])
                    raise ConnectionResetError("closed by the server")
        return await asyncio.wait_for(read(), timeout)

    async def recv_until(self, pred, timeout: float = 10) -> str:
        async def loop() -> str:
            while True:
                text = await self.recv(timeout)
                if text == packets.PING.decode():  # Engine.IO ping
                    self.send(packets.PONG)
                    continue
                if pred(text):
                    return text
        return await asyncio.wait_for(loop(), timeout)

    async def open_namespace(self) -> None:
        self.send(packets.encode_connect())
        await self.recv_until(lambda t: t.startswith(packets.CONNECT.decode()))

    async def call(self, ack_id: int, event: str, data) -> object:
        """Send a Socket.IO event with an ack id and return the ack's first argument."""
        self.send(packets.encode_emit(ack_id, event, data))
        prefix = (packets.ACK_HEAD % ack_id + b"[").decode()
        text = await self.recv_until(lambda t: t.startswith(prefix))
        return packets.decode_ack(text.encode())[1][0]

    async def drained_to_eof(self, timeout: float = 10) -> bool:
        """Read everything left until the server closes the connection; True when it did."""
        async def drain() -> None:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                while True:
                    await self.recv(timeout)
        try:
            await asyncio.wait_for(drain(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


async def paid_sale(live, buyer_token: str, viewer) -> dict:
    """The buyer adds the spotlighted product's first variant in the room, checks out and pays on the sandbox page;
    returns the order."""
    from tests.shipping.labels_harness import US_BUYER  # here: that harness imports this one
    variant = viewer.joined["spotlight"]["variants"][0]
    ack = await viewer.call("cart:add", {"variant_id": variant["id"], "qty": 2, "stream_id": "demo"})
    assert ack["ok"], ack
    resp = await live.client.post("/api/v1/checkout", json={"address": US_BUYER, "provider": "sandbox"},
                                  headers={"Authorization": f"Bearer {buyer_token}",
                                           "Idempotency-Key": uuid.uuid4().hex})
    out = await resp.json()
    assert resp.status == 201, out
    [order] = out["orders"]
    page = "/" + out["payment"]["authorization_url"].split("://", 1)[1].split("/", 1)[1]
    resp = await live.client.post(page, json={"outcome": "succeeded"})
    assert resp.status == 200, await resp.text()
    return order
