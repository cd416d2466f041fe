// The watch page (/live/<stream>): joins the room, plays the video by WHEP while the seller publishes
// (media:status), shows the viewer count, and hands the room's events to the chat (chat.js), the reactions
// (reactions.js) and the spotlight card (spotlight.js); the cart drawer is cart.js (templates/_cart_drawer.html).
// When the join ack names LiveKit, the video comes from the stream's LiveKit room instead (livekit.js).
import { api, clearSession, session, signInUrl } from './api.js';
import { createChat } from './chat.js';
import { LiveKitSession } from './livekit.js';
import { createReactions } from './reactions.js';
import { openRoom } from './room.js';
import { createSpotlight } from './spotlight.js';
import { play } from './webrtc.js';

const RETRY_MS = [1000, 2000, 4000, 8000]; // a failed playback is tried again after these, then every 8 s
// A connected playback whose video shows no new frame for this long while the page is visible is started again
// (a new WHEP session asks the publisher for a keyframe: a viewer that missed one would wait for the next).
const STALL_MS = 4000;

const root = document.getElementById('watch');
const video = document.getElementById('video');
const state = document.getElementById('video-state');
const unmute = document.getElementById('unmute');
const tapPlay = document.getElementById('tap-play');
const retryBtn = document.getElementById('video-retry');
let token = session()?.token ?? null;

let stream = null; // the join ack's stream
let media = null; // the join ack's media
let playing = null; // the WHEP MediaSession, or the LiveKitSession
let generation = 0; // bumped by every start/stop: an older attempt that finishes late gives up
let failures = 0;
let retryTimer = null;

function show(text) {
  state.textContent = text;
  state.hidden = !text;
  root.dataset.video = text ? 'off' : 'playing';
}

function whepUrl() {
  return media?.kind === 'whep' && media.url ? media.url : `/api/v1/livestreams/${encodeURIComponent(stream.id)}/whep`;
}

// `ended`: the server has ended the session already (publishing stopped): nothing to DELETE.
async function stopPlayback(text, { ended = false } = {}) {
  generation += 1;
  clearTimeout(retryTimer);
  const old = playing;
  playing = null;
  video.srcObject = null;
  tapPlay.hidden = true;
  retryBtn.hidden = true;
  show(text);
  if (old && ended) old.close();
  else if (old) await old.stop();
}

function retry(gen) {
  const delay = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
  failures += 1;
  retryTimer = setTimeout(() => { if (gen === generation) startPlayback(); }, delay);
}

async function startPlayback() {
  if (!stream || stream.status === 'ended') return;
  if (media?.kind === 'livekit') return startLiveKit();
  await stopPlayback('Connecting to the video…');
  const gen = generation;
  try {
    const s = await play(whepUrl(), token, (ms) => {
      if (gen !== generation) return;
      if (video.srcObject !== ms) video.srcObject = ms;
      tryPlay();
    });
    if (gen !== generation) return s.stop();
    playing = s;
    watchStalls(s, gen);
    s.pc.addEventListener('connectionstatechange', () => {
      if (gen !== generation) return;
      if (s.pc.connectionState === 'connected') failures = 0;
      if (s.pc.connectionState === 'failed') {
        show('The video connection was lost. Reconnecting…');
        retry(gen);
      }
    });
  } catch (e) {
    if (gen !== generation) return;
    if (e.code === 'conflict') show('Waiting for the seller to go live…'); // media:status {publishing: true} restarts
    else if (e.code === 'banned') show('You cannot watch this stream.');
    else if (e.status === 401 && token) { // the token expired while watching: go on as a guest, as the socket does
      signedOut();
      retry(gen);
    } else {
      show(`The video could not start (${e.message}). Trying again…`);
      retry(gen);
    }
  }
}

