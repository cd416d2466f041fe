// WHIP (publish) and WHEP (play) from a browser: an RTCPeerConnection, its offer POSTed as application/sdp once
// ICE gathering is done (no trickle: the server takes every candidate in the offer), the 201's SDP answer applied,
// and the session's Location kept to DELETE it when done.
import { ApiError, authHeaders, errorOf } from './api.js';

const GATHER_TIMEOUT_MS = 3000; // host candidates come at once; this only bounds a stuck gathering

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export class MediaSession {
  constructor(pc, location, token) {
    this.pc = pc;
    this.location = location;
    this.token = token;
  }

  // End the session on the server, then close the connection (closing first would let the server end it on its
  // own and answer the DELETE 404). keepalive: the DELETE also goes out while the page unloads.
  async stop() {
    const location = this.location;
    this.location = null;
    if (location) {
      await fetch(location, { method: 'DELETE', headers: authHeaders(this.token), keepalive: true }).catch(() => {});
    }
    this.pc.close();
  }

  // Close the connection only: the server has ended the session already (a WHEP viewer's, when publishing stops).
  close() {
    this.location = null;
    this.pc.close();
  }
}

async function negotiate(pc, url, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const resp = await fetch(url, {
    method: 'POST', headers: { 'Content-Type': 'application/sdp', ...authHeaders(token) }, body: pc.localDescription.sdp,
  });
  if (resp.status !== 201) throw await errorOf(resp);
  const where = resp.headers.get('Location');
  if (!where) throw new ApiError(resp.status, 'invalid', 'the server sent no session Location');
  const location = new URL(where, new URL(url, window.location.href)).href;
  try {
    await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
  } catch (e) {
    await fetch(location, { method: 'DELETE', headers: authHeaders(token) }).catch(() => {});
    throw e;
  }
  return location;
}

// WHIP: send the stream's tracks.
export async function publish(url, token, stream) {
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  try {
    return new MediaSession(pc, await negotiate(pc, url, token), token);
  } catch (e) {
    pc.close();
    throw e;
  }
}

// WHEP: receive video and audio; onStream(MediaStream) when the tracks arrive.
export async function play(url, token, onStream) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.addEventListener('track', (ev) => {
    stream.addTrack(ev.track);
    onStream(stream);
  });
  try {
    return new MediaSession(pc, await negotiate(pc, url, token), token);
  } catch (e) {
    pc.close();
    throw e;
  }
}
