"""Socket.IO v5 packets over Engine.IO v4, as text on the wire: the one place their framing is written down.

An Engine.IO packet is a type digit and its data: `0` OPEN (`{"sid", "pingInterval", ...}`), `1` CLOSE, `2` PING,
`3` PONG, `4` MESSAGE. A Socket.IO packet rides in a MESSAGE, here always for the default namespace: `40`
CONNECT (from a client: its auth object), `41` DISCONNECT, `42` EVENT `[name, data]` (`42<id>[...]` when the
sender wants an ack), `43<id>[args]` the ACK of event <id>, `44` CONNECT_ERROR. python-socketio and
python-engineio decode and encode everything else; the server's fast paths (broadcasts, acks, pings), the load
tester's viewers and the tests' raw clients use these.
"""
from __future__ import annotations

import orjson

OPEN, CLOSE, PING, PONG, MESSAGE = b"0", b"1", b"2", b"3", b"4"
CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR = b"40", b"41", b"42", b"43", b"44"
ACK_HEAD = b"43%d"  # % ack id, then the JSON array of the ack's arguments (the socket event fast path)


def encode_event(event: str, data) -> bytes:
    """42[event, data]: an event from the server (no ack asked)."""
    return EVENT + orjson.dumps([event, data])


def encode_emit(ack_id: int, event: str, data) -> bytes:
    """42<id>[event, data]: an event that asks for an ack (a client's)."""
    return b"42%d" % ack_id + orjson.dumps([event, data])


def encode_ack(ack_id: int, args: list) -> bytes:
    """43<id>[args...]: the answer to event <id>."""
    return ACK_HEAD % ack_id + orjson.dumps(args)


def encode_connect(auth: dict | None = None) -> bytes:
    """40 with the client's auth object (a token), or bare."""
    return CONNECT + (orjson.dumps(auth) if auth else b"")


def event_prefix(event: str) -> bytes:
    """What every packet of that server event starts with (`42["chat:new"`): counted without decoding."""
    return EVENT + b'["' + event.encode() + b'"'


def decode_ack(packet: bytes) -> tuple[int, list]:
    """(ack id, arguments) of a 43<id>[...] packet."""
    i = 2
    while i < len(packet) and 48 <= packet[i] <= 57:
        i += 1
    return int(packet[2:i]), orjson.loads(packet[i:])
