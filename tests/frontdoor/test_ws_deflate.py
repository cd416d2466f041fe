"""permessage-deflate on the front door's websockets (RFC 7692): what is agreed at the handshake, room events
compressed once and read by an independent client (aiohttp's), compressed client messages read, and the limits
on what a compressed message may inflate to. Real sockets against a real server."""
from __future__ import annotations

import asyncio
import zlib

import aiohttp
import orjson
import pytest

from live.rooms import packets
from live.rooms import wsframes as wf
from live.rooms.wsframes import FAIL, TEXT, FrameReader, deflate_answer, deflated_frame, masked_frame
from tests.frontdoor.wire import closed_with, handshake, hostport
from tests.rooms.harness import start_live

OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"  # what browsers send
ANSWER = b"permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def compress(payload: bytes) -> bytes:
    """A message compressed on its own, as RFC 7692 puts it in a frame (the sync flush's tail dropped)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def client_frame(payload: bytes, *, opcode: int = TEXT, fin: bool = True, rsv1: bool = True) -> bytes:
    frame = bytearray(masked_frame(opcode, payload, fin=fin))
    if rsv1:
        frame[0] |= 0x40
    return bytes(frame)


@pytest.mark.parametrize("offer, answer", [
    (b"permessage-deflate; client_max_window_bits", ANSWER),  # Chrome, Firefox, Node's ws
    (b"permessage-deflate", ANSWER),
    (b"permessage-deflate; client_max_window_bits=10; client_no_context_takeover", ANSWER),
    (b"permessage-deflate; server_no_context_takeover", ANSWER),
    (b"permessage-deflate; server_max_window_bits=15", ANSWER + b"; server_max_window_bits=15"),
    (b'permessage-deflate; server_max_window_bits="15"', ANSWER + b"; server_max_window_bits=15"),
    # one shared compressed frame has one window: a smaller one is declined, the next offer taken
    (b"permessage-deflate; server_max_window_bits=10", None),
    (b"permessage-deflate; server_max_window_bits=10, permessage-deflate", ANSWER),
    (b"permessage-deflate; client_max_window_bits=7", None),
    (b"permessage-deflate; something_new", None),
    (b"permessage-deflate; server_no_context_takeover=1", None),
    (b"permessage-deflate; client_max_window_bits=10; client_max_window_bits=12", None),  # a repeat: declined
    (b"x-webkit-deflate-frame", None),
    (b"", None),
    (None, None),
])
def test_the_answer_to_an_offer(offer, answer):
    assert deflate_answer(offer) == answer


def test_a_long_payload_is_compressed_and_a_short_one_is_not():
    long = b'42["chat:new",' + orjson.dumps({"text": "hello " * 40}) + b"]"
    frame = deflated_frame(long)
    assert frame[0] == 0xC1 and len(frame) < len(long)  # FIN, RSV1, text
    assert zlib.decompressobj(-15).decompress(frame[2:] + b"\x00\x00\xff\xff") == long
    short = b"x" * (wf.DEFLATE_MIN - 1)
    assert deflated_frame(short) == wf.text_frame(short)
    noise = bytes(range(256))  # no repetition: deflate would only add its block headers
    assert deflated_frame(noise) == wf.text_frame(noise)


def test_the_reader_inflates_whole_and_fragmented_messages():
    text = ("a chat message, " * 20).encode()
    z = compress(text)
    reader = FrameReader(16384, inflate=True)
    assert reader.feed(client_frame(z)) == [(TEXT, text.decode())]
    # fragmented: RSV1 on the first frame only, inflated once the last has come
    assert reader.feed(client_frame(z[:5], fin=False) + client_frame(z[5:], opcode=0, rsv1=False)) == \
        [(TEXT, text.decode())]
    assert reader.feed(masked_frame(TEXT, b"plain")) == [(TEXT, "plain")]  # uncompressed messages still pass


@pytest.mark.parametrize("frames, code", [
    (client_frame(compress(b"x" * 200)), None),
    (client_frame(compress(b"x" * 20000)), 1009),  # 37 bytes on the wire, 20,000 once inflated: over max_size
    (client_frame(b"\xff\xfe\xfd not deflate"), 1007),
    (client_frame(compress("é".encode("latin-1") * 200)), 1007),  # inflates to text that is not UTF-8
    (client_frame(compress(b"x" * 200), fin=False) + client_frame(b"y", opcode=0), 1002),  # RSV1 on a continuation
    (bytes((0xA1,)) + masked_frame(TEXT, b"x")[1:], 1002),  # RSV2
    (client_frame(b"ping", opcode=0x9), 1002),  # RSV1 on a control frame
    (client_frame(compress(b"x" * 20000)[:10], fin=False)
     + client_frame(compress(b"x" * 20000)[10:], opcode=0, rsv1=False), 1009),  # fragmented, past max_size
    (client_frame(zlib.compress(b"x" * 200, wbits=-15) + b"garbage"), 1007),  # bytes after the final block
], ids=["ok", "bomb", "not-deflate", "not-utf8", "rsv1-on-continuation", "rsv2", "rsv1-on-ping", "fragmented-bomb",
        "after-final-block"])  # frames are masked at random
def test_the_reader_refuses_what_it_must(frames, code):
    events = FrameReader(16384, inflate=True).feed(frames)
    if code is None:
        assert events == [(TEXT, "x" * 200)]
    else:
        assert events[-1][0] == FAIL and events[-1][1][0] == code


def test_rsv1_without_the_extension_is_a_protocol_error():
    events = FrameReader(16384).feed(client_frame(compress(b"x" * 200)))
    assert events == [(FAIL, (1002, "reserved bits set without an extension"))]


async def _raw_frame(reader) -> tuple[int, bool, bytes]:
    """(opcode, RSV1, payload) of the server's next frame."""
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), 10)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, bool(b0 & 0x40), await reader.readexactly(n)


