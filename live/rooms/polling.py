"""Engine.IO long-polling POSTs, checked before python-engineio sees them.

engineio answered some bad POSTs never: over max_http_buffer_size, or holding a packet a client may not send
(a PING, an unknown type), it dropped the session with a close that waits for the client's next poll, and the
POST stayed unanswered while nothing polled. A body that is not UTF-8 or not an Engine.IO payload was logged as
a handler error and answered 200. Here every such POST gets its answer at once, with the usual JSON error, and
the session is dropped without waiting (the client broke the protocol or the maxPayload it was given):

* over `max_http_buffer_size` (16 KB) by its Content-Length: 413 `payload_too_large`, before its body is read,
  and the connection closed;
* no Content-Length (chunked; engineio reads only Content-Length bytes): 411 `length_required`;
* not UTF-8, not an Engine.IO payload, or a packet other than MESSAGE, PONG, CLOSE and UPGRADE: 400 `invalid`.
"""
from __future__ import annotations

import binascii

from aiohttp import web
from engineio import packet as eio_packet
from engineio import payload as eio_payload

from live.errors import DomainError

# what engineio's socket accepts from a client (anything else made it drop the session and hang the POST)
CLIENT_PACKETS = frozenset((eio_packet.MESSAGE, eio_packet.PONG, eio_packet.CLOSE, eio_packet.UPGRADE))


def packets(body: bytes) -> list[eio_packet.Packet] | None:
    """The packets of a POST body, or None when it is not a payload a client may send."""
    try:
        pkts = eio_payload.Payload(encoded_payload=body.decode()).packets
    except (UnicodeDecodeError, ValueError, IndexError, binascii.Error):
        return None
    if all(p.packet_type in CLIENT_PACKETS for p in pkts):
        return pkts
    return None


async def refuse_post(server, request: web.BaseRequest) -> web.Response | None:
    """The answer to a long-polling POST that must not reach engineio, or None to let engineio serve it."""
    length = request.content_length
    if length is None:
        if request.body_exists:
            return refused("length_required", "a long-polling POST needs a Content-Length")
        return None
    sid = request.query.get("sid", "")
    if length > server.max_http_buffer_size:
        await _drop(server, sid)
        return refused("payload_too_large",
                       f"a long-polling POST may carry at most {server.max_http_buffer_size} bytes")
    sock = server.sockets.get(sid)
    if sock is None or not sock.connected or sock.upgraded or not length:
        return None  # engineio's own answers (400 for an unknown session or after an upgrade)
    if packets(await request.read()) is None:  # aiohttp keeps the body: engineio's read gets it again
        await _drop(server, sid)
        return refused("invalid", "not an Engine.IO payload a client may send")
    return None


async def _drop(server, sid: str) -> None:
    sock = server.sockets.pop(sid, None)
    if sock is not None:  # the CLOSE packet goes to a pending poll if there is one; nothing waits for it
        await sock.close(wait=False, reason=server.reason.TRANSPORT_ERROR)


def refused(code: str, message: str) -> web.Response:
    """An HTTP error with the usual JSON body and the code's status, after which the connection is closed (a
    body left unread is not read)."""
    error = DomainError(code, message)
    resp = web.json_response({"error": error.body()}, status=error.status)
    resp.force_close()
    return resp
