'use strict';
// `node gen.js --selftest`: a server's bytes (the 101 answer, OPEN, CONNECT, a join ack over 64 KB, pings of
// both layers, chat:new alone, in a batch, fragmented around a ping, repeated, with a 16-bit length, then a
// close) fed to a real viewer (eio.js Client over a stand-in socket) whole, one byte at a time and in random
// cuts; each way must give the same answers and the same counts. Also: masked frames read back at every length
// class, protocol errors refused, and the unparsed seq scan against JSON.parse on hostile chat text.

const zlib = require('zlib');
const wire = require('./wire');
const { Client, chatSeqs, parseEvents, now } = require('./eio');

const failures = [];

function check(what, ok, detail = '') {
  if (!ok) failures.push(`${what}${detail ? ': ' + detail : ''}`);
}

function eq(what, got, want) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  check(what, g === w, `got ${g.slice(0, 300)}, want ${w.slice(0, 300)}`);
}

function text(s) {
  return wire.serverFrame(wire.OP.TEXT, Buffer.from(s));
}

function chatNew(seq, extra = '') {
  const t = (now() / 1000 - 0.25).toFixed(6); // sent 250 ms ago
  return { id: `m${seq}`, seq, stream_id: 'demo', user: { id: 'u', name: 'n', role: 'customer' },
    text: `t=${t} ${extra}`, ts: 1 };
}

function serverBytes(key) {
  const head = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${wire.acceptFor(key)}\r\n\r\n`);
  const history = Array.from({ length: 400 }, (_, i) => chatNew(i, 'x'.repeat(100)));
  const hostile = '["chat:new",{"seq":99} "seq":98 \\" [" ]]';
  const frag = Buffer.from('42' + JSON.stringify(['chat:new', chatNew(15)]));
  const parts = [
    head,
    text('0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":16384}'),
    text('40{"sid":"s2"}'),
    text('431' + JSON.stringify([{ ok: true, seq: 10, epoch: 'e', recovered: false, chat: history }])), // 64-bit length
    text('2'),
    text('42' + JSON.stringify(['chat:new', chatNew(11, hostile)])),
    wire.serverFrame(wire.OP.PING, Buffer.from('hi')),
    text('42' + JSON.stringify(['batch', [['viewer:count', { seq: 12, stream_id: 'demo', count: 3 }],
      ['chat:new', chatNew(13, hostile)], ['chat:new', chatNew(14)]]])),
    wire.serverFrame(wire.OP.TEXT, frag.subarray(0, 5), false),
    wire.serverFrame(wire.OP.PING, Buffer.from('mid')),
    wire.serverFrame(wire.OP.CONT, frag.subarray(5, 40), false),
    wire.serverFrame(wire.OP.CONT, frag.subarray(40), true),
    text('42' + JSON.stringify(['chat:new', chatNew(14)])), // a repeat: a duplicate
    text('42' + JSON.stringify(['chat:new', chatNew(16, 'y'.repeat(200))])), // 16-bit length
    wire.serverFrame(wire.OP.CLOSE, Buffer.from([0x03, 0xe8])),
  ];
  check('the join ack takes a 64-bit length', parts[3][1] === 127);
  check('a chat:new takes a 16-bit length', parts[13][1] === 126);
  return Buffer.concat(parts);
}

class FakeSocket {
  constructor() {
    this.frames = [];
    this.destroyed = false;
    this.writable = true;
    this.ended = false;
  }

  write(buf) {
    check('client frames are masked', (buf[1] & 0x80) !== 0);
    const f = wire.unmask(buf);
    this.frames.push(f.op === wire.OP.TEXT ? f.payload.toString() : `op${f.op}:${f.payload.toString('hex')}`);
  }

  end() { this.ended = true; this.writable = false; }

  destroy() { this.destroyed = true; this.writable = false; }
}

function runViewer(bytes, key, cuts, tracked) {
  const errors = {};
  const stats = { frames: 0, chatFrames: 0, batchFrames: 0, connected: 0, open: 0, sent: 0, seqCount: new Map(),
    latency: { n: 0, values: [] }, latencyAt(ms) { this.latency.n++; this.latency.values.push(ms); },
    join: { n: 0, add() { this.n++; } }, error(k) { errors[k] = (errors[k] || 0) + 1; }, note() {}, acked() {} };
  const ctx = { host: 'h', port: 1, path: '/socket.io/?EIO=4&transport=websocket', stream: 'demo', batch: true,
    stats, joinTimeout: 60 };
  const v = new Client(ctx, 0, 'tok', tracked);
  const sock = new FakeSocket();
  let joined = null;
  v.attach(sock, key, (ok) => { joined = ok; });
  let at = 0;
  for (const n of cuts) {
    v.data(bytes.subarray(at, at + n));
    at += n;
  }
  if (at < bytes.length) v.data(bytes.subarray(at));
  clearTimeout(v.timer);
  return { joined, joinSeq: v.joinSeq, received: v.received, dups: v.dups, seqs: v.seqs, writes: sock.frames,
    ended: sock.ended, frames: stats.frames, batches: stats.batchFrames, chats: stats.chatFrames, errors, latencies: stats.latency.values,
    seqCount: Object.fromEntries(stats.seqCount) };
}

function closedBeforeJoin() {
  const key = wire.newKey();
  const bytes = Buffer.concat([
    Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: ${wire.acceptFor(key)}\r\n\r\n`),
    text('0{"sid":"s1","pingInterval":25000,"pingTimeout":20000,"maxPayload":16384}'),
    wire.serverFrame(wire.OP.CLOSE, Buffer.from([0x03, 0xf0])), // 1008: no CONNECT in time
  ]);
  for (const tracked of [false, true]) {
    const r = runViewer(bytes, key, new Array(bytes.length).fill(1), tracked);
    eq(`closed before its join (${tracked ? 'probe' : 'bulk'})`, [r.joined, r.errors, r.ended, r.writes.at(-1)],
      [false, { closed_before_join: 1 }, true, 'op8:03f0']);
  }
}

