// The seller's go-live page (/studio/live/<stream>): camera and microphone preview, "Go live" publishes by WHIP
// (starting a scheduled stream first), "Stop" ends the WHIP session; the OBS settings to copy. When the join ack
// names LiveKit, "Go live" publishes the camera to the stream's LiveKit room instead (livekit.js).
import { api, requireSession, signInAgain } from './api.js';
import { LiveKitSession } from './livekit.js';
import { openRoom } from './room.js';
import { livePanel } from './studio_panel.js';
import { streamSettings } from './studio_settings.js';
import { publish } from './webrtc.js';

const root = document.getElementById('studio');
const preview = document.getElementById('preview');
const goLive = document.getElementById('golive');
const stopBtn = document.getElementById('stop');
const cameraBtn = document.getElementById('camera');
const errorBox = document.getElementById('studio-error');
const publishState = document.getElementById('publish-state');
const statusEl = document.getElementById('stream-status');
const note = document.getElementById('backend-note');
const copyState = document.getElementById('copy-state');

const me = requireSession();
let stream = null; // the join ack's stream
let media = null;
let camera = null; // the local MediaStream
let publishing = null; // the WHIP MediaSession, or the LiveKitSession
let socket = null; // the room's socket (js/room.js)

function setPublishing(text, live) {
  publishState.textContent = text;
  publishState.classList.toggle('live', live);
  root.dataset.publishing = live ? 'yes' : 'no';
}

const CAMERA_ERRORS = {
  NotAllowedError: 'The browser was not allowed to use the camera and microphone: allow them for this site and try again.',
  NotFoundError: 'No camera or microphone was found: plug one in, or publish from OBS below.',
  NotReadableError: 'The camera or microphone is busy in another application: close it there and try again.',
  OverconstrainedError: 'The camera cannot send a picture this page can use: try another camera.',
};

function fail(e) {
  if (e.status === 401) return signInAgain();
  errorBox.textContent = e.code === 'conflict'
    ? 'Someone is already publishing this stream (OBS or another tab): stop it there first.'
    : CAMERA_ERRORS[e.name] ?? e.message;
}

// Browsers give the camera only to secure pages (https, or http on localhost): elsewhere (a phone on a LAN
// address over plain http) navigator.mediaDevices is missing altogether.
class CameraUnavailable extends Error {}

function whipUrl() {
  return media?.publish_url ?? `/api/v1/livestreams/${encodeURIComponent(stream.id)}/whip`;
}

async function startCamera() {
  if (camera) return camera;
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new CameraUnavailable(window.isSecureContext
      ? 'This browser cannot use a camera: publish from OBS below.'
      : 'The camera works only on a secure page: open the studio over https (or on localhost), or publish ' +
        'from OBS below.');
  }
  camera = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: true });
  preview.srcObject = camera;
  preview.play().catch(() => {});
  cameraBtn.hidden = true;
  return camera;
}

// `ended`: the server has ended the session already (the stream ended): nothing to DELETE.
async function stopPublishing({ ended = false } = {}) {
  const s = publishing;
  publishing = null;
  if (s && ended) s.close();
  else if (s) await s.stop();
  stopBtn.hidden = true;
  goLive.hidden = false;
  goLive.disabled = stream?.status === 'ended';
  setPublishing('Not publishing', false);
}

cameraBtn.addEventListener('click', () => startCamera().catch(fail));

goLive.addEventListener('click', async () => {
  errorBox.textContent = '';
  goLive.disabled = true;
  try {
    // the camera first: starting the stream is irreversible (it becomes live, followers are told), so a
    // missing or refused camera must stop us before it
    await startCamera();
    if (stream.status === 'scheduled') {
      stream.status = (await api(`/api/v1/livestreams/${encodeURIComponent(stream.id)}/start`, { method: 'POST' }))
        .status;
      statusEl.textContent = stream.status;
    }
    setPublishing('Connecting…', false);
    if (media.kind === 'livekit') await publishLiveKit();
    else await publishWhip();
    goLive.hidden = true;
    stopBtn.hidden = false;
    stopBtn.focus();
  } catch (e) {
    goLive.disabled = false;
    setPublishing('Not publishing', false);
    fail(e);
  }
});

async function publishWhip() {
  const s = await publish(whipUrl(), me.token, camera);
  publishing = s;
  s.pc.addEventListener('connectionstatechange', () => {
    if (publishing !== s) return;
    if (s.pc.connectionState === 'connected') setPublishing('Live: your video is on air', true);
    if (s.pc.connectionState === 'failed') {
      errorBox.textContent = 'The connection to the server was lost: go live again.';
      stopPublishing();
    }
  });
}