async def _until_packet(reader, prefix: bytes) -> tuple[bool, bytes]:
    """(was it compressed, the packet) of the next text message starting with `prefix`."""
    while True:
        opcode, rsv1, payload = await _raw_frame(reader)
        if rsv1:
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        if opcode == TEXT and payload.startswith(prefix):
            return rsv1, payload


async def test_a_raw_client_gets_room_events_compressed_and_may_send_compressed(live):
    host, port = hostport(live)
    reader, writer, _key, head = await handshake(host, port, OFFER)
    assert b"Sec-WebSocket-Extensions: " + ANSWER + b"\r\n" in head
    await _until_packet(reader, b"0{")  # OPEN
    writer.write(client_frame(compress(b"40")))  # a compressed CONNECT (RSV1) is as good as a plain one
    await _until_packet(reader, b"40{")
    writer.write(masked_frame(TEXT, b'421["join",{"stream_id":"demo"}]'))
    _, ack = await _until_packet(reader, b"431[")
    assert orjson.loads(ack[3:])[0]["ok"] is True
    talker = await live.viewer("talker")
    text = "is the red one still in stock? " * 5 + "and the blue?"
    assert (await talker.say(text))["ok"] is True
    compressed, packet = await _until_packet(reader, packets.event_prefix("chat:new"))
    assert compressed and orjson.loads(packet[2:])[1]["text"] == text
    writer.close()


async def test_aiohttp_as_an_independent_client_joins_chats_and_reads_compressed_events(live):
    """aiohttp's client speaks permessage-deflate on its own: it reads our frames and sends compressed ones."""
    uid, token = await live.user("zipper")
    url = live.client.make_url("/socket.io/").with_query(EIO="4", transport="websocket")
    async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=15) as ws:
        assert ws.compress == 15  # the extension was agreed
        assert (await ws.receive_str(timeout=10)).startswith("0{")
        await ws.send_str("40" + orjson.dumps({"token": token}).decode())
        assert (await ws.receive_str(timeout=10)).startswith("40{")
        await ws.send_str('421["join",{"stream_id":"demo"}]')
        text = "a long enough chat message to be compressed both ways, " * 3 + "end"

        async def until_prefix(prefix: str) -> str:
            while True:
                msg = await ws.receive_str(timeout=10)
                if msg == "2":
                    await ws.send_str("3")
                elif msg.startswith(prefix):
                    return msg
        assert orjson.loads((await until_prefix("431["))[3:])[0]["ok"] is True
        [conn] = [c for c in live.gateway.conns.values() if c.principal.user_id == uid]
        assert conn.sock.deflate is True  # what it reads is compressed (aiohttp inflates it out of sight)
        await ws.send_str('422["chat:send",' + orjson.dumps({"stream_id": "demo", "text": text}).decode() + "]")
        assert orjson.loads((await until_prefix("432["))[3:])[0]["ok"] is True
        event = orjson.loads((await until_prefix('42["chat:new"'))[2:])
        assert event[1]["text"] == text and event[1]["user"]["name"] == "zipper"


async def test_a_compressed_bomb_is_closed_1009(live):
    host, port = hostport(live)
    reader, writer, _key, head = await handshake(host, port, OFFER)
    assert ANSWER in head
    await _until_packet(reader, b"0{")
    bomb = compress(b"4" * (1 << 20))  # 1 MB of text in about a kilobyte
    assert len(bomb) < 2048
    writer.write(client_frame(bomb))
    assert await closed_with(reader) == 1009


async def test_ws_deflate_false_agrees_on_nothing(tmp_path, dsn, aiohttp_client):
    lv = await start_live(tmp_path, dsn, aiohttp_client, ws_deflate="false")
    try:
        host, port = hostport(lv)
        reader, writer, _key, head = await handshake(host, port, OFFER)
        assert head.startswith(b"HTTP/1.1 101") and b"sec-websocket-extensions" not in head.lower()
        await _until_packet(reader, b"0{")
        assert [s.deflate for s in lv.gateway.sio.eio.sockets.values()] == [False]
        writer.write(client_frame(compress(b"40")))  # RSV1 when nothing was agreed: a protocol error
        assert await closed_with(reader) == 1002
    finally:
        await lv.close_viewers()
