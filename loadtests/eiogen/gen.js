#!/usr/bin/env node
'use strict';
// The second load generator: raw Engine.IO v4 / Socket.IO v5 websocket viewers in Node, written from the
// protocol (docs/protocol.md), independent of loadtests/viewer.py. Only Node's built-in modules.
//
//   node gen.js              one generator process, driven by JSON lines (loadtests/nodegen.py drives it)
//   node gen.js --selftest   the frame reader and the viewer fed byte by byte (selftest.js); exit 0 when right
//
// The driver writes JSON lines on stdin, the process answers JSON lines on stdout:
//   -> {"cmd": "config", "role": "bulk"|"probe", "proc", "host", "port", "path", "stream", "viewers",
//       "tokens": [token or null, ...], "chatters", "rate", "batch", "deflate", "concurrency", "ramp", "join_timeout",
//       "ack_timeout", "run_id"}
//   <- {"type": "ready", ...}            every viewer joined or failed
//   -> {"cmd": "go", "at", "until"}      unix seconds: the chatters send chat:send at `rate` in all meanwhile
//   <- {"type": "ran", "chat_seqs"}      the seqs of the messages acked ok (after their acks, or ack_timeout)
//   -> {"cmd": "stop", "chat_seqs", "drain"}   every process's seqs: wait (at most drain s) until each viewer
//                                              has the ones sent after it joined
//   <- {"type": "result", ...}           counts, histograms, per-viewer accounting; then the process exits
// A bulk process's viewers only count chat:new by seq; a probe's (and its chatters) parse every room event
// and time each chat message from the `t=<unix seconds>` at the start of its text (loadtests/scenarios.py
// writes the same).

const { Client, now } = require('./eio');
const { Hist } = require('./hist');

const ROLES = ['bulk', 'probe'];

class Stats {
  constructor() {
    this.connected = 0; // Socket.IO connects that succeeded
    this.open = 0; // viewers joined and connected now
    this.frames = 0; // websocket text messages received
    this.chatFrames = 0; // chat:new events received (batch elements counted one by one)
    this.batchFrames = 0; // `batch` events received (a viewer that opted in, a write of several events)
    this.sent = 0;
    this.errors = {};
    this.notes = [];
    this.latency = new Hist();
    this.join = new Hist();
    this.acks = {};
    this.ok = {};
    this.refused = {};
    this.seqCount = new Map(); // bulk: chat seq -> deliveries in this process
    this.goMs = null; // the start of the chat (ms): latencies are also kept per second since
    this.bySecond = new Map();
  }

  latencyAt(ms, at) {
    this.latency.add(ms);
    if (this.goMs === null) return;
    const second = Math.floor((at - this.goMs) / 1000);
    let h = this.bySecond.get(second);
    if (h === undefined) this.bySecond.set(second, (h = new Hist()));
    h.add(ms);
  }

  error(kind) {
    this.errors[kind] = (this.errors[kind] || 0) + 1;
  }

  note(text) {
    if (this.notes.length < 20) this.notes.push(text);
  }

  acked(event, ms, ack) {
    (this.acks[event] || (this.acks[event] = new Hist())).add(ms);
    if (ack !== null && typeof ack === 'object' && ack.ok === true) {
      this.ok[event] = (this.ok[event] || 0) + 1;
    } else {
      const code = ack && ack.error && ack.error.code ? ack.error.code : (ack === null ? 'no_ack' : 'error');
      const by = this.refused[event] || (this.refused[event] = {});
      by[code] = (by[code] || 0) + 1;
    }
  }
}

function usage(message) {
  process.stderr.write(`gen.js: ${message}\n`);
  process.exit(2);
}

