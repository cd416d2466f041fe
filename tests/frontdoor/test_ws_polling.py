"""Engine.IO long-polling POSTs (issue 11 item 8): over the 16 KB cap, answered at once with 413 and a JSON
error, the connection closed; a body engineio mishandled (not UTF-8, not a payload, a packet a client may not
send: it logged an error and answered 200, or never answered) gets 400; good POSTs are served as before."""
from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from tests.frontdoor.wire import hostport


async def _polling_sid(live) -> str:
    async with live.client.get("/socket.io/", params={"EIO": "4", "transport": "polling"}) as resp:
        text = await resp.text()
    assert resp.status == 200 and text.startswith("0{")
    return orjson.loads(text[1:])["sid"]


async def _post(live, sid: str, body: bytes, extra: bytes = b"") -> tuple[bytes, bytes]:
    """A raw POST to the polling endpoint: (response head, response body); the body is read to the server's
    hang-up when it announces `Connection: close`."""
    host, port = hostport(live)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: text/plain;charset=UTF-8\r\n%sContent-Length: %d\r\n\r\n%s"
                 % (sid.encode(), extra, len(body), body))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    data = await asyncio.wait_for(reader.readexactly(length), 5)
    if b"connection: close" in head.lower():
        assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    return head, data


async def test_an_oversize_polling_post_gets_413_and_is_closed(live):
    sid = await _polling_sid(live)
    head, body = await _post(live, sid, b"4" + b"x" * (20 * 1024))
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()
    assert b"application/json" in head.lower()
    error = orjson.loads(body)["error"]
    assert error["code"] == "payload_too_large" and "16384" in error["message"]
    assert sid not in live.gateway.sio.eio.sockets  # the session broke its announced maxPayload: dropped


async def test_a_polling_post_within_the_cap_is_served(live):
    sid = await _polling_sid(live)
    head, body = await _post(live, sid, b"40")
    assert head.startswith(b"HTTP/1.1 200") and body == b"OK"
    assert sid in live.gateway.sio.eio.sockets


async def test_a_chunked_polling_post_gets_411(live):
    sid = await _polling_sid(live)
    host, port = hostport(live)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n2\r\n40\r\n0\r\n\r\n" % sid.encode())
    answer = await asyncio.wait_for(reader.read(), 5)  # to the server's hang-up
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 411") and orjson.loads(body)["error"]["code"] == "length_required"


@pytest.mark.parametrize("body", [
    b"\xff\xfe",  # not UTF-8 (was: an error logged, 200)
    b"9",  # an unknown packet type (was: an error logged, 200)
    b"\x1e\x1e",  # empty packets (was: an error logged, 200)
    b"2probe",  # a PING: the server pings, not the client (was: never answered)
    b"0{}",  # an OPEN (was: never answered)
    b"40\x1e6",  # a NOOP after a CONNECT: only the server sends NOOP (was: never answered)
    b"40\x1e",  # a trailing empty packet (was: an error logged, 200)
])
async def test_a_polling_post_that_is_not_a_client_payload_gets_400(live, body, caplog):
    sid = await _polling_sid(live)
    with caplog.at_level(logging.ERROR):
        head, data = await _post(live, sid, body)
    assert head.startswith(b"HTTP/1.1 400") and orjson.loads(data)["error"]["code"] == "invalid"
    assert sid not in live.gateway.sio.eio.sockets
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_polling_client_still_talks_through_several_packets(live):
    sid = await _polling_sid(live)
    head, body = await _post(live, sid, b"40\x1e3")  # CONNECT and a PONG in one payload
    assert head.startswith(b"HTTP/1.1 200") and body == b"OK"
    async with live.client.get("/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid}) as resp:
        assert resp.status == 200 and (await resp.text()).startswith("40{")  # the namespace answered


async def test_disconnecting_a_polling_client_that_stopped_polling_returns(live):
    """The server's disconnect of a long-polling session waits for the client's next poll to carry the CLOSE
    packet, but not forever (it hung every task that disconnected a client gone quiet)."""
    eio = live.gateway.sio.eio
    sid = await _polling_sid(live)
    head, _body = await _post(live, sid, b"40")
    assert head.startswith(b"HTTP/1.1 200")
    eio.ping_timeout = 1
    await asyncio.wait_for(eio.disconnect(sid), 5)
    assert sid not in eio.sockets
