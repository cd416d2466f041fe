"""python-socketio, adapted for rooms of many thousands: the server class the gateway uses.

* `LiveSocketServer`: python-socketio's server over the lean Engine.IO server (live/rooms/transport.py), with
  strict packet decoding (a packet that is not Socket.IO closes the connection, as the reference server does).
* `LeanPacket`: outgoing packets are never binary here, so the recursive scan python-socketio makes of every
  payload for bytes (a join ack carries a whole room snapshot) is skipped.
* `LiveSocketServer.fast_event`: the common packet, a text event for the default namespace arriving on the
  front door's websocket, runs its handler and writes its ack directly (see the method).
* `LeanManager`: python-socketio's client manager keeps, for every socket, a room named after its sid (a bidict
  each) and finds a socket's rooms on disconnect by scanning all rooms: 10,000 viewers leaving cost 10,000²
  lookups. Rooms are the hub's business in this server; the manager keeps the sid rooms implicit and remembers
  which other rooms a socket entered, so connect and disconnect cost O(1).

These overrides, and live/rooms/transport.py's, reach into both libraries' internals: importing this module
refuses any python-socketio or python-engineio release but the ones they were written for (`WRITTEN_FOR`, the
pins of pyproject.toml).
"""
from __future__ import annotations

import asyncio
import json
from importlib.metadata import version
from typing import Callable, Coroutine

import orjson
import socketio
from socketio import packet as sio_packet

from live.logging import get_logger
from live.rooms.packets import ACK_HEAD
from live.rooms.transport import LeanEngineServer, LeanSocket

log = get_logger("live.gateway")
MAX_ATTACHMENTS = 4  # binary attachments in one packet (each at most max_http_buffer_size)
WRITTEN_FOR = {"python-socketio": "5.18.1", "python-engineio": "4.15.1"}


def check_versions(installed: Callable[[str], str] = version) -> None:
    """Raise ImportError unless the installed python-socketio and python-engineio are `WRITTEN_FOR`'s."""
    found = {name: installed(name) for name in WRITTEN_FOR}
    if found != WRITTEN_FOR:
        def both(versions: dict[str, str]) -> str:
            return " and ".join(f"{name} {v}" for name, v in versions.items())
        raise ImportError(f"live/rooms/sio.py and transport.py were written for {both(WRITTEN_FOR)}, but "
                          f"{both(found)} are installed: install the pins of pyproject.toml (pip install -e .), "
                          "or check the overrides against the new releases before moving the pins")


check_versions()


class LeanPacket(sio_packet.Packet):
    def data_is_binary(self, data) -> bool:
        return False


class LeanManager(socketio.AsyncManager):
    def __init__(self):
        super().__init__()
        self._rooms_of: dict[tuple[str, str], set] = {}  # (namespace, sid) -> rooms entered besides its own

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        if room == sid:
            return  # implicit: a socket is always in its own room
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if room is not None:
            self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid, namespace, room):
        if room == sid:
            return
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)

    def basic_disconnect(self, sid, namespace, **kwargs):
        if namespace not in self.rooms:
            return
        for room in self._rooms_of.pop((namespace, sid), ()):
            super().basic_leave_room(sid, namespace, room)
        super().basic_leave_room(sid, namespace, None)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            sids = pending.get(namespace)
            if sids and sid in sids:
                sids.remove(sid)
                if not sids:
                    del pending[namespace]

    def get_participants(self, namespace, room):
        ns = self.rooms.get(namespace, {})
        everyone = ns.get(None, {})
        rooms = room if hasattr(room, "__len__") and not isinstance(room, str) else [room]
        found = {}
        for r in rooms:
            if r in ns:
                found.update(ns[r]._fwdm)
            elif r is not None and r in everyone:  # a sid room
                found[r] = everyone[r]
        yield from found.items()

    def get_rooms(self, sid, namespace):
        if sid not in self.rooms.get(namespace, {}).get(None, {}):
            return []
        return [sid, *self._rooms_of.get((namespace, sid), ())]


class OrjsonShim:
    """python-socketio's `json` hook: orjson for speed."""

    @staticmethod
    def dumps(obj, **_kw) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(s, **_kw):
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            # JSON that orjson refuses and the JSON standard allows, such as a lone surrogate escape (`"\\ud83d"`,
            # half an emoji, which JavaScript's JSON.stringify writes) or an integer over 64 bits: decoded here
            # so the payload's validation answers `invalid` instead of the connection being closed
            return json.loads(s, parse_constant=_not_json)


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