function checkConfig(c) {
  if (!ROLES.includes(c.role)) usage(`config: role must be one of ${ROLES.join(', ')}`);
  for (const k of ['port', 'viewers', 'concurrency']) {
    if (!Number.isInteger(c[k]) || c[k] < 1) usage(`config: ${k} must be a positive integer`);
  }
  for (const k of ['host', 'path', 'stream']) if (typeof c[k] !== 'string' || !c[k]) usage(`config: ${k} missing`);
  if (!Array.isArray(c.tokens) || c.tokens.length > c.viewers) usage('config: tokens must be a list of at most viewers');
  c.chatters = c.chatters || 0;
  c.rate = c.rate || 0;
  if (c.chatters > c.viewers || (c.chatters && c.role !== 'probe')) usage('config: chatters belong to the probe, at most viewers');
  if (c.chatters > c.tokens.filter(Boolean).length) usage('config: every chatter needs a token');
  if (c.rate > 0 && !c.chatters) usage('config: rate needs chatters');
  c.ramp = c.ramp || 0;
  c.join_timeout = c.join_timeout || 30;
  c.ack_timeout = c.ack_timeout || 15;
  c.proc = c.proc || 0;
  c.run_id = c.run_id || 'eiogen';
  return c;
}

// ---- the line protocol ----

const waiting = [];
const queued = [];
let stdinBuf = '';

function nextCommand() {
  return queued.length ? Promise.resolve(queued.shift()) : new Promise((resolve) => waiting.push(resolve));
}

function listen() {
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (text) => {
    stdinBuf += text;
    let nl = stdinBuf.indexOf('\n');
    while (nl >= 0) {
      const line = stdinBuf.slice(0, nl).trim();
      stdinBuf = stdinBuf.slice(nl + 1);
      if (line) {
        let cmd;
        try { cmd = JSON.parse(line); } catch (e) { usage(`not a JSON line on stdin: ${line.slice(0, 80)}`); }
        if (waiting.length) waiting.shift()(cmd); else queued.push(cmd);
      }
      nl = stdinBuf.indexOf('\n');
    }
  });
  process.stdin.on('end', () => { // the driver is gone: nothing more will be asked
    process.stderr.write('gen.js: stdin closed, exiting\n');
    process.exit(1);
  });
}

function say(obj) {
  return new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + '\n', resolve));
}

async function expect(kind) {
  const cmd = await nextCommand();
  if (!cmd || cmd.cmd !== kind) usage(`expected the "${kind}" command, got ${JSON.stringify(cmd).slice(0, 80)}`);
  return cmd;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// ---- the phases ----

function openAll(c, stats) {
  const clients = [];
  const ctx = { host: c.host, port: c.port, path: c.path, stream: c.stream, batch: Boolean(c.batch), stats,
    deflate: Boolean(c.deflate), joinTimeout: c.join_timeout };
  for (let i = 0; i < c.viewers; i++) clients.push(new Client(ctx, i, c.tokens[i] || null, c.role === 'probe'));
  const start = now();
  let next = 0;
  let inflight = 0;
  let settled = 0;
  let lastJoin = 0;
  return new Promise((resolve) => {
    const pump = () => {
      while (next < c.viewers && inflight < c.concurrency) {
        const due = start + (c.ramp * 1000 * next) / c.viewers;
        if (due > now()) return setTimeout(pump, due - now());
        inflight++;
        clients[next++].start((ok) => {
          inflight--;
          settled++;
          if (ok) lastJoin = now();
          if (settled === c.viewers) resolve({ clients, lastJoin });
          else pump();
        });
      }
      return undefined;
    };
    pump();
  });
}

async function chat(c, clients, go) {
  const chatters = clients.slice(0, c.chatters).filter((v) => v.alive);
  const seqs = [];
  if (!chatters.length || c.rate <= 0) return seqs;
  const atMs = go.at * 1000;
  const untilMs = go.until * 1000;
  let n = 0;
  for (;;) {
    const due = atMs + (n * 1000) / c.rate;
    if (due >= untilMs) break;
    if (due > now()) await sleep(due - now());
    const v = chatters[n % chatters.length];
    n++;
    if (!v.alive) continue;
    const text = `t=${(now() / 1000).toFixed(6)} ${c.run_id}:${c.proc}.${v.index}.${n}`;
    v.emit('chat:send', { stream_id: c.stream, text }, (ack) => {
      if (ack && ack.ok === true && ack.message && Number.isInteger(ack.message.seq)) seqs.push(ack.message.seq);
    });
  }
  const deadline = now() + c.ack_timeout * 1000;
  while (now() < deadline && chatters.some((v) => v.acks.size)) await sleep(20);
  for (const v of chatters) v.expireAcks(now(), -1);
  return seqs.sort((a, b) => a - b);
}

function wanted(seqs, joinSeq) { // how many of the sorted seqs are above joinSeq
  let lo = 0;
  let hi = seqs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (seqs[mid] <= joinSeq) lo = mid + 1; else hi = mid;
  }
  return seqs.length - lo;
}

