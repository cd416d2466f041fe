// The replay page (docs/web.md "Replay"): a stream's recording (GET /api/v1/livestreams/{id}/replay, the files at
// /replays/<name> played with range requests), its product timeline (a click seeks there; the product on screen at
// the playhead, with its price and "Add to cart" through the REST cart), and the chat replayed in time (the
// history pages of GET /api/v1/livestreams/{id}/chat, shown up to the playhead's moment, a bounded list).
import { api, session, signInUrl } from './api.js';
import { el, money, withTimeout } from './format.js';

const CHAT_SHOWN = 100; // messages on screen at most
const CHAT_PAGE = 200; // the API's largest page
const CHAT_PAGES = 20; // at most 4,000 messages read

const root = document.getElementById('replay');
const ref = root.dataset.stream;
const $ = (id) => document.getElementById(id);
const video = $('video');
const state = $('replay-state');

let streamId = null;
let parts = []; // playable recordings, oldest first
let current = -1; // index in parts
let entries = []; // timeline entries of every part: {part, offset, product_id, title}
let messages = []; // chat, oldest first: {ts, name, role, text}
let shownUpTo = -1;
const products = new Map(); // product id -> Promise of the product (or null: no longer for sale)
let productShown = undefined;
let describeVariant = () => {}; // the selected variant's price and stock, and whether it can be added

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function fail(text) {
  state.textContent = '';
  $('replay-error').textContent = text;
  $('replay-error').hidden = false;
}

// ---------------------------------------------------------------- the recording and its parts

function selectPart(i, { at = 0, play = false } = {}) {
  if (i !== current) {
    current = i;
    const part = parts[i];
    video.src = part.url;
    $('part').value = String(i);
    shownUpTo = -1;
  }
  const seek = () => {
    video.currentTime = at;
    if (play) video.play().catch(() => {}); // a refused autoplay leaves the controls to the viewer
  };
  if (video.readyState >= 1) seek();
  else video.addEventListener('loadedmetadata', seek, { once: true });
  update();
}

function showParts() {
  const select = $('part');
  select.replaceChildren(...parts.map((p, i) => el('option', { value: String(i) },
    `${i + 1} of ${parts.length}${p.duration_ms ? ` (${clock(p.duration_ms)})` : ''}`)));
  select.addEventListener('change', () => selectPart(Number(select.value), { play: !video.paused }));
  $('parts').hidden = parts.length < 2;
  video.addEventListener('ended', () => { // several parts: play them in order
    if (current + 1 < parts.length) selectPart(current + 1, { play: true });
  });
}

// ---------------------------------------------------------------- the product timeline

function buildTimeline(replay) {
  const index = new Map(parts.map((p, i) => [p.id, i]));
  parts.forEach((p, i) => {
    if (p.spotlight_at_start) entries.push({ part: i, offset: 0, ...p.spotlight_at_start });
  });
  for (const t of replay.timeline) {
    if (t.recording_id && index.has(t.recording_id) && t.offset_ms !== null) {
      entries.push({ part: index.get(t.recording_id), offset: t.offset_ms, product_id: t.product_id,
        title: t.title });
    }
  }
  entries.sort((a, b) => a.part - b.part || a.offset - b.offset);
  const list = $('timeline');
  for (const e of entries) {
    if (!e.product_id) continue; // a cleared spotlight: nothing to jump to, the card hides there
    const where = parts.length > 1 ? `part ${e.part + 1}, ${clock(e.offset)}` : clock(e.offset);
    const button = el('button', { type: 'button', class: 'link' },
      el('span', { class: 'at' }, where), ' ', e.title ?? 'A product');
    button.addEventListener('click', () => selectPart(e.part, { at: e.offset / 1000, play: true }));
    e.item = el('li', {}, button);
    list.append(e.item);
  }
  $('timeline-box').hidden = list.children.length === 0;
}