function cutsOf(total, rng, maxCut) {
  const out = [];
  let left = total;
  while (left > 0) {
    const n = Math.min(left, 1 + Math.floor(rng() * maxCut));
    out.push(n);
    left -= n;
  }
  return out;
}

function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function viewerChecks() {
  const key = wire.newKey();
  const bytes = serverBytes(key);
  const ways = { whole: [bytes.length], 'one byte at a time': new Array(bytes.length).fill(1) };
  for (const seed of [1, 2, 3]) ways[`random cuts ${seed}`] = cutsOf(bytes.length, lcg(seed), 300);
  ways['random cuts up to 8 KB'] = cutsOf(bytes.length, lcg(9), 8192);
  const wantWrites = ['40{"token":"tok","batch":1}', '421["join",{"stream_id":"demo"}]', '3',
    `op10:${Buffer.from('hi').toString('hex')}`, `op10:${Buffer.from('mid').toString('hex')}`, 'op8:03e8'];
  for (const tracked of [false, true]) {
    for (const [way, cuts] of Object.entries(ways)) {
      const r = runViewer(bytes, key, cuts, tracked);
      const what = `${tracked ? 'probe' : 'bulk'} viewer, ${way}`;
      eq(`${what}: joined at seq 10`, [r.joined, r.joinSeq], [true, 10]);
      eq(`${what}: answers`, r.writes, wantWrites);
      eq(`${what}: chat received, duplicates`, [r.received, r.dups, r.chats], [5, 1, 6]);
      eq(`${what}: the close counted, no other error`, r.errors, { server_closed: 1 });
      check(`${what}: close echoed and the socket ended`, r.ended);
      eq(`${what}: text messages, batches`, [r.frames, r.batches], [9, 1]);
      if (tracked) {
        eq(`${what}: seqs`, r.seqs, [11, 13, 14, 15, 16]);
        check(`${what}: 5 latencies near 250 ms`, r.latencies.length === 5 &&
          r.latencies.every((ms) => ms >= 249 && ms < 5000), JSON.stringify(r.latencies));
      } else {
        eq(`${what}: seqs counted`, r.seqCount, { 11: 1, 13: 1, 14: 1, 15: 1, 16: 1 });
      }
    }
  }
}

