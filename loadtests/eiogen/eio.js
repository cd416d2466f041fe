'use strict';
// One viewer: a raw TCP socket that does the websocket upgrade (wire.js), then speaks Engine.IO v4 and
// Socket.IO v5 as docs/protocol.md and live/rooms/packets.py write them down: OPEN (0{...}) is answered with
// CONNECT (40{"token", "batch"}), the server's CONNECT (40{"sid"}) with `join`; PING (2) with PONG (3); an
// EVENT (42[name, data], or 42["batch", [[name, data], ...]] for a client that opted in) is a room event;
// an ACK (43<id>[args]) answers an event the viewer emitted with that id.
//
// A bulk viewer never parses a room event: it finds each `["chat:new",` in the frame's bytes and reads the
// number after the next `"seq":` (neither can occur inside a JSON string, where every quote is escaped). A
// tracked (probe) viewer parses, keeps every chat seq and records the latency from the `t=<unix seconds>`
// the chatter put at the start of the text.

const net = require('net');
const wire = require('./wire');

const CHAT_ITEM = Buffer.from('["chat:new",');
const BATCH = Buffer.from('42["batch",');
const SEQ_KEY = Buffer.from('"seq":');
const C0 = 0x30;
const C2 = 0x32;
const C3 = 0x33;
const C4 = 0x34;

const now = () => performance.timeOrigin + performance.now(); // ms, wall clock, sub-ms resolution

// Short patterns are compared and searched byte by byte in JS: cheaper than a native call for a few bytes.
function startsWithAt(buf, pat, at) {
  if (buf.length < at + pat.length) return false;
  for (let i = 0; i < pat.length; i++) if (buf[at + i] !== pat[i]) return false;
  return true;
}

const NEAR = 256; // `"seq":` is looked for byte by byte this far, then by Buffer.indexOf

function findSeqKey(buf, from) {
  const end = Math.min(buf.length - SEQ_KEY.length, from + NEAR);
  for (let i = from; i <= end; i++) if (buf[i] === 0x22 && startsWithAt(buf, SEQ_KEY, i)) return i;
  return end + 1 < buf.length ? buf.indexOf(SEQ_KEY, end + 1) : -1;
}

// The integer after the first `"seq":` at or after `from` (-1 when there is none).
function seqAfter(buf, from) {
  const at = findSeqKey(buf, from);
  if (at < 0) return -1;
  let i = at + SEQ_KEY.length;
  let v = 0;
  let digits = 0;
  for (; i < buf.length; i++) {
    const c = buf[i];
    if (c < C0 || c > C0 + 9) break;
    v = v * 10 + (c - C0);
    digits++;
  }
  return digits ? v : -1;
}

// The seqs of the chat:new events of one EVENT packet (a single event or a batch), in order, unparsed.
function chatSeqs(payload) {
  const out = [];
  if (startsWithAt(payload, CHAT_ITEM, 2)) {
    out.push(seqAfter(payload, 2 + CHAT_ITEM.length));
  } else if (startsWithAt(payload, BATCH, 0)) {
    let at = payload.indexOf(CHAT_ITEM, BATCH.length);
    while (at >= 0) {
      out.push(seqAfter(payload, at + CHAT_ITEM.length));
      at = payload.indexOf(CHAT_ITEM, at + CHAT_ITEM.length);
    }
  }
  return out;
}

// `read(packet)` computed once per process for equal packets: every viewer of a room gets the same bytes (one
// viewer's frames of a write, then the next viewer's), so results are remembered by the packet's length and
// first seq, and taken only when the bytes are equal.
const memo = new Map(); // `${read.name}:${length}:${first seq}` -> [packet, result]
const MEMO_MAX = 2048; // then the map starts again

function remembered(payload, read) {
  const seq = seqAfter(payload, 2);
  if (seq < 0) return read(payload);
  const key = `${read.name}:${payload.length}:${seq}`;
  const hit = memo.get(key);
  if (hit !== undefined && hit[0].equals(payload)) return hit[1];
  const out = read(payload);
  if (memo.size >= MEMO_MAX) memo.clear();
  memo.set(key, [Buffer.from(payload), out]);
  return out;
}

// [[name, data], ...] of one EVENT packet.
function readEvents(payload) {
  const [name, data] = JSON.parse(payload.toString('utf8', 2));
  return name === 'batch' && Array.isArray(data) ? data : [[name, data]];
}

function parseEvents(payload) {
  return remembered(payload, readEvents);
}

