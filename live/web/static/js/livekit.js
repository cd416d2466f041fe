// Publishing and playing through LiveKit, when the join ack's media names it (`media.kind == "livekit"`,
// docs/media.md): the seller's camera and microphone are published to the stream's LiveKit room, a viewer
// subscribes and gets the seller's video and audio as one MediaStream. livekit-client (vendored, ~155 KB
// gzipped) is imported here on first use only, so the pages served by the embedded media server never load it.
// The access token is renewed over the room's socket (`media:refresh`) before it expires: LiveKit does not cut a
// connection whose token expired, but a new connection (a retry, a reconnection) needs a valid one. A renewal that
// fails is tried again every 30 s while the token lives; each renewed token is handed to the page (`on.media`), so
// its next attempt starts from it and not from the join ack's.

const CLIENT = '/static/vendor/livekit-client.esm.min.js';
const ACK_TIMEOUT_MS = 10000;
const CONNECT_TIMEOUT_MS = 10000; // LiveKit's signalling answer, then the media connection: each this long at most
const REFRESH_EARLY_S = 60; // renew the token this long before it expires (at the latest at 80 % of its life)
const REFRESH_RETRY_MS = 30000; // a failed renewal is tried again this soon (while the token has not expired)

let loading = null;

// livekit-client's module, imported once (a failed import is tried again on the next call)
export function loadLiveKit() {
  loading ??= import(CLIENT).then((lk) => {
    lk.setLogLevel('warn');
    return lk;
  }, (e) => {
    loading = null;
    throw e;
  });
  return loading;
}

// An error the page can show as it is (`message`), with `code`: refused (the token was not accepted),
// unreachable (no answer, a network or server failure) or client (livekit-client could not be loaded).
export class LiveKitError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'LiveKitError';
    this.code = code;
  }
}

function explain(lk, e) {
  if (e instanceof LiveKitError) return e;
  if (e instanceof lk.ConnectionError && e.reason === lk.ConnectionErrorReason.NotAllowed) {
    return new LiveKitError('refused', `the video server refused the connection${e.status ? ` (${e.status})` : ''}`);
  }
  return new LiveKitError('unreachable', 'the video server could not be reached');
}

// One connection to the stream's LiveKit room. `socket`: the page's room socket (js/room.js), for media:refresh;
// `streamRef()`: the stream's id; `on.state(state, detail)`: 'connected', 'reconnecting' (livekit-client
// resumes by itself), 'lost' (it gave up: connect again), 'removed' (the server removed this person: banned),
// 'ended' (the room was deleted: the stream ended); `on.stream(MediaStream | null)` for a viewer;
// `on.media(media)`: a renewed token (the page keeps it for its next attempt).
export class LiveKitSession {
  constructor(socket, streamRef, media, on = {}) {
    this.socket = socket;
    this.streamRef = streamRef;
    this.on = on;
    this.room = null;
    this.joined = false; // connect() succeeded: a disconnection is then 'lost' (before, connect() throws)
    this.closed = false;
    this.refreshTimer = null;
    this.remote = new MediaStream();
    this.setMedia(media);
  }

  // A newer media (a join ack after a reconnection, a refresh): its token is used from now on.
  setMedia(media) {
    if (media?.kind !== 'livekit') return;
    this.media = media;
    const life = Number(media.expires_in) || 900;
    this.expiresAt = Date.now() + life * 1000;
    this.renewIn(Math.max(5, Math.min(life - REFRESH_EARLY_S, life * 0.8)) * 1000);
  }

  // The next renewal in `ms`; a failed one is tried again in 30 s while the token lives, then given up (a new
  // connection asks for a token itself, a join ack after a reconnection brings one), and never for a banned user.
  renewIn(ms) {
    clearTimeout(this.refreshTimer);
    if (this.closed) return;
    this.refreshTimer = setTimeout(() => this.refresh().catch((e) => {
      if (e.code !== 'banned' && Date.now() + REFRESH_RETRY_MS < this.expiresAt) this.renewIn(REFRESH_RETRY_MS);
    }), ms);
  }

  // A new token over the socket (the server refuses a banned user: code `banned`).
  async refresh() {
    const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck('media:refresh', { stream_id: this.streamRef() });
    if (!ack?.ok) throw new LiveKitError(ack?.error?.code ?? 'refused', ack?.error?.message ?? 'no new token');
    this.setMedia(ack.media);
    this.on.media?.(ack.media);
    return ack.media;
  }

  async connect() {
    let lk;
    try {
      lk = await loadLiveKit();
    } catch {
      throw new LiveKitError('client', 'the video player could not be loaded');
    }
    if (this.closed) throw new LiveKitError('closed', 'closed');
    const room = new lk.Room({ adaptiveStream: false, dynacast: true });
    this.room = room;
    this.listen(lk, room);
    try {
      await room.connect(this.media.url, this.media.token, { autoSubscribe: true,
        websocketTimeout: CONNECT_TIMEOUT_MS, peerConnectionTimeout: CONNECT_TIMEOUT_MS });
    } catch (e) {
      this.room = null;
      room.removeAllListeners();
      await room.disconnect(false).catch(() => {});
      throw explain(lk, e);
    }
    if (this.closed) {
      await room.disconnect(false);
      throw new LiveKitError('closed', 'closed');
    }
    this.joined = true;
    return this;
  }

  listen(lk, room) {
    const E = lk.RoomEvent;
    const mine = () => this.room === room && !this.closed;
    room.on(E.Reconnecting, () => { if (mine()) this.on.state?.('reconnecting'); });
    room.on(E.Reconnected, () => { if (mine()) this.on.state?.('connected'); });
    room.on(E.Connected, () => { if (mine()) this.on.state?.('connected'); });
    room.on(E.Disconnected, (reason) => {
      if (!mine() || !this.joined) return;
      this.room = null;
      const R = lk.DisconnectReason;
      this.on.state?.(reason === R.PARTICIPANT_REMOVED ? 'removed' : reason === R.ROOM_DELETED ? 'ended' : 'lost');
    });
    room.on(E.TrackSubscribed, (track) => {
      if (!mine() || !track.mediaStreamTrack) return;
      // the seller's newest video and audio (only the seller's token may publish in the room)
      for (const old of this.remote.getTracks()) if (old.kind === track.kind) this.remote.removeTrack(old);
      this.remote.addTrack(track.mediaStreamTrack);
      this.on.stream?.(this.remote);
    });
    room.on(E.TrackUnsubscribed, (track) => {
      if (!mine()) return;
      if (track.mediaStreamTrack) this.remote.removeTrack(track.mediaStreamTrack);
      if (!this.remote.getVideoTracks().length) this.on.stream?.(null);
    });
  }

  // The seller's camera and microphone (a MediaStream from getUserMedia) into the room.
  async publish(camera) {
    const lk = await loadLiveKit();
    const participant = this.room?.localParticipant;
    if (!participant) throw new LiveKitError('unreachable', 'the video server connection was lost');
    for (const track of camera.getTracks()) {
      await participant.publishTrack(track, { source: track.kind === 'video' ? lk.Track.Source.Camera
        : lk.Track.Source.Microphone });
    }
  }

  // Leave the room (the page's stop, a new attempt, the page unloading).
  async stop() {
    this.closed = true;
    clearTimeout(this.refreshTimer);
    const room = this.room;
    this.room = null;
    if (room) await room.disconnect(false).catch(() => {}); // false: the seller's camera preview stays on
  }

  close() {
    this.stop();
  }
}
