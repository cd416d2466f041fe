// Buy from the live room with the official socket.io-client, as a browser would:
// join the demo stream, add the spotlighted product with cart:add, check out over REST (sandbox provider),
// confirm on the sandbox page, and wait for order:update with status "paid".
// Usage: node checkout_flow.mjs <base-url> <buyer-token>
// Prints one JSON line with what the client saw; exits non-zero on a failure.
import { io } from "socket.io-client";

const [base, token] = process.argv.slice(2);
const timeout = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms));
const updates = [];
const waitFor = (pred, what) => Promise.race([
  new Promise((resolve) => {
    const check = () => { const hit = updates.find(pred); if (hit) { resolve(hit); return true; } return false; };
    if (!check()) { const t = setInterval(() => { if (check()) clearInterval(t); }, 20); }
  }),
  timeout(15000, what),
]);

async function main() {
  const socket = await new Promise((resolve, reject) => {
    // default transports: long-polling first, then the upgrade to websocket
    const s = io(base, { auth: { token }, reconnection: false });
    s.on("connect", () => resolve(s));
    s.on("connect_error", reject);
  });
  const stock = [];
  socket.on("stock:update", (d) => stock.push(d));
  socket.on("order:update", (d) => updates.push(d));
  const result = {};
  result.join = await socket.emitWithAck("join", { stream_id: "demo" });
  const variant = result.join.spotlight.variants[0];
  result.add = await socket.emitWithAck("cart:add", { variant_id: variant.id, qty: 1, idempotency_key: "js-1" });
  result.retry = await socket.emitWithAck("cart:add", { variant_id: variant.id, qty: 1, idempotency_key: "js-1" });
  const auth = { Authorization: `Bearer ${token}` };
  const checkout = await fetch(`${base}/api/v1/checkout`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json", "Idempotency-Key": "js-checkout-1" },
    body: JSON.stringify({ address: { name: "JS Buyer", line1: "2 Node Way", city: "Accra", country: "GH" } }),
  });
  result.checkoutStatus = checkout.status;
  result.checkout = await checkout.json();
  const order = result.checkout.orders[0];
  result.pending = await waitFor((u) => u.order.id === order.id && u.order.status === "pending_payment", "pending");
  // the confirm page's JSON form of the Pay button (docs/payments.md)
  const path = new URL(result.checkout.payment.authorization_url).pathname;
  const confirm = await fetch(`${base}${path}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ outcome: "succeeded" }),
  });
  result.confirmStatus = confirm.status;
  result.confirm = await confirm.json();
  result.paid = await waitFor((u) => u.order.id === order.id && u.order.status === "paid", "paid");
  const mine = await fetch(`${base}/api/v1/me/orders/${order.id}`, { headers: auth });
  result.order = await mine.json();
  result.stockSeen = stock.filter((s) => s.variant_id === variant.id).map((s) => s.available);
  result.before = variant.available;
  result.transport = socket.io.engine.transport.name;
  socket.disconnect();
  console.log(JSON.stringify(result));
}

main().catch((err) => { console.error(String(err && err.stack || err)); process.exit(1); });
