'use strict';
// The websocket layer of the second load generator (RFC 6455, client side), written from the RFC and
// docs/protocol.md: the upgrade request and the check of its answer, a frame reader that takes the bytes as
// TCP hands them over (a frame split across reads, several frames in one read, a 16- or 64-bit length,
// fragmented messages, control frames between fragments), and masked client frames.

const crypto = require('crypto');
const zlib = require('zlib');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };
const MAX_MESSAGE = 64 * 1024 * 1024; // a guard against a corrupt length, far above any room event

class ProtocolError extends Error {}

// ---- the upgrade ----

function newKey() {
  return crypto.randomBytes(16).toString('base64');
}

function acceptFor(key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

// `deflate`: offer permessage-deflate (RFC 7692) as a browser does
function upgradeRequest(host, path, key, deflate = false) {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
    (deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' : '') + '\r\n', 'latin1');
}

// The server's answer to the upgrade, fed as it arrives: `feed(chunk)` returns null while the head is
// incomplete, else {ok, status, rest, deflate}: `rest` the bytes after the head (the first frames may share its
// read), `deflate` whether the server agreed on permessage-deflate.
class HandshakeReader {
  constructor(key) {
    this.accept = acceptFor(key);
    this.buf = null;
  }

  feed(chunk) {
    const data = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    const end = data.indexOf('\r\n\r\n');
    if (end < 0) {
      if (data.length > 16384) return { ok: false, status: 'head too long', rest: null };
      this.buf = data;
      return null;
    }
    this.buf = null;
    const lines = data.toString('latin1', 0, end).split('\r\n');
    const status = lines[0];
    let accept = null;
    let deflate = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '';
      if (name === 'sec-websocket-accept') accept = line.slice(colon + 1).trim();
      if (name === 'sec-websocket-extensions' && /^\s*permessage-deflate\b/i.test(line.slice(colon + 1))) deflate = true;
    }
    const switched = /^HTTP\/1\.1 101( |$)/.test(status);
    const ok = switched && accept === this.accept;
    const why = switched && !ok ? `${status} with a wrong Sec-WebSocket-Accept` : status;
    return { ok, status: why, rest: data.subarray(end + 4), deflate };
  }
}

// ---- frames from the server ----

// A compressed message's payload (permessage-deflate, each message compressed on its own). Every viewer of a
// slice gets the same bytes, so the last one inflated is kept: the viewers after the first reuse it.
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
let lastZ = null;
let lastOut = null;

function inflated(z) {
  if (lastZ === null || !lastZ.equals(z)) {
    try {
      lastOut = zlib.inflateRawSync(Buffer.concat([z, TAIL]),
        { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: MAX_MESSAGE });
    } catch (err) {
      throw new ProtocolError(`compressed message not inflated: ${err.message}`);
    }
    lastZ = Buffer.from(z);
  }
  return lastOut;
}

// `onMessage(opcode, payload)` gets each whole message (text, binary: fragments joined; inflated when compressed)
// and each control frame (close, ping, pong) in order. A frame that breaks the protocol throws ProtocolError from
// feed(). Set `inflate` once permessage-deflate is agreed: RSV1 on a message's first frame marks it compressed.
class FrameReader {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.inflate = false;
    this.fragZ = false; // the fragmented message in progress is compressed
    this.buf = null; // the bytes of an incomplete frame
    this.fragOp = -1; // the opcode of a fragmented message in progress
    this.frags = [];
    this.fragLen = 0;
  }

  feed(chunk) {
    let data = chunk;
    if (this.buf) {
      data = Buffer.concat([this.buf, chunk]);
      this.buf = null;
    }
    const n = data.length;
    let pos = 0;
    while (n - pos >= 2) {
      const b0 = data[pos];
      const b1 = data[pos + 1];
      if (b1 & 0x80) throw new ProtocolError('masked frame from the server');
      const op = b0 & 0x0f;
      if ((b0 & 0x70) && ((b0 & 0x70) !== 0x40 || !this.inflate || op === OP.CONT || op >= OP.CLOSE)) {
        throw new ProtocolError('RSV bits set');
      }
      let len = b1 & 0x7f;
      let start = pos + 2;
      if (len === 126) {
        if (n - pos < 4) break;
        len = data.readUInt16BE(pos + 2);
        start = pos + 4;
      } else if (len === 127) {
        if (n - pos < 10) break;
        const big = data.readBigUInt64BE(pos + 2);
        if (big > BigInt(MAX_MESSAGE)) throw new ProtocolError(`frame of ${big} bytes`);
        len = Number(big);
        start = pos + 10;
      }
      const end = start + len;
      if (end > n) break;
      this.frame(op, (b0 & 0x80) !== 0, data.subarray(start, end), (b0 & 0x40) !== 0);
      pos = end;
    }
    if (pos < n) this.buf = pos === 0 ? data : Buffer.from(data.subarray(pos)); // a copy: the rest is small
  }

  frame(op, fin, payload, compressed = false) {
    if (op >= OP.CLOSE) {
      if (!fin || payload.length > 125) throw new ProtocolError('bad control frame');
      this.onMessage(op, payload);
    } else if (op === OP.CONT) {
      if (this.fragOp < 0) throw new ProtocolError('continuation with nothing to continue');
      this.frags.push(Buffer.from(payload));
      this.fragLen += payload.length;
      if (this.fragLen > MAX_MESSAGE) throw new ProtocolError('message too long');
      if (fin) {
        const whole = Buffer.concat(this.frags, this.fragLen);
        const kind = this.fragOp;
        this.fragOp = -1;
        this.frags = [];
        this.fragLen = 0;
        this.onMessage(kind, this.fragZ ? inflated(whole) : whole);
      }
    } else if (op === OP.TEXT || op === OP.BINARY) {
      if (this.fragOp >= 0) throw new ProtocolError('new message inside a fragmented one');
      if (fin) {
        this.onMessage(op, compressed ? inflated(payload) : payload);
      } else {
        this.fragOp = op;
        this.fragZ = compressed;
        this.frags = [Buffer.from(payload)];
        this.fragLen = payload.length;
      }
    } else {
      throw new ProtocolError(`reserved opcode ${op}`);
    }
  }
}