class Client {
  // ctx: {host, port, path, stream, batch, stats, joinTimeout}; stats: see gen.js Stats.
  constructor(ctx, index, token, tracked) {
    this.ctx = ctx;
    this.stats = ctx.stats;
    this.index = index;
    this.token = token;
    this.tracked = tracked;
    this.state = 'new'; // new, upgrading, open (socket.io connected), closed
    this.joinSeq = null;
    this.last = -1; // the highest chat seq received
    this.window = 0; // bit k: seq last - k received (k < 32), to tell a late message from a duplicate
    this.received = 0; // chat messages received (each seq once)
    this.dups = 0;
    this.seqs = tracked ? [] : null;
    this.acks = new Map(); // ack id -> {t, event, cb}
    this.nextAck = 1;
    this.socket = null;
    this.reader = null;
    this.shake = null;
    this.done = null; // called once: true when joined, false when the viewer failed
  }

  get alive() {
    return this.state === 'open';
  }

  start(done) {
    const key = wire.newKey();
    const s = net.connect({ host: this.ctx.host, port: this.ctx.port, noDelay: true });
    this.attach(s, key, done);
    s.on('connect', () => s.write(wire.upgradeRequest(`${this.ctx.host}:${this.ctx.port}`, this.ctx.path, key,
      this.ctx.deflate)));
    s.on('data', (chunk) => this.data(chunk));
    s.on('error', (err) => {
      if (this.state === 'upgrading' && this.joinSeq === null) this.fail(`connect_failed:${err.code || err.message}`);
    });
    s.on('close', () => this.lost());
  }

  // Reading `socket` (anything with write, end, destroy, destroyed and writable) for an upgrade sent with `key`;
  // `done(ok)` once joined or failed.
  attach(socket, key, done) {
    this.done = done;
    this.t0 = now();
    this.shake = new wire.HandshakeReader(key);
    this.reader = new wire.FrameReader((op, payload) => this.message(op, payload));
    this.socket = socket;
    this.state = 'upgrading';
    this.timer = setTimeout(() => this.fail('join_timeout'), this.ctx.joinTimeout * 1000);
  }

  data(chunk) {
    try {
      if (this.shake !== null) {
        const head = this.shake.feed(chunk);
        if (head === null) return;
        this.shake = null;
        if (!head.ok) return this.fail('handshake_refused', head.status);
        this.reader.inflate = head.deflate;
        chunk = head.rest;
        if (!chunk.length) return;
      }
      this.reader.feed(chunk);
    } catch (err) {
      if (!(err instanceof wire.ProtocolError)) throw err;
      this.stats.error('protocol_error');
      this.stats.note(`viewer ${this.index}: ${err.message}`);
      this.destroy();
    }
  }

  message(op, payload) {
    if (op === wire.OP.TEXT) {
      this.stats.frames++;
      this.packet(payload);
    } else if (op === wire.OP.PING) {
      this.write(wire.maskedFrame(wire.OP.PONG, payload));
    } else if (op === wire.OP.CLOSE) {
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
      if (this.state === 'open') {
        this.stats.open--;
        this.stats.error('server_closed');
      } else if (this.state === 'upgrading') {
        this.stats.error('closed_before_join');
        this.stats.note(`viewer ${this.index}: closed by the server before its join, code ${code}`);
      }
      this.state = 'closed';
      this.write(wire.maskedFrame(wire.OP.CLOSE, payload.subarray(0, 2)));
      this.socket.end();
      clearTimeout(this.timer);
      const done = this.done;
      this.done = null;
      if (done) done(false);
    }
  }

  packet(p) {
    const t = p[0];
    if (t === C4 && p[1] === C2) {
      if (p[2] === 0x5b) return this.event(p); // 42[...: a room event
    } else if (t === C2 && p.length === 1) {
      return this.sendText('3');
    } else if (t === C4 && p[1] === C3) {
      return this.ack(p);
    } else if (t === C0) { // Engine.IO OPEN
      const auth = {};
      if (this.token) auth.token = this.token;
      if (this.ctx.batch) auth.batch = 1;
      return this.sendText(Object.keys(auth).length ? '40' + JSON.stringify(auth) : '40');
    } else if (t === C4 && p[1] === C0) { // Socket.IO connected
      this.stats.connected++;
      return this.emit('join', { stream_id: this.ctx.stream }, (ack) => this.joined(ack));
    } else if (t === C4 && p[1] === C4) {
      let code = 'refused';
      try { code = JSON.parse(p.toString('utf8', 2)).data.code || code; } catch (e) { /* keep 'refused' */ }
      return this.fail(`connect_${code}`);
    } else if (t === C4 && p[1] === 0x31) {
      this.stats.error('server_disconnect');
    }
    return undefined;
  }