class LiveSocketServer(socketio.AsyncServer):
    """python-socketio's server with the lean Engine.IO server under it, and strict packet decoding: a packet
    that is not valid Socket.IO closes the client's connection (as the reference server does) instead of
    raising out of python-socketio's decoder. Binary packets are accepted with a few attachments, so bytes
    sent where text is expected get an `invalid` ack."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, fast_event=self.fast_event, **kwargs)  # handed to LeanEngineServer

    def _engineio_server_class(self):
        return LeanEngineServer

    def fast_event(self, eio_sid: str, data: str) -> Coroutine | None:
        """A text EVENT for the default namespace (`2["name",...]`, `2<id>["name",...]`, the Socket.IO part of
        an Engine.IO message) as a coroutine that runs its handler and writes the ack straight to the socket;
        None for anything else, which python-socketio's dispatch handles. python-socketio spends four coroutines
        (_handle_eio_message, _handle_event, _handle_event_internal, _trigger_event), a decoder, an encoder and
        three send layers on each event, which in a flash sale is most of what 5,000 buyers cost. The
        behaviour is the same: an event from a socket not connected to the namespace is dropped, a handler's
        tuple is expanded in the ack, a cancelled handler acks with nothing. Events without a handler of their
        own (the catch-all) and reserved names take the general path."""
        if eio_sid in self._binary_packet:
            return None
        end = len(data)
        i = 1
        while i < end and "0" <= data[i] <= "9":
            i += 1
        if i == end or data[i] != "[" or i > 17:
            return None
        try:
            payload = orjson.loads(data[i:])
        except orjson.JSONDecodeError:
            return None
        if not payload or not isinstance(payload[0], str) or payload[0] in self.reserved_events:
            return None
        handler = self.handlers.get("/", {}).get(payload[0])
        if handler is None:
            return None
        return self._run_event(eio_sid, int(data[1:i]) if i > 1 else None, handler, payload)

    async def _run_event(self, eio_sid: str, ack_id: int | None, handler, payload: list) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is None or not self.manager.is_connected(sid, "/"):
            return
        try:
            r = await handler(sid, *payload[1:])
        except asyncio.CancelledError:
            r = None
        except Exception:
            log.exception("event_handler_error", socket_event=payload[0])
            return
        if ack_id is None:
            return
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None:
            sock.push(ACK_HEAD % ack_id + orjson.dumps([] if r is None else list(r) if isinstance(r, tuple) else [r]))

    async def _handle_eio_message(self, eio_sid, data):
        # python-socketio 5.18's dispatch, with each text packet decoded once and vetted first
        if eio_sid in self._binary_packet:
            if not isinstance(data, bytes):
                return await self._refuse(eio_sid, "text where a binary attachment was expected")
            return await super()._handle_eio_message(eio_sid, data)  # an attachment
        if not isinstance(data, str):
            return await self._refuse(eio_sid, "unexpected binary data")
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception:  # the decoder raises ValueError, IndexError, TypeError... on garbage
            return await self._refuse(eio_sid, "undecodable packet")
        kind = pkt.packet_type
        if kind in (sio_packet.EVENT, sio_packet.BINARY_EVENT) and not (
                isinstance(pkt.data, list) and pkt.data and isinstance(pkt.data[0], str)):
            return await self._refuse(eio_sid, "an event must be a list starting with its name")
        if kind == sio_packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.ACK:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            if not 1 <= pkt.attachment_count <= MAX_ATTACHMENTS:
                return await self._refuse(eio_sid, "bad attachment count")
            if not self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/"):
                return await self._refuse(eio_sid, "binary packet before connecting")
            self._binary_packet[eio_sid] = pkt  # completed by its attachments
        else:
            await self._refuse(eio_sid, "unexpected packet type")

    async def _refuse(self, eio_sid, problem: str) -> None:
        """Close the connection of a client that sent something that is not Socket.IO."""
        log.info("bad_packet", problem=problem)
        self._binary_packet.pop(eio_sid, None)
        sock = self.eio.sockets.get(eio_sid)
        if isinstance(sock, LeanSocket):
            await sock.kill()
        elif sock is not None:
            await sock.close(wait=False, abort=True)


