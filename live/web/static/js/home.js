// The home page (docs/web.md "Home"): live now, coming up and replays, each a shelf of cards read from the public
// GET /api/v1/livestreams?status=...&limit=... ("Show more" asks for a longer page, up to the API's 100). The live
// and coming-up shelves are read again every 30 s while the page is visible: cards are kept by stream id and only
// what changed is touched (viewer counts, streams that ended or went live), so focus and scroll stay put. A
// scheduled card offers to follow its seller (js/home_follow.js).
import { api } from './api.js';
import { el, withTimeout } from './format.js';
import { Follows } from './home_follow.js';

const PAGE = 12;
const MAX = 100; // the API's largest limit
const REFRESH_MS = 30000;

const when = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short',
});
const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', year: 'numeric' });

const follows = new Follows();

// The picture of a card: the live thumbnail while live, else the cover, else the seller's thumbnail URL.
function pictureOf(s) {
  return (s.status === 'live' && s.live_thumbnail_url) || s.cover_url || s.thumbnail_url || null;
}

function placeholder(s) {
  return el('span', { class: 'placeholder', 'aria-hidden': 'true' },
    (s.title || '?').trim().charAt(0).toUpperCase());
}

function timeEl(iso, format) {
  return el('time', { datetime: iso }, format.format(new Date(iso)));
}

// What a card says under its title: the viewers (live), the start (scheduled) or the day it was streamed.
function details(s) {
  if (s.status === 'live') return [`${s.viewers ?? 0} watching`];
  if (s.status === 'scheduled') return s.scheduled_at ? ['Starts ', timeEl(s.scheduled_at, when)] : ['Not scheduled yet'];
  return s.ended_at ? ['Streamed ', timeEl(s.ended_at, day)] : [];
}

function card(s) {
  const slug = encodeURIComponent(s.slug);
  const href = s.status === 'ended' ? `/replay/${slug}` : `/live/${slug}`;
  const thumb = el('div', { class: 'thumb' });
  const src = pictureOf(s);
  if (src) {
    const img = el('img', { src, alt: '', loading: 'lazy', decoding: 'async' });
    img.addEventListener('error', () => img.replaceWith(placeholder(s)), { once: true });
    thumb.append(img);
  } else {
    thumb.append(placeholder(s));
  }
  if (s.status === 'live') thumb.append(el('span', { class: 'badge live' }, 'Live'));
  if (s.status === 'ended') thumb.append(el('span', { class: 'badge' }, 'Replay'));
  const link = el('a', { class: 'stream-card', href }, thumb, el('h3', {}, s.title),
    el('p', { class: 'seller muted' }, s.seller?.name ?? ''), el('p', { class: 'meta' }, ...details(s)));
  const li = el('li', { 'data-id': s.id }, link);
  if (s.status === 'scheduled' && s.seller?.id) li.append(follows.control(s.seller));
  return li;
}

// A card already shown, brought up to date in place (a text node is written only when it changed).
function update(li, s) {
  const set = (node, text) => { if (node.textContent !== text) node.textContent = text; };
  set(li.querySelector('h3'), s.title);
  const meta = li.querySelector('.meta');
  const iso = s.status === 'scheduled' ? s.scheduled_at : s.ended_at;
  if (s.status === 'live') set(meta, details(s)[0]);
  else if ((meta.querySelector('time')?.getAttribute('datetime') ?? null) !== (iso ?? null)) {
    meta.replaceChildren(...details(s));
  }
}

class Shelf {
  constructor(list) {
    this.list = list;
    this.status = list.dataset.status;
    this.empty = list.dataset.empty;
    this.refreshes = 'refresh' in list.dataset;
    const part = (name) => document.getElementById(`${list.id}-${name}`);
    this.heading = part('title');
    this.state = part('state');
    this.error = part('error');
    this.more = part('more');
    this.retry = part('retry');
    this.limit = PAGE;
    this.asked = 0; // requests made, so that an older answer never overwrites a newer one
    this.applied = 0; // the request whose answer is shown
    this.loading = false;
    this.more.addEventListener('click', () => {
      if (this.loading) return;
      this.limit = Math.min(this.limit + PAGE, MAX);
      this.load();
    });
    this.retry.addEventListener('click', () => { if (!this.loading) this.load(); });
  }