let lkTries = 0;
async function publishLiveKit() {
  let onAir = false; // connected and the camera published
  const s = new LiveKitSession(socket, () => stream.id, media, {
    media(renewed) { media = renewed; }, // going live again starts from the newest token, not the join ack's
    state(st) {
      if (publishing !== s) return;
      if (st === 'connected') { if (onAir) setPublishing('Live: your video is on air', true); }
      else if (st === 'reconnecting') setPublishing('Reconnecting…', false);
      else if (st !== 'ended') { // 'ended': the stream:status event says so
        errorBox.textContent = st === 'removed' ? 'The video server removed you from this stream’s room.'
          : 'The connection to the video server was lost: go live again.';
        stopPublishing();
      }
    },
  });
  publishing = s;
  try {
    if (lkTries++ > 0) await s.refresh().catch(() => {}); // going live again: a fresh token (else the newest)
    await s.connect();
    await s.publish(camera);
  } catch (e) {
    if (publishing === s) publishing = null;
    s.stop();
    throw new Error(`Could not go live: ${e.message}.`);
  }
  onAir = true;
  setPublishing('Live: your video is on air', true);
}

stopBtn.addEventListener('click', () => stopPublishing());

for (const btn of document.querySelectorAll('[data-copy]')) {
  btn.addEventListener('click', async () => {
    const input = document.getElementById(btn.dataset.copy);
    let copied = false;
    try {
      await navigator.clipboard.writeText(input.value);
      copied = true;
    } catch {
      // no async clipboard (a page that is not secure): copy the selection; a password field's text cannot be
      // selected, so it is a text field for this one statement only and hidden again at once (OBS often
      // captures the screen: the token must not stay visible)
      const type = input.type;
      input.type = 'text';
      input.select();
      try { copied = document.execCommand('copy'); } catch { copied = false; }
      input.type = type;
      input.setSelectionRange(0, 0);
      input.blur();
    }
    btn.textContent = copied ? 'Copied' : 'Copy failed';
    copyState.textContent = copied ? '' : 'This browser did not let the page copy: open the studio over https ' +
      '(or on localhost) and try again.';
  });
}

if (me) {
  setPublishing('Not publishing', false);
  goLive.disabled = true;
  const panel = livePanel({ socket: () => socket, me });
  const settings = streamSettings({ onSaved(s) {
    document.getElementById('stream-title').textContent = `Go live: ${s.title}`;
  } });
  socket = openRoom(root.dataset.stream, me.token, {
    joined(ack) {
      if (!ack.ok) {
        errorBox.textContent = `Could not open the stream: ${ack.error.message}`;
        return;
      }
      media = ack.media ?? media;
      if (media?.kind === 'livekit') publishing?.setMedia?.(media); // its newer token
      if (ack.recovered) {
        if (media?.can_publish) panel.recovered(); // the seller's own events (sales) are not recovered: read again
        return;
      }
      stream = ack.stream;
      document.getElementById('stream-title').textContent = `Go live: ${stream.title}`;
      statusEl.textContent = stream.status;
      document.getElementById('viewers').textContent = ack.viewers;
      if (!media?.can_publish) {
        errorBox.textContent = 'Only this stream’s seller can go live here.';
        return;
      }
      panel.joined(ack);
      settings.joined(ack);
      if (media.kind === 'livekit') {
        // OBS cannot use this server's WHIP endpoint then (409 livekit_backend): it goes through a LiveKit ingress
        note.hidden = false;
        note.textContent = 'This server sends video through LiveKit: “Go live” publishes your camera there.';
        document.getElementById('obs-h').closest('section').hidden = true;
      } else {
        document.getElementById('obs-url').value = new URL(whipUrl(), location.href).href;
        document.getElementById('obs-token').value = me.token;
      }
      goLive.disabled = stream.status === 'ended' || publishing !== null;
      if (stream.status === 'ended') errorBox.textContent = 'This stream has ended: create a new one to go live again.';
    },
    event(name, data) {
      if (!stream) return;
      if (media?.can_publish) {
        panel.event(name, data);
        settings.event(name, data);
      }
      if (name === 'viewer:count') document.getElementById('viewers').textContent = data.count;
      else if (name === 'stream:status') {
        statusEl.textContent = stream.status = data.status;
        if (data.status === 'ended') {
          stopPublishing({ ended: true });
          errorBox.textContent = 'This stream has ended: create a new one to go live again.';
        }
      }
    },
    error(err) { if (err.data?.code === 'unauthorized') signInAgain(); else errorBox.textContent = err.message; },
  });
  window.addEventListener('pagehide', () => { publishing?.stop(); });
}
