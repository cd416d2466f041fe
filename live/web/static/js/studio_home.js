// The studio's home (/studio; docs/web.md, "The studio"): the seller's shows (live, scheduled, ended: GET
// /api/v1/livestreams?status=&seller_id=, the shop's id read from GET /api/v1/seller/shipping) with a link to each
// one's go-live page, and a new show (POST /api/v1/livestreams, the API's per-field errors on their fields).
import { api, authHeaders, errorOf, requireSession, signInAgain } from './api.js';

const $ = (id) => document.getElementById(id);
const me = requireSession();
const GROUPS = [['live', 'Live now'], ['scheduled', 'Coming up'], ['ended', 'Ended']];
const FIELDS = { title: 'new-title', slug: 'new-slug', scheduled_at: 'new-start' };

function slugify(title) {
  return title.toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '').slice(0, 120);
}

function showItem(s) {
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.href = `/studio/live/${encodeURIComponent(s.slug)}`;
  a.textContent = s.title;
  const meta = document.createElement('span');
  meta.className = 'muted';
  const when = s.status === 'scheduled' ? s.scheduled_at : s.status === 'live' ? s.started_at : s.ended_at;
  meta.textContent = ` /live/${s.slug}${when ? ` · ${new Date(when).toLocaleString(undefined,
    { dateStyle: 'medium', timeStyle: 'short' })}` : ''}`;
  li.append(a, meta);
  if (s.status !== 'scheduled') { // a live or ended show's numbers and charts, described by the show's title
    a.id = `show-${s.id}`;
    const stats = document.createElement('a');
    stats.href = `/studio/streams/${encodeURIComponent(s.id)}/analytics`;
    stats.className = 'stats-link';
    stats.textContent = 'Analytics';
    stats.setAttribute('aria-describedby', a.id);
    li.append(' · ', stats);
  }
  return li;
}

async function loadShows(sellerId) {
  const list = $('shows');
  const groups = await Promise.all(GROUPS.map(([status]) =>
    api(`/api/v1/livestreams?status=${status}&seller_id=${encodeURIComponent(sellerId)}&limit=20`)));
  list.replaceChildren();
  GROUPS.forEach(([status, name], i) => {
    const items = groups[i].items ?? groups[i];
    if (!items.length) return;
    const li = document.createElement('li');
    const h = document.createElement('h3');
    h.textContent = name;
    const ul = document.createElement('ul');
    ul.className = `shows-${status}`;
    ul.append(...items.map(showItem));
    li.append(h, ul);
    list.append(li);
  });
  $('shows-state').textContent = list.children.length ? '' : 'No shows yet: create your first one below.';
}

let slugTouched = false;
$('new-slug').addEventListener('input', () => { slugTouched = true; $('slug-preview').textContent = $('new-slug').value; });
$('new-title').addEventListener('input', () => {
  if (slugTouched) return;
  $('new-slug').value = slugify($('new-title').value);
  $('slug-preview').textContent = $('new-slug').value || '…';
});

$('new-show').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('new-error').textContent = '';
  for (const id of Object.values(FIELDS)) {
    $(id).removeAttribute('aria-invalid');
    $(`${id}-error`).textContent = '';
  }
  const body = { title: $('new-title').value.trim(), slug: $('new-slug').value.trim() };
  if ($('new-start').value) body.scheduled_at = new Date($('new-start').value).toISOString();
  const button = ev.target.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const resp = await fetch('/api/v1/livestreams', { method: 'POST', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders(me.token) } });
    if (!resp.ok) {
      const data = await resp.clone().json().catch(() => null);
      const e = await errorOf(resp);
      if (e.status === 401) return signInAgain();
      // a slug taken already is a conflict about the slug field
      const details = data?.error?.details ?? (e.code === 'conflict' ? [{ field: 'slug', message: e.message }] : []);
      let first = null;
      for (const d of Array.isArray(details) ? details : []) {
        const id = FIELDS[String(d.field ?? '').split('.')[0]];
        if (!id) continue;
        $(id).setAttribute('aria-invalid', 'true');
        $(`${id}-error`).textContent = d.message;
        first ??= $(id);
      }
      if (first) first.focus(); else $('new-error').textContent = e.message;
      return undefined;
    }
    const s = await resp.json();
    location.assign(`/studio/live/${encodeURIComponent(s.slug)}`);
  } catch (e) {
    $('new-error').textContent = e.message;
  } finally {
    button.disabled = false;
  }
  return undefined;
});

if (me) {
  api('/api/v1/seller/shipping').then((shop) => {
    $('home-body').hidden = false;
    return loadShows(shop.seller_id);
  }).catch((e) => {
    if (e.status === 401) return signInAgain();
    $('shows-state').textContent = '';
    $('home-error').textContent = e.status === 403 || e.status === 404
      ? 'The studio is for sellers: this account has no shop.' : `Could not load your shows: ${e.message}`;
    return undefined;
  });
}
