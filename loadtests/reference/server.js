// A minimal Node socket.io 4.8 server speaking the same room protocol as live (docs/protocol.md), so the
// same load-test scenarios can run against both: join (snapshot or recovery by seq/epoch), chat:send ->
// chat:new, reaction -> reactions every 250 ms, viewer:count every second, cart:add on an in-memory stock
// counter -> stock:update. Everything is in memory, one process, idiomatic socket.io (io.to(room).emit).
//
//   node loadtests/reference/server.js --port 8091 [--host 127.0.0.1] [--secret S] [--stock 25]
//
// Tokens: with --secret (or JWT_SECRET) HS256 tokens are verified like live does (signature, exp); without
// a secret any token's payload is accepted unverified (a benchmark convenience, never for production).
// GET /metrics answers the same live_* counter names as live's /metrics; GET /healthz answers ok.
import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import { Server } from "socket.io";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const PORT = Number(args.port ?? process.env.PORT ?? 8091);
const HOST = args.host ?? "127.0.0.1";
const SECRET = args.secret ?? process.env.JWT_SECRET ?? "";
const STOCK = Number(args.stock ?? 25);
const HISTORY = 1000;
const KINDS = ["heart", "fire", "clap", "wow", "laugh"];
const EPOCH = Math.random().toString(16).slice(2, 14);

// ---- metrics (same names as live's /metrics) ----
const counters = new Map(); // "name|label=value" -> n
const count = (name, labels) => {
  const key = `${name}|${labels}`;
  counters.set(key, (counters.get(key) ?? 0) + 1);
};
function metricsText() {
  const lines = [];
  const worker = `worker="${process.pid}"`;
  lines.push(`live_socket_connections{${worker}} ${io.engine.clientsCount}`);
  for (const [key, n] of counters) {
    const [name, labels] = key.split("|");
    lines.push(`${name}_total{${worker},${labels}} ${n}`);
  }
  const cpu = process.cpuUsage();
  lines.push(`process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`);
  lines.push(`process_resident_memory_bytes ${process.memoryUsage().rss}`);
  return lines.join("\n") + "\n";
}

// ---- tokens ----
function b64json(part) {
  return JSON.parse(Buffer.from(part.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString());
}
function verify(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) throw new Error("malformed token");
  const header = b64json(parts[0]);
  const claims = b64json(parts[1]);
  if (SECRET) {
    if (header.alg !== "HS256") throw new Error("unsupported algorithm");
    const want = createHmac("sha256", SECRET).update(`${parts[0]}.${parts[1]}`).digest();
    const got = Buffer.from(parts[2].replace(/-/g, "+").replace(/_/g, "/"), "base64");
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw new Error("bad signature");
    if (claims.exp && claims.exp < Date.now() / 1000) throw new Error("token expired");
  }
  return { id: String(claims.sub), role: claims.role ?? "customer", name: claims.name ?? "viewer" };
}

// ---- rooms ----
const rooms = new Map(); // id or slug -> room
function spotlight() {
  return {
    id: "00000000-0000-4000-8000-000000000001", title: "Aurora Running Sneaker", description: "reference product",
    image_urls: [], seller_id: "00000000-0000-4000-8000-0000000000aa",
    variants: [{ id: "00000000-0000-4000-8000-000000000011", sku: "SNK-REF-42", color: "black", size: "42",
      price_minor: 8900, currency: "USD", available: STOCK }],
  };
}
function room(idOrSlug) {
  let r = rooms.get(idOrSlug);
  if (!r) {
    r = { id: idOrSlug, slug: idOrSlug, seq: 0, history: [], recent: [], totals: Object.fromEntries(KINDS.map((k) => [k, 0])),
      pending: {}, counted: -1, spotlight: spotlight() };
    rooms.set(idOrSlug, r);
  }
  return r;
}
function publish(r, event, data, latestKey = null) {
  r.seq += 1;
  const payload = { ...data, seq: r.seq }; // seq last, as live encodes it
  r.history.push({ seq: r.seq, event, data: payload, ts: Date.now(), latestKey });
  if (r.history.length > HISTORY) r.history.shift();
  io.to(r.id).emit(event, payload);
  return payload;
}
function since(r, lastSeq) {
  if (lastSeq > r.seq || lastSeq < 0) return null;
  const items = r.history.filter((e) => e.seq > lastSeq);
  if (lastSeq === r.seq) return [];
  if (!items.length || items[0].seq !== lastSeq + 1 || items[0].ts < Date.now() - 300_000) return null;
  const newest = {};
  for (const e of items) if (e.latestKey) newest[e.latestKey] = e.seq;
  return items.filter((e) => !e.latestKey || newest[e.latestKey] === e.seq).map((e) => [e.event, e.data]);
}

// ---- limits ----
const hits = new Map();
function allow(key, limit, perMs) {
  const now = Date.now();
  const list = (hits.get(key) ?? []).filter((t) => now - t < perMs);
  if (list.length >= limit) { hits.set(key, list); return false; }
  list.push(now);
  hits.set(key, list);
  return true;
}

const ok = (extra = {}) => ({ ok: true, ...extra });
const err = (code, message) => ({ ok: false, error: { code, message } });

// ---- server ----
const http = createServer((req, res) => {
  if (req.url === "/metrics") {
    res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
    res.end(metricsText());
  } else if (req.url === "/healthz" || req.url === "/api/v1/healthz") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ status: "ok", server: "reference" }));
  } else {
    res.writeHead(404);
    res.end();
  }
});
const io = new Server(http, { maxHttpBufferSize: 16 * 1024, pingInterval: 25000, pingTimeout: 20000, cors: { origin: "*" } });

