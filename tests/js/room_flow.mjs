// Join/chat/highlight flow with the official socket.io-client, as a browser would run it.
// Usage: node room_flow.mjs <base-url> <viewer-token> <seller-token> <product-id>
// Prints one JSON line with what each side saw; exits non-zero on a failure.
import { io } from "socket.io-client";

const [base, viewerToken, sellerToken, productId] = process.argv.slice(2);
const timeout = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms));
const connect = (token) => new Promise((resolve, reject) => {
  // default transports: long-polling first, then the upgrade to websocket, like a browser
  const s = io(base, { auth: token ? { token } : undefined, reconnection: false });
  s.on("connect", () => resolve(s));
  s.on("connect_error", reject);
});
const once = (s, event, pred = () => true) => new Promise((resolve) => {
  const h = (data) => { if (pred(data)) { s.off(event, h); resolve(data); } };
  s.on(event, h);
});

async function main() {
  const viewer = await connect(viewerToken);
  const seller = await connect(sellerToken);
  const anon = await connect(null);
  const result = {};
  result.viewerJoin = await viewer.emitWithAck("join", { stream_id: "demo" });
  result.sellerJoin = await seller.emitWithAck("join", { stream_id: "demo" });
  result.anonJoin = await anon.emitWithAck("join", { stream_id: "demo" });
  const seen = Promise.race([Promise.all([once(seller, "chat:new"), once(anon, "chat:new")]), timeout(10000, "chat:new")]);
  result.chatAck = await viewer.emitWithAck("chat:send", { stream_id: "demo", text: "hello from socket.io-client" });
  result.chatSeen = await seen;
  result.anonChat = await anon.emitWithAck("chat:send", { stream_id: "demo", text: "nope" });
  const highlighted = Promise.race([once(viewer, "product:highlighted"), timeout(10000, "product:highlighted")]);
  result.viewerHighlight = await viewer.emitWithAck("product:highlight", { stream_id: "demo", product_id: productId });
  result.highlightAck = await seller.emitWithAck("product:highlight", { stream_id: "demo", product_id: productId });
  result.highlighted = await highlighted;
  result.transport = viewer.io.engine.transport.name;
  for (const s of [viewer, seller, anon]) s.disconnect();
  console.log(JSON.stringify(result));
}

main().catch((err) => { console.error(String(err && err.stack || err)); process.exit(1); });
