// One live room over Socket.IO (the vendored official client), as docs/protocol.md asks of any client: the token
// in `auth`, `join` with an ack, and on every (re)connect `join` again with the last seq and epoch held, so a
// dropped connection recovers what it missed.
import { io } from '/static/vendor/socket.io.esm.min.js';

const ACK_TIMEOUT_MS = 10000;

export function openRoom(stream, token, { joined, event, error, disconnected } = {}) {
  // A websocket from the start (the server's lean path), long-polling only where a websocket cannot open. Polling
  // first (the client's default) raced a refused token: the refusal closes the session while the client's next
  // poll is already on its way, which the server then answers 400 (an error in the console).
  // `batch: 1`: the events of one room write come as one `batch` event, [[name, data], ...] (docs/protocol.md
  // Delivery), each handled below as if it had come alone, in order.
  const auth = token ? { token, batch: 1 } : { batch: 1 };
  const socket = io({ auth, transports: ['websocket', 'polling'], tryAllTransports: true });
  let seq = null;
  let epoch = null;
  const see = (name, data) => {
    if (data && typeof data.seq === 'number') {
      if (seq !== null && data.seq <= seq) return; // already seen (a recovery may overlap live events)
      seq = data.seq;
    }
    event?.(name, data);
  };
  socket.onAny((name, data) => {
    if (name !== 'batch') see(name, data);
    else if (Array.isArray(data)) for (const item of data) if (Array.isArray(item)) see(item[0], item[1]);
  });
  socket.on('connect', async () => {
    const payload = { stream_id: stream };
    if (seq !== null && epoch !== null) Object.assign(payload, { last_seq: seq, epoch });
    let ack;
    try {
      ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('join', payload);
    } catch {
      ack = { ok: false, error: { code: 'timeout', message: 'The server did not answer.' } };
    }
    if (ack.ok) {
      epoch = ack.epoch;
      if (ack.recovered) {
        for (const [name, data] of ack.events) see(name, data);
        if (seq === null || ack.seq > seq) seq = ack.seq;
      } else {
        seq = ack.seq; // a fresh snapshot (maybe a new epoch, whose seq may be lower): count from it
      }
    }
    joined?.(ack);
  });
  socket.on('connect_error', (err) => error?.(err));
  // `reconnecting`: false after the server's Socket.IO disconnect (a flood, a ban from the server), which the
  // client does not recover from by itself; true after a transport close (a network drop, a worker restarting)
  socket.on('disconnect', (reason) => disconnected?.(reason, socket.active));
  return socket;
}