io.use((socket, next) => {
  const token = socket.handshake.auth?.token;
  try {
    socket.data.user = token ? verify(token) : null;
    count("live_socket_connects", 'result="ok"');
    next();
  } catch (e) {
    count("live_socket_connects", 'result="refused"');
    const error = new Error("unauthorized");
    error.data = { code: "unauthorized", message: e.message };
    next(error);
  }
});

const handlers = {
  join(socket, p) {
    if (typeof p.stream_id !== "string" || !p.stream_id) return err("invalid", "stream_id: required");
    const r = room(p.stream_id);
    socket.join(r.id);
    socket.data.rooms.add(r.id);
    const base = { seq: r.seq, epoch: EPOCH, media: null };
    if (Number.isInteger(p.last_seq) && p.epoch === EPOCH) {
      const events = since(r, p.last_seq);
      if (events) return ok({ ...base, recovered: true, events });
    }
    return ok({ ...base, recovered: false, stream: { id: r.id, slug: r.slug, title: "Reference show", description: null,
      status: "live", seller: null, slow_mode_seconds: 0, peak_viewers: 0 }, viewers: io.sockets.adapter.rooms.get(r.id)?.size ?? 0,
      spotlight: r.spotlight, chat: r.recent, reactions: r.totals });
  },
  leave(socket, p) {
    socket.leave(p.stream_id);
    socket.data.rooms.delete(p.stream_id);
    return ok({ stream_id: p.stream_id });
  },
  "chat:send"(socket, p) {
    const user = socket.data.user;
    if (!user) return err("unauthorized", "sign in to chat");
    const text = typeof p.text === "string" ? p.text.trim() : "";
    if (text.length < 1 || text.length > 500) return err("invalid", "text must be 1 to 500 characters");
    const r = room(p.stream_id ?? [...socket.data.rooms][0]);
    if (!allow(`chat:${r.id}:${user.id}`, 5, 10_000)) return err("rate_limited", "at most 5 messages per 10 s");
    const message = { id: ++messageId, stream_id: r.id, user, text, ts: Date.now() / 1000 };
    const sent = publish(r, "chat:new", message);
    r.recent.push(sent);
    if (r.recent.length > 50) r.recent.shift();
    return ok({ message: sent });
  },
  reaction(socket, p) {
    const user = socket.data.user;
    if (!user) return err("unauthorized", "sign in first");
    const r = room(p.stream_id ?? [...socket.data.rooms][0]);
    if (!socket.data.rooms.has(r.id)) return err("invalid", "join the stream first");
    if (!KINDS.includes(p.kind)) return err("invalid", `kind must be one of ${KINDS.join(", ")}`);
    if (!allow(`react:${user.id}`, 10, 1000)) return err("rate_limited", "too many reactions");
    r.pending[p.kind] = (r.pending[p.kind] ?? 0) + 1;
    return ok();
  },
  "cart:add"(socket, p) {
    const user = socket.data.user;
    if (!user) return err("unauthorized", "sign in to buy");
    const qty = Number.isInteger(p.qty) ? p.qty : 1;
    if (qty < 1 || qty > 99) return err("invalid", "qty must be 1 to 99");
    for (const r of new Set(rooms.values())) {
      const variant = r.spotlight.variants.find((v) => v.id === p.variant_id);
      if (!variant) continue;
      if (variant.available < qty) return err("out_of_stock", "not enough stock");
      variant.available -= qty;
      const cart = carts.get(user.id) ?? { items: [] };
      cart.items.push({ variant_id: variant.id, qty });
      carts.set(user.id, cart);
      publish(r, "stock:update", { stream_id: r.id, product_id: r.spotlight.id, variant_id: variant.id,
        available: variant.available }, `stock:${variant.id}`);
      return ok({ cart });
    }
    return err("not_found", "variant not found");
  },
};
const NAMED = { join: "live_joins", "chat:send": "live_chat_messages", reaction: "live_reactions", "cart:add": "live_cart_adds" };
let messageId = 0;
const carts = new Map();

io.on("connection", (socket) => {
  socket.data.rooms = new Set();
  socket.onAny((event, ...rest) => {
    const ack = typeof rest[rest.length - 1] === "function" ? rest.pop() : null;
    const payload = rest[0];
    const handler = Object.hasOwn(handlers, event) ? handlers[event] : null;
    let result;
    if (!handler) result = err("invalid", `unknown event ${JSON.stringify(String(event).slice(0, 64))}`);
    else if (payload === null || typeof payload !== "object" || Array.isArray(payload)) result = err("invalid", `${event} expects an object payload`);
    else result = handler(socket, payload);
    const label = `result="${result.ok ? "ok" : result.error.code}"`;
    count("live_socket_events", `event="${handler ? event : "unknown"}",${label}`);
    if (NAMED[event]) count(NAMED[event], label);
    if (ack) ack(result);
  });
});

setInterval(() => { // reactions, at most every 250 ms
  for (const r of new Set(rooms.values())) {
    const counts = r.pending;
    if (!Object.keys(counts).length) continue;
    r.pending = {};
    for (const [k, n] of Object.entries(counts)) r.totals[k] += n;
    publish(r, "reactions", { stream_id: r.id, counts, totals: { ...r.totals } }, "reactions");
  }
}, 250);
setInterval(() => { // viewer counts, once a second when changed
  for (const r of new Set(rooms.values())) {
    const n = io.sockets.adapter.rooms.get(r.id)?.size ?? 0;
    if (n === r.counted) continue;
    r.counted = n;
    publish(r, "viewer:count", { stream_id: r.id, count: n }, "viewers");
  }
}, 1000);

http.listen(PORT, HOST, () => {
  console.error(`reference socket.io ${HOST}:${PORT} (pid ${process.pid}, tokens ${SECRET ? "verified HS256" : "accepted unverified"}, stock ${STOCK})`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { io.close(); process.exit(0); });