// LiveKit: connected while the stream is live; the seller's tracks come when they publish (and go when they stop).
async function startLiveKit() {
  const again = failures > 0;
  await stopPlayback('Connecting to the video…');
  const gen = generation;
  const s = new LiveKitSession(room, streamRef, media, {
    media(renewed) { media = renewed; }, // a later attempt starts from the newest token, not the join ack's
    stream(ms) {
      if (gen !== generation) return;
      video.srcObject = ms;
      if (ms) tryPlay();
      else show('Waiting for the seller to go live…');
    },
    state(st) {
      if (gen !== generation) return;
      if (st === 'connected') {
        failures = 0;
        show(s.remote.getVideoTracks().length ? '' : 'Waiting for the seller to go live…');
      } else if (st === 'reconnecting') show('The video connection was lost. Reconnecting…');
      else if (st === 'removed') stopPlayback('You cannot watch this stream.', { ended: true });
      else if (st === 'ended') stopPlayback('This stream has ended.', { ended: true });
      else if (st === 'lost') {
        s.stop();
        playing = null;
        video.srcObject = null;
        failed('The video connection was lost.', gen, true);
      }
    },
  });
  playing = s;
  try {
    if (again) await s.refresh().catch(() => {}); // a new attempt gets a fresh token (else the newest it had)
    await s.connect();
  } catch (e) {
    s.stop();
    if (gen !== generation) return;
    playing = null;
    // a refused token is not tried again by itself (a ban, a clock far off): the person can
    failed(`The video could not connect: ${e.message}.`, gen, e.code !== 'refused');
  }
}

function failed(text, gen, again) {
  show(again ? `${text} Trying again…` : text);
  retryBtn.hidden = false;
  if (again) retry(gen);
}

retryBtn.addEventListener('click', () => {
  retryBtn.hidden = true;
  failures = Math.max(failures, 1);
  startPlayback();
});

// Autoplay may be refused even muted (iPhone Low Power Mode, a browser setting): then a tap plays it.
function tryPlay() {
  video.play().then(() => { tapPlay.hidden = true; }).catch((e) => {
    if (e.name !== 'NotAllowedError' || !playing && !video.srcObject) return; // AbortError: a newer source
    show('The browser did not start the video by itself.');
    tapPlay.hidden = false;
  });
}

tapPlay.addEventListener('click', () => {
  tapPlay.hidden = true;
  tryPlay();
});

function watchStalls(s, gen) {
  let last = -1;
  let since = performance.now();
  const timer = setInterval(() => {
    if (gen !== generation) return clearInterval(timer);
    const frames = video.getVideoPlaybackQuality().totalVideoFrames;
    if (frames !== last || document.visibilityState !== 'visible' || s.pc.connectionState !== 'connected'
        || video.paused) { // paused: waiting for "Tap to play", not stalled
      last = frames;
      since = performance.now();
    } else if (performance.now() - since > STALL_MS) {
      clearInterval(timer);
      show('The video stalled. Reconnecting…');
      retry(gen);
    }
  }, 1000);
}

video.addEventListener('playing', () => {
  if (playing) show('');
  tapPlay.hidden = true;
  unmute.hidden = !video.muted;
});
unmute.addEventListener('click', () => {
  video.muted = false;
  unmute.hidden = true;
  tryPlay();
});

function setStatus(status) {
  const was = stream.status;
  stream.status = status;
  if (status === 'ended') stopPlayback('This stream has ended.', { ended: true }); // the server ended the sessions
  else if (status === 'scheduled') stopPlayback('This stream has not started yet.');
  else if (was === 'scheduled' && !playing && media?.kind === 'livekit') startPlayback();
  else if (was === 'scheduled' && !playing) show('Waiting for the seller to go live…'); // media:status plays it
}

const connection = document.getElementById('connection');
function connectionState(state, text) {
  connection.dataset.state = state;
  connection.textContent = text;
}