function entryAt(part, ms) {
  let found = null;
  for (const e of entries) {
    if (e.part === part && e.offset <= ms) found = e;
  }
  return found;
}

// ---------------------------------------------------------------- the product on screen

function product(id) {
  if (!products.has(id)) {
    products.set(id, withTimeout(api(`/api/v1/products/${encodeURIComponent(id)}`, { token: null }))
      .catch((e) => (e.status === 404 ? null : Promise.reject(e))));
  }
  return products.get(id);
}

async function showProduct(entry) {
  const id = entry?.product_id ?? null;
  if (id === productShown) return;
  productShown = id;
  const card = $('product');
  if (!id) {
    card.hidden = true;
    return;
  }
  $('product-name').textContent = entry.title ?? '';
  $('product-price').textContent = '';
  $('product-stock').textContent = 'Loading…';
  $('add-to-cart').hidden = $('signin-to-buy').hidden = true;
  $('variant-box').hidden = true;
  $('cart-state').textContent = '';
  $('cart-error').hidden = true;
  card.hidden = false;
  let p;
  try {
    p = await product(id);
  } catch (e) {
    if (productShown === id) $('product-stock').textContent = `Could not load the product: ${e.message}.`;
    return;
  }
  if (productShown !== id) return; // the playhead moved on meanwhile
  const variants = p ? p.variants : [];
  if (!p || p.status !== 'active' || !variants.length) {
    $('product-stock').textContent = 'No longer for sale.';
    return;
  }
  $('product-name').textContent = p.title;
  const select = $('variant');
  select.replaceChildren(...variants.map((v) => el('option', { value: v.id },
    [v.color, v.size].filter(Boolean).join(' · ') || v.sku)));
  $('variant-box').hidden = variants.length < 2;
  const describe = () => {
    const v = variants.find((x) => x.id === select.value) ?? variants[0];
    $('product-price').textContent = money(v.price_minor, v.currency);
    $('product-stock').textContent = v.available > 0 ? `${v.available} available` : 'Sold out';
    $('add-to-cart').disabled = v.available <= 0;
  };
  select.onchange = describe;
  describeVariant = describe;
  describe();
  if (session()) $('add-to-cart').hidden = false;
  else $('signin-to-buy').hidden = false;
}

async function addToCart() {
  const button = $('add-to-cart');
  const variantId = $('variant').value;
  button.disabled = true;
  $('cart-error').hidden = true;
  $('cart-state').textContent = 'Adding…';
  try {
    await withTimeout(api('/api/v1/me/cart/items', {
      method: 'POST', body: { variant_id: variantId, qty: 1, stream_id: streamId } }));
    $('cart-state').textContent = 'Added to your cart.';
  } catch (e) {
    $('cart-state').textContent = '';
    if (e.status === 401) {
      $('cart-error').textContent = 'Your session has ended: sign in again to buy.';
      $('signin-to-buy').hidden = false;
      button.hidden = true;
    } else {
      $('cart-error').textContent = `Could not add it: ${e.message}.`;
    }
    $('cart-error').hidden = false;
  } finally {
    describeVariant(); // enabled again unless the variant is sold out
  }
}

// ---------------------------------------------------------------- the chat replayed in time

async function loadChat(since) {
  const box = $('chat-box');
  box.hidden = false;
  $('chat-state').textContent = 'Loading the chat…';
  const pages = [];
  let before = null;
  try {
    for (let i = 0; i < CHAT_PAGES; i++) {
      const q = `limit=${CHAT_PAGE}${before ? `&before=${before}` : ''}`;
      const page = await withTimeout(api(`/api/v1/livestreams/${encodeURIComponent(streamId)}/chat?${q}`,
        { token: null }));
      pages.unshift(page.items);
      before = page.next_before;
      if (!before || !page.items.length || page.items[0].ts < since) break;
    }
  } catch (e) {
    $('chat-state').textContent = `Could not load the chat: ${e.message}.`;
    return;
  }
  messages = pages.flat().map((m) => ({ ts: m.ts, name: m.user?.name ?? 'someone', role: m.user?.role,
    text: m.text }));
  $('chat-state').textContent = messages.length ? '' : 'Nobody wrote in the chat.';
  shownUpTo = -1;
  update();
}

