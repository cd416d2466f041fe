// The home page (docs/web.md "Home"): live now, coming up and replays, each a shelf of cards read from the public
// GET /api/v1/livestreams?status=...&limit=... ("Show more" asks for a longer page, up to the API's 100).
import { api } from './api.js';

const PAGE = 12;
const MAX = 100; // the API's largest limit
const TIMEOUT_MS = 10000; // then the shelf says the server did not answer, with "Try again"

const when = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short',
});
const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', year: 'numeric' });

function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

function withTimeout(promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('the server did not answer')), TIMEOUT_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// The picture of a card: the live thumbnail while live, else the cover, else the seller's thumbnail URL.
function pictureOf(s) {
  return (s.status === 'live' && s.live_thumbnail_url) || s.cover_url || s.thumbnail_url || null;
}

function placeholder(s) {
  const p = el('span', { className: 'placeholder' }, (s.title || '?').trim().charAt(0).toUpperCase());
  p.setAttribute('aria-hidden', 'true');
  return p;
}

function timeEl(iso, format) {
  const t = el('time', {}, format.format(new Date(iso)));
  t.dateTime = iso;
  return t;
}

function card(s) {
  const slug = encodeURIComponent(s.slug);
  const href = s.status === 'ended' ? `/replay/${slug}` : `/live/${slug}`;
  const thumb = el('div', { className: 'thumb' });
  const src = pictureOf(s);
  if (src) {
    const img = el('img', { src, alt: '', loading: 'lazy', decoding: 'async' });
    img.addEventListener('error', () => img.replaceWith(placeholder(s)), { once: true });
    thumb.append(img);
  } else {
    thumb.append(placeholder(s));
  }
  if (s.status === 'live') thumb.append(el('span', { className: 'badge live' }, 'Live'));
  if (s.status === 'ended') thumb.append(el('span', { className: 'badge' }, 'Replay'));

  const info = el('p', { className: 'meta' });
  if (s.status === 'live') {
    info.append(`${s.viewers ?? 0} watching`);
  } else if (s.status === 'scheduled') {
    info.append(...(s.scheduled_at ? ['Starts ', timeEl(s.scheduled_at, when)] : ['Not scheduled yet']));
  } else if (s.ended_at) {
    info.append('Streamed ', timeEl(s.ended_at, day));
  }
  const link = el('a', { className: 'stream-card', href },
    thumb, el('h3', {}, s.title), el('p', { className: 'seller muted' }, s.seller?.name ?? ''), info);
  return el('li', {}, link);
}

class Shelf {
  constructor(list) {
    this.list = list;
    this.status = list.dataset.status;
    this.empty = list.dataset.empty;
    const part = (name) => document.getElementById(`${list.id}-${name}`);
    this.state = part('state');
    this.error = part('error');
    this.more = part('more');
    this.retry = part('retry');
    this.limit = PAGE;
    this.more.addEventListener('click', () => {
      this.limit = Math.min(this.limit + PAGE, MAX);
      this.load();
    });
    this.retry.addEventListener('click', () => this.load());
  }

  async load() {
    const shown = this.list.children.length;
    const moreFocused = document.activeElement === this.more;
    this.list.setAttribute('aria-busy', 'true');
    this.more.disabled = this.retry.disabled = true;
    if (!shown) this.state.textContent = 'Loading…';
    try {
      const { items } = await withTimeout(api(`/api/v1/livestreams?status=${this.status}&limit=${this.limit}`,
        { token: null })); // a public list: no token (an expired one would only fail it)
      this.list.replaceChildren(...items.map(card));
      this.state.textContent = items.length ? '' : this.empty;
      this.error.hidden = true;
      this.retry.hidden = true;
      this.more.hidden = items.length < this.limit || this.limit >= MAX;
      if (moreFocused && this.more.hidden && items.length > shown) {
        this.list.children[shown].querySelector('a').focus(); // keyboard: on to the first new card
      }
    } catch (e) {
      this.state.textContent = '';
      this.error.textContent = `Could not load this list: ${e.message}.`;
      this.error.hidden = false;
      this.retry.hidden = false;
    } finally {
      this.list.setAttribute('aria-busy', 'false');
      this.more.disabled = this.retry.disabled = false;
    }
  }
}

for (const list of document.querySelectorAll('#home ul.cards')) new Shelf(list).load();