  event(p) {
    const batch = p[4] === 0x62 && startsWithAt(p, BATCH, 0);
    if (batch) this.stats.batchFrames++;
    if (!this.tracked) {
      if (batch) {
        const seqs = remembered(p, chatSeqs);
        for (let i = 0; i < seqs.length; i++) this.count(seqs[i]);
      } else if (startsWithAt(p, CHAT_ITEM, 2)) {
        this.count(seqAfter(p, 2 + CHAT_ITEM.length));
      }
      return;
    }
    const at = now();
    for (const [name, data] of parseEvents(p)) {
      if (name !== 'chat:new' || data === null || typeof data !== 'object') continue;
      if (!this.count(data.seq)) continue;
      this.seqs.push(data.seq);
      const text = typeof data.text === 'string' ? data.text : '';
      if (text.startsWith('t=')) {
        const sent = parseFloat(text.slice(2, text.indexOf(' ') > 0 ? text.indexOf(' ') : undefined));
        if (Number.isFinite(sent)) this.stats.latencyAt(at - sent * 1000, at);
      }
    }
  }

  // One chat message; false when this viewer had it already. A seq below the highest received is a duplicate
  // when seen, else out of order (error chat_out_of_order, as the Python generator's) and received; one more than
  // 31 seqs late cannot be told from a duplicate and counts as one.
  count(seq) {
    this.stats.chatFrames++;
    if (!(seq >= 0)) {
      this.stats.error('chat_without_seq');
      return false;
    }
    if (seq <= this.last) {
      const bit = this.last - seq < 32 ? (1 << (this.last - seq)) >>> 0 : 0;
      if (bit === 0 || (this.window & bit) !== 0) {
        this.dups++;
        return false;
      }
      this.window = (this.window | bit) >>> 0;
      this.stats.error('chat_out_of_order');
    } else {
      const shift = seq - this.last;
      this.window = shift < 32 ? ((this.window << shift) | 1) >>> 0 : 1;
      this.last = seq;
    }
    this.received++;
    if (!this.tracked) this.stats.seqCount.set(seq, (this.stats.seqCount.get(seq) || 0) + 1);
    return true;
  }

  ack(p) {
    let i = 2;
    while (i < p.length && p[i] >= C0 && p[i] <= C0 + 9) i++;
    const id = Number(p.toString('latin1', 2, i));
    const entry = this.acks.get(id);
    if (entry === undefined) return;
    this.acks.delete(id);
    let args = null;
    try { args = JSON.parse(p.toString('utf8', i)); } catch (e) { this.stats.error('bad_ack'); }
    const ack = Array.isArray(args) && args.length ? args[0] : null;
    this.stats.acked(entry.event, now() - entry.t, ack);
    if (entry.cb) entry.cb(ack);
  }

  joined(ack) {
    if (ack === null || typeof ack !== 'object' || !ack.ok) {
      const code = ack && ack.error && ack.error.code ? ack.error.code : 'failed';
      return this.fail(`join_${code}`);
    }
    clearTimeout(this.timer);
    this.joinSeq = typeof ack.seq === 'number' ? ack.seq : 0;
    this.state = 'open';
    this.stats.open++;
    this.stats.join.add(now() - this.t0);
    const done = this.done;
    this.done = null;
    if (done) done(true);
    return undefined;
  }

  emit(event, data, cb) {
    const id = this.nextAck++;
    this.acks.set(id, { t: now(), event, cb });
    this.stats.sent++;
    this.sendText(`42${id}` + JSON.stringify([event, data]));
  }

  expireAcks(at, timeoutMs) {
    for (const [id, entry] of this.acks) {
      if (at - entry.t > timeoutMs) {
        this.acks.delete(id);
        this.stats.error(`ack_timeout:${entry.event}`);
        if (entry.cb) entry.cb(null);
      }
    }
  }

  sendText(text) {
    this.write(wire.maskedFrame(wire.OP.TEXT, Buffer.from(text)));
  }

  write(buf) {
    if (this.socket && !this.socket.destroyed && this.socket.writable) this.socket.write(buf);
  }

  fail(error, detail) {
    this.stats.error(error);
    if (detail) this.stats.note(`viewer ${this.index}: ${detail}`);
    this.destroy();
  }

  destroy() {
    clearTimeout(this.timer);
    if (this.state === 'open') this.stats.open--;
    this.state = 'closed';
    if (this.socket) this.socket.destroy();
    const done = this.done;
    this.done = null;
    if (done) done(false);
  }

  lost() { // the TCP connection ended
    clearTimeout(this.timer);
    if (this.state === 'open') {
      this.stats.open--;
      this.stats.error('disconnected');
    } else if (this.state === 'upgrading') {
      this.stats.error('closed_before_join');
    }
    this.state = 'closed';
    for (const entry of this.acks.values()) if (entry.cb) entry.cb(null);
    this.acks.clear();
    const done = this.done;
    this.done = null;
    if (done) done(false);
  }

  close() { // leave on purpose (the end of the run)
    if (this.state === 'open') this.stats.open--;
    this.state = 'closed';
    if (this.socket) this.socket.destroy();
  }
}

module.exports = { Client, chatSeqs, seqAfter, parseEvents, now };