// The token was refused (expired, signed out everywhere): watching is open to anyone, so forget it, say so, and
// go on as an anonymous viewer (socket.io-client does not retry a refused connection by itself).
function signedOut() {
  token = null;
  clearSession();
  const note = document.getElementById('signed-out');
  note.querySelector('a').href = signInUrl();
  note.hidden = false;
  document.getElementById('who').textContent = '';
  document.getElementById('signin-link').hidden = false;
  document.getElementById('signout').hidden = true;
  chat.setUser(null);
  reactions.setUser(null);
  delete room.auth.token; // room.auth is openRoom's auth object, sent again on every (re)connect
  room.connect();
}

const room = openRoom(root.dataset.stream, token, {
  disconnected(reason, reconnecting) {
    if (reconnecting) connectionState('reconnecting', '· Reconnecting…');
    else {
      connectionState('closed', '· Disconnected: reload the page to reconnect.');
      // the server cuts the sockets of a user who signed out everywhere: is it that?
      if (token) api('/api/v1/me', { token }).catch((e) => { if (e.status === 401 && token) signedOut(); });
    }
  },
  joined(ack) {
    if (ack.ok) connectionState('live', '');
    if (!ack.ok) {
      show(ack.error.code === 'banned' ? 'You cannot watch this stream.' : ack.error.code === 'not_found'
        ? 'There is no such stream.' : `Could not join the stream: ${ack.error.message}`);
      return;
    }
    media = ack.media ?? media;
    if (media?.kind === 'livekit') playing?.setMedia?.(media); // its newer token
    if (ack.recovered) return; // the missed events were replayed (chat included); the video plays on
    stream = ack.stream;
    chat.reset(stream, ack.chat);
    reactions.reset(ack.reactions);
    spotlight.reset(ack.spotlight);
    document.getElementById('stream-title').textContent = stream.title;
    document.title = `${stream.title} · live`;
    document.getElementById('seller').textContent = stream.seller?.name ?? '';
    document.getElementById('viewers').textContent = ack.viewers;
    setStatus(stream.status);
    if (stream.status === 'live' && !playing) startPlayback();
  },
  event(name, data) {
    if (!stream) return;
    chat.event(name, data);
    reactions.event(name, data);
    spotlight.event(name, data);
    if (name === 'viewer:count') document.getElementById('viewers').textContent = data.count;
    else if (name === 'media:status') {
      failures = 0;
      if (media?.kind === 'livekit') { // the room stays joined: LiveKit brings and takes the seller's tracks
        if (data.publishing && !playing && stream.status === 'live') startPlayback();
      } else if (data.publishing) startPlayback();
      else if (stream.status === 'live') stopPlayback('Waiting for the seller to go live…', { ended: true });
      else stopPlayback(state.textContent, { ended: true }); // ended or scheduled: that says more
    } else if (name === 'stream:status') {
      setStatus(data.status);
      chat.status(data.status);
    }
    else if (name === 'user:banned' && data.user_id === session()?.user?.id) {
      stopPlayback('You cannot watch this stream.', { ended: true }); // the server closed the playback
    }
  },
  error(err) {
    if (token && ['unauthorized', 'suspended'].includes(err.data?.code)) signedOut();
    else if (!stream) show(`Could not connect: ${err.message}`);
  },
});
const streamRef = () => stream?.id ?? root.dataset.stream;
const me = session()?.user ?? null;
const chat = createChat(room, { me, streamRef });
const reactions = createReactions(room, { streamRef });
const spotlight = createSpotlight({ streamRef });
chat.setUser(me);
reactions.setUser(me);

// the cart drawer (cart.js) opens on live:open-cart and says the count with live:cart-changed
document.getElementById('cart-button').addEventListener('click', () => {
  document.dispatchEvent(new CustomEvent('live:open-cart'));
});
document.addEventListener('live:cart-changed', (ev) => {
  if (typeof ev.detail?.count === 'number') document.getElementById('cart-count').textContent = ev.detail.count;
});

window.addEventListener('pagehide', () => { playing?.stop(); });