  // `quiet`: the periodic refresh, which shows no "Loading…", disables nothing (a focused button would lose its
  // focus) and leaves the shelf as it was when it fails (the next refresh tries again).
  async load({ quiet = false } = {}) {
    const n = ++this.asked;
    const shown = this.list.children.length;
    const moreFocused = document.activeElement === this.more;
    const retryFocused = document.activeElement === this.retry;
    if (!quiet) {
      this.list.setAttribute('aria-busy', 'true');
      this.busy(true);
      if (!shown) this.state.textContent = 'Loading…';
    }
    try {
      const { items } = await withTimeout(api(`/api/v1/livestreams?status=${this.status}&limit=${this.limit}`,
        { token: null })); // a public list: no token (an expired one would only fail it)
      if (n < this.applied) return;
      this.applied = n;
      this.render(items);
      this.state.textContent = items.length ? '' : this.empty;
      this.error.hidden = true;
      this.retry.hidden = true;
      this.more.hidden = items.length < this.limit || this.limit >= MAX;
      if (moreFocused && this.more.hidden && items.length > shown) {
        this.list.children[shown].querySelector('a').focus(); // keyboard: on to the first new card
      } else if (retryFocused) {
        (this.list.querySelector('a') ?? this.heading).focus(); // "Try again" is gone: to what it brought
      }
    } catch (e) {
      if (quiet || n < this.applied) return;
      this.state.textContent = '';
      this.error.textContent = `Could not load this list: ${e.message}.`;
      this.error.hidden = false;
      this.retry.hidden = false;
    } finally {
      if (!quiet) {
        this.list.setAttribute('aria-busy', 'false');
        this.busy(false);
      }
    }
  }

  // aria-disabled, not disabled: a button that becomes disabled loses the focus (keyboard users would start over
  // from the top of the page after each "Show more")
  busy(on) {
    this.loading = on;
    for (const b of [this.more, this.retry]) b.setAttribute('aria-disabled', String(on));
  }

  // The cards of `items`, in order, reusing those shown: new ones are added, gone ones removed, the others updated.
  // Focus inside a card that stays is kept; on a card that went, it moves to the card now in its place (or the
  // shelf's heading).
  render(items) {
    const active = this.list.contains(document.activeElement) ? document.activeElement : null;
    const focusedCard = active?.closest('li') ?? null;
    const focusedAt = focusedCard ? [...this.list.children].indexOf(focusedCard) : -1;
    const old = new Map([...this.list.children].map((li) => [li.dataset.id, li]));
    const ids = new Set(items.map((s) => s.id));
    for (const [id, li] of old) if (!ids.has(id)) li.remove();
    items.forEach((s, i) => {
      let li = old.get(s.id);
      if (li) update(li, s);
      else li = card(s);
      const at = this.list.children[i] ?? null;
      if (at !== li) this.list.insertBefore(li, at);
    });
    if (!active) return;
    if (active.isConnected) {
      if (document.activeElement !== active) active.focus({ preventScroll: true }); // moved: focus again
    } else {
      const cards = this.list.children;
      const next = cards[Math.min(focusedAt, cards.length - 1)]?.querySelector('a') ?? this.heading;
      next.focus({ preventScroll: true });
    }
  }
}

const shelves = [...document.querySelectorAll('#home ul.cards')].map((list) => new Shelf(list));
const first = Promise.all(shelves.map((s) => s.load()));
follows.ready.then(() => first).then(() => follows.resume());

// Every 30 s while the page is visible; a page shown again after that long is read again at once.
let timer = null;
let last = Date.now();
function refresh() {
  last = Date.now();
  for (const s of shelves) if (s.refreshes) s.load({ quiet: true });
  schedule();
}
function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => (document.hidden ? null : refresh()), REFRESH_MS);
}
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && Date.now() - last >= REFRESH_MS) refresh();
});
schedule();