function frameChecks() {
  for (const len of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
    const payload = Buffer.alloc(len, 0x61 + (len % 20));
    const f = wire.unmask(wire.maskedFrame(wire.OP.TEXT, payload));
    check(`masked frame of ${len} bytes reads back`, f.op === wire.OP.TEXT && f.fin && f.payload.equals(payload));
    const got = [];
    new wire.FrameReader((op, p) => got.push([op, p.length])).feed(wire.serverFrame(wire.OP.BINARY, payload));
    eq(`server frame of ${len} bytes`, got, [[wire.OP.BINARY, len]]);
  }
  const refused = (what, bytes) => {
    let threw = null;
    try { new wire.FrameReader(() => {}).feed(bytes); } catch (e) { threw = e; }
    check(`refused: ${what}`, threw instanceof wire.ProtocolError, String(threw));
  };
  refused('a masked server frame', wire.maskedFrame(wire.OP.TEXT, Buffer.from('x')));
  refused('a continuation with nothing to continue', wire.serverFrame(wire.OP.CONT, Buffer.from('x')));
  refused('a fragmented ping', wire.serverFrame(wire.OP.PING, Buffer.from('x'), false));
  refused('a reserved opcode', wire.serverFrame(3, Buffer.from('x')));
  const shake = new wire.HandshakeReader(wire.newKey());
  const bad = shake.feed(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: wrong\r\n\r\n'));
  check('a wrong Sec-WebSocket-Accept is refused', bad !== null && !bad.ok);
  const no = new wire.HandshakeReader(wire.newKey()).feed(Buffer.from('HTTP/1.1 429 Too Many Requests\r\n\r\n'));
  check('a 429 is refused', no !== null && !no.ok && no.status.includes('429'));
  deflateChecks(refused);
}

// permessage-deflate: offered, agreed from the answer, compressed frames (whole and fragmented) inflated, RSV1
// refused unless agreed and on anything but a message's first frame
function deflateChecks(refused) {
  check('the offer', wire.upgradeRequest('h', '/p', 'k', true).toString().includes(
    'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n'));
  check('no offer by default', !wire.upgradeRequest('h', '/p', 'k').toString().includes('Extensions'));
  const key = wire.newKey();
  const head = new wire.HandshakeReader(key).feed(Buffer.from(`HTTP/1.1 101 Switching Protocols\r\n` +
    `Sec-WebSocket-Accept: ${wire.acceptFor(key)}\r\nSec-WebSocket-Extensions: permessage-deflate; ` +
    'server_no_context_takeover; client_no_context_takeover\r\n\r\n'));
  check('agreed', head.ok && head.deflate === true);
  const message = Buffer.from('42' + JSON.stringify(['chat:new', { seq: 3, text: 'compressed '.repeat(30) }]));
  const z = zlib.deflateRawSync(message, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
  const rsv1 = (frame) => { frame[0] |= 0x40; return frame; };
  const got = [];
  const reader = new wire.FrameReader((op, payload) => got.push([op, payload.toString()]));
  reader.inflate = true;
  reader.feed(Buffer.concat([rsv1(wire.serverFrame(wire.OP.TEXT, z)), wire.serverFrame(wire.OP.TEXT, Buffer.from('2')),
    rsv1(wire.serverFrame(wire.OP.TEXT, z.subarray(0, 9), false)), wire.serverFrame(wire.OP.CONT, z.subarray(9))]));
  eq('inflated: whole, plain, fragmented', got, [[1, message.toString()], [1, '2'], [1, message.toString()]]);
  refused('RSV1 when not agreed', rsv1(wire.serverFrame(wire.OP.TEXT, z)));
  const refusedAgreed = (what, bytes) => {
    let threw = null;
    const r = new wire.FrameReader(() => {});
    r.inflate = true;
    try { r.feed(bytes); } catch (e) { threw = e; }
    check(`refused: ${what}`, threw instanceof wire.ProtocolError, String(threw));
  };
  refusedAgreed('RSV1 on a ping', rsv1(wire.serverFrame(wire.OP.PING, Buffer.from('x'))));
  refusedAgreed('RSV1 on a continuation', Buffer.concat([wire.serverFrame(wire.OP.TEXT, Buffer.from('a'), false),
    rsv1(wire.serverFrame(wire.OP.CONT, Buffer.from('b')))]));
  refusedAgreed('not deflate data', rsv1(wire.serverFrame(wire.OP.TEXT, Buffer.from([0xff, 0xfe, 0xfd, 0xfc]))));
}

function scanChecks() {
  const rng = lcg(7);
  const nasty = ['["chat:new",', '"seq":', '\\', '"', '[', ']', '{', '}', ',', 'é', '\u2028', ' '];
  for (let k = 0; k < 200; k++) {
    const events = [];
    for (let j = 0; j < 1 + Math.floor(rng() * 5); j++) {
      let t = '';
      for (let q = 0; q < 8; q++) t += nasty[Math.floor(rng() * nasty.length)];
      const seq = 1 + Math.floor(rng() * 1e9);
      events.push(rng() < 0.7 ? ['chat:new', { id: t, seq, text: t, user: { id: t, seq: 0 } }]
        : ['reactions', { seq, counts: { [t]: 1 } }]);
    }
    const payload = Buffer.from('42' + JSON.stringify(events.length === 1 ? events[0] : ['batch', events]));
    const want = events.filter(([n]) => n === 'chat:new').map(([, d]) => d.seq);
    eq(`scan ${k}`, chatSeqs(payload), want);
    eq(`parse ${k}`, parseEvents(payload), events);
  }
  const far = ['chat:new', { id: 'z'.repeat(400), seq: 77, text: '"seq":1' }]; // the key past the byte-by-byte reach
  eq('scan: seq far from the event name', chatSeqs(Buffer.from('42' + JSON.stringify(far))), [77]);
  eq('scan: seq far, batched', chatSeqs(Buffer.from('42' + JSON.stringify(['batch', [far, far]]))), [77, 77]);
  const a = Buffer.from('42' + JSON.stringify(['chat:new', { seq: 5, text: 'aaa' }]));
  const b = Buffer.from('42' + JSON.stringify(['chat:new', { seq: 5, text: 'bbb' }]));
  eq('parse cache: same length and seq, other bytes', [parseEvents(a), parseEvents(b), parseEvents(a)],
    [[['chat:new', { seq: 5, text: 'aaa' }]], [['chat:new', { seq: 5, text: 'bbb' }]], [['chat:new', { seq: 5, text: 'aaa' }]]]);
}

function orderChecks() {
  const errors = {};
  const stats = { chatFrames: 0, seqCount: new Map(), error(k) { errors[k] = (errors[k] || 0) + 1; } };
  const v = new Client({ stats }, 0, null, false);
  const got = [5, 7, 6, 7, 40, 8, 9, 41].map((seq) => v.count(seq));
  // 6 after 7: late, received; 7 again: a duplicate; 8 (32 below 40): past the window, a duplicate; 9: late
  eq('order: counted', got, [true, true, true, false, true, false, true, true]);
  eq('order: received, duplicates, errors', [v.received, v.dups, errors], [6, 2, { chat_out_of_order: 2 }]);
}

function selftest() {
  frameChecks();
  orderChecks();
  scanChecks();
  viewerChecks();
  closedBeforeJoin();
  for (const f of failures) process.stdout.write(`FAIL ${f}\n`);
  process.stdout.write(failures.length ? `selftest: ${failures.length} failed\n` : 'selftest ok\n');
  return failures.length === 0;
}

module.exports = { selftest };