async function drain(clients, seqs, seconds) {
  const deadline = now() + seconds * 1000;
  const joined = clients.filter((v) => v.joinSeq !== null);
  while (now() < deadline) {
    if (joined.every((v) => !v.alive || v.received >= wanted(seqs, v.joinSeq))) return;
    await sleep(50);
  }
}

async function run() {
  listen();
  const c = checkConfig(await expect('config'));
  const stats = new Stats();
  const cpu0 = cpuSeconds();
  const wall0 = now();
  const { clients, lastJoin } = await openAll(c, stats);
  const expiry = setInterval(() => {
    const t = now();
    for (const v of clients) if (v.acks.size) v.expireAcks(t, c.ack_timeout * 1000);
  }, 1000);
  const joinCpu = cpuSeconds() - cpu0;
  const joinWall = (now() - wall0) / 1000;
  await say({ type: 'ready', proc: c.proc, role: c.role, joined: stats.join.n, connected: stats.connected,
    errors: stats.errors, last_join_wall: lastJoin ? lastJoin / 1000 : null, join_cpu_s: joinCpu, join_wall_s: joinWall });
  const go = await expect('go');
  stats.goMs = go.at * 1000;
  if (go.at * 1000 > now()) await sleep(go.at * 1000 - now());
  const cpu1 = cpuSeconds();
  const wall1 = now();
  const chatSeqs = await chat(c, clients, go);
  if (go.until * 1000 > now()) await sleep(go.until * 1000 - now());
  const runCpu = cpuSeconds() - cpu1;
  const runWall = (now() - wall1) / 1000;
  await say({ type: 'ran', proc: c.proc, chat_seqs: chatSeqs });
  const stop = await expect('stop');
  const all = (stop.chat_seqs || []).slice().sort((a, b) => a - b);
  await drain(clients, all, stop.drain === undefined ? 5 : stop.drain);
  clearInterval(expiry);
  const accounting = clients.filter((v) => v.joinSeq !== null)
    .map((v) => [v.joinSeq, v.received, v.alive, v.seqs, v.dups]);
  await say({ type: 'result', proc: c.proc, role: c.role, viewers: c.viewers, joined: stats.join.n,
    connected: stats.connected, frames: stats.frames, chat_frames: stats.chatFrames, batch_frames: stats.batchFrames, sent: stats.sent,
    errors: stats.errors, notes: stats.notes, latency: stats.latency.dump(),
    by_second: Object.fromEntries([...stats.bySecond].map(([t, h]) => [t, h.dump()])), join: stats.join.dump(),
    acks: Object.fromEntries(Object.entries(stats.acks).map(([k, h]) => [k, h.dump()])), ok: stats.ok,
    refused: stats.refused, accounting, seq_count: Object.fromEntries(stats.seqCount), chat_seqs: chatSeqs,
    join_cpu_s: joinCpu, join_wall_s: joinWall, run_cpu_s: runCpu, run_wall_s: runWall, cpu_s: cpuSeconds() - cpu0 });
  for (const v of clients) v.close();
  process.exit(0);
}

if (process.argv.includes('--selftest')) {
  process.exit(require('./selftest').selftest() ? 0 : 1);
} else if (process.argv.length > 2) {
  usage(`unknown arguments ${process.argv.slice(2).join(' ')} (the config comes on stdin; --selftest)`);
} else {
  run().catch((err) => {
    process.stderr.write(`gen.js: ${err.stack || err}\n`);
    process.exit(1);
  });
}