// ---- frames to the server: always masked ----

let pool = Buffer.alloc(0);
let poolAt = 0;

function maskKey() {
  if (poolAt + 4 > pool.length) {
    pool = crypto.randomBytes(4096);
    poolAt = 0;
  }
  poolAt += 4;
  return pool.subarray(poolAt - 4, poolAt);
}

function maskedFrame(op, payload, fin = true) {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + len);
  out[0] = (fin ? 0x80 : 0) | op;
  if (len < 126) {
    out[1] = 0x80 | len;
  } else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = maskKey();
  mask.copy(out, head);
  const at = head + 4;
  for (let i = 0; i < len; i++) out[at + i] = payload[i] ^ mask[i & 3];
  return out;
}

// An unmasked frame as a server writes it (the self-test builds its input with it).
function serverFrame(op, payload, fin = true) {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + len);
  out[0] = (fin ? 0x80 : 0) | op;
  if (len < 126) {
    out[1] = len;
  } else if (len < 65536) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  payload.copy(out, head);
  return out;
}

// What a masked frame carries (the self-test checks the client's frames with it).
function unmask(frame) {
  let len = frame[1] & 0x7f;
  let at = 2;
  if (len === 126) { len = frame.readUInt16BE(2); at = 4; } else if (len === 127) { len = Number(frame.readBigUInt64BE(2)); at = 10; }
  const mask = frame.subarray(at, at + 4);
  const out = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) out[i] = frame[at + 4 + i] ^ mask[i & 3];
  return { op: frame[0] & 0x0f, fin: (frame[0] & 0x80) !== 0, payload: out };
}

module.exports = {
  OP, ProtocolError, newKey, acceptFor, upgradeRequest, HandshakeReader, FrameReader, maskedFrame, serverFrame, unmask,
};