// how many messages were written by `wall` (epoch seconds)
function countUpTo(wall) {
  let lo = 0;
  let hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (messages[mid].ts <= wall) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function showChat(upTo) {
  if (upTo === shownUpTo) return;
  shownUpTo = upTo;
  const list = $('chat');
  const items = messages.slice(Math.max(0, upTo - CHAT_SHOWN), upTo).map((m) => {
    const who = el('span', { class: 'who' }, m.name);
    if (m.role === 'seller' || m.role === 'admin') who.append(' ', el('span', { class: 'badge' }, m.role));
    return el('li', {}, who, ' ', m.text);
  });
  list.replaceChildren(...items);
  list.scrollTop = list.scrollHeight;
  if (messages.length) $('chat-state').textContent = upTo ? '' : 'Messages appear as the replay reaches them.';
}

// ---------------------------------------------------------------- the playhead

let pending = false;
function update() {
  if (pending || current < 0) return;
  pending = true;
  requestAnimationFrame(() => { // one DOM write per frame, whatever fired
    pending = false;
    const ms = video.currentTime * 1000;
    const entry = entryAt(current, ms);
    for (const e of entries) e.item?.removeAttribute('aria-current');
    entry?.item?.setAttribute('aria-current', 'true');
    showProduct(entry);
    const wall = Date.parse(parts[current].started_at) / 1000 + video.currentTime;
    showChat(countUpTo(wall));
  });
}

// ---------------------------------------------------------------- start

async function start() {
  let stream;
  let replay;
  try {
    stream = await withTimeout(api(`/api/v1/livestreams/${encodeURIComponent(ref)}`, { token: null }));
    streamId = stream.id;
    document.title = `${stream.title} (replay) · live`;
    $('replay-title').textContent = stream.title;
    $('seller').textContent = stream.seller?.name ?? '';
    replay = await withTimeout(api(`/api/v1/livestreams/${encodeURIComponent(streamId)}/replay`));
  } catch (e) {
    if (e.status === 404) fail('There is no such stream.');
    else if (e.code === 'banned') fail('You are banned from this stream: its replay is not shown to you.');
    else fail(`Could not load the replay: ${e.message}.`);
    return;
  }
  parts = replay.recordings.filter((r) => r.status === 'ready' && r.url)
    .sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at));
  if (!parts.length) {
    const busy = replay.recordings.some((r) => r.status === 'recording');
    state.textContent = '';
    state.append(busy ? 'The recording is not finished yet. ' : 'This stream has no recording. ');
    if (stream.status !== 'ended') {
      state.append(el('a', { href: `/live/${encodeURIComponent(stream.slug)}` }, 'Watch it live'));
    }
    return;
  }
  const playable = parts.filter((p) => !p.content_type || video.canPlayType(p.content_type));
  if (!playable.length) {
    fail(`This browser cannot play the recording (${parts[0].content_type}).`);
    return;
  }
  parts = playable;
  if (stream.ended_at) {
    const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', year: 'numeric' });
    $('streamed').textContent = `· streamed ${day.format(new Date(stream.ended_at))}`;
  }
  state.textContent = '';
  $('player').hidden = false;
  showParts();
  buildTimeline(replay);
  $('add-to-cart').addEventListener('click', addToCart);
  $('signin-to-buy').href = signInUrl();
  for (const type of ['timeupdate', 'seeked', 'loadedmetadata']) video.addEventListener(type, update);
  video.addEventListener('error', () => fail('The recording could not be played.'));
  selectPart(0);
  loadChat(Date.parse(parts[0].started_at) / 1000);
}

start();
