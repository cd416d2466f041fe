// A refused connection as the official socket.io-client sees it: `connect_error` with err.message and err.data.
// Usage: node connect_error.mjs <base-url> <token>
// Prints one JSON line {message, data}; exits non-zero when no connect_error came.
import { io } from "socket.io-client";

const [base, token] = process.argv.slice(2);
const s = io(base, { auth: { token }, reconnection: false, transports: ["websocket"] });
const timer = setTimeout(() => { console.error("timeout: no connect_error"); process.exit(1); }, 10000);
s.on("connect", () => { console.error("connected with a bad token"); process.exit(1); });
s.on("connect_error", (err) => {
  clearTimeout(timer);
  console.log(JSON.stringify({ message: err.message, data: err.data === undefined ? "undefined" : err.data }));
  s.close();
});
