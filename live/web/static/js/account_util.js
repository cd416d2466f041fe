// What the account sections share: a small DOM builder, REST calls that keep the API's per-field errors, money and
// dates, the panel's status line and a "Load more" pager for the cursor-paged lists (docs/web.md, "Account").
import { ApiError, authHeaders, session, signInAgain } from './api.js';

export { money } from './format.js';

export const $ = (id) => document.getElementById(id);

// h('li', {class: 'x', onclick: fn}, child, 'text', ...): an element (children: nodes, strings, null skipped)
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  return put(el, ...children);
}

// el.append(...children) leaving out null, undefined and false (the DOM's append would write "null")
export function put(el, ...children) {
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

// REST like api.js, but a failure keeps the API's `details` ([{field, message}]) for per-field errors; a refused
// token sends the person to sign in again.
export async function call(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders(session()?.token) };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.');
  }
  if (resp.status === 401) {
    signInAgain();
    throw new ApiError(401, 'unauthorized', 'Please sign in again.');
  }
  if (!resp.ok) {
    const data = await resp.json().catch(() => null);
    const e = data?.error ?? {};
    const err = new ApiError(resp.status, e.code ?? `http_${resp.status}`, e.message ?? `HTTP ${resp.status}`);
    err.details = Array.isArray(e.details) ? e.details : [];
    throw err;
  }
  return resp.status === 204 ? null : resp.json();
}

export function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export const words = (s) => String(s).replaceAll('_', ' ');

// a status as a coloured badge: good (done, paid), wait (in progress), bad (failed, canceled), or neutral
const GOOD = new Set(['paid', 'delivered', 'refunded', 'approved', 'received']);
const WAIT = new Set(['pending_payment', 'processing', 'label_created', 'shipped', 'in_transit', 'out_for_delivery',
  'requested']);
const BAD = new Set(['canceled', 'delivery_failed', 'returned_to_sender', 'refused']);
export function badge(status) {
  const tone = GOOD.has(status) ? 'good' : WAIT.has(status) ? 'wait' : BAD.has(status) ? 'bad' : '';
  return h('span', { class: `status-badge ${tone}`, 'data-status': status }, words(status));
}

export function status(text) { $('panel-status').textContent = text; }

export function fail(e) {
  status('');
  $('panel-error').textContent = e.message || 'Something went wrong.';
}

export function clearError() { $('panel-error').textContent = ''; }

// A cursor-paged list: `load(cursor)` -> {items, next_cursor}; `render(item)` -> an <li>. A "Load more" button
// while there is a next page. `empty`: what an empty list says.
export function pagedList(container, { label, load, render, empty }) {
  const list = h('ul', { class: 'account-list', 'aria-label': label });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const emptyNote = h('p', { class: 'muted', hidden: true }, empty);
  container.append(emptyNote, list, h('div', { class: 'actions' }, more));
  let cursor = null;
  async function page() {
    more.disabled = true;
    clearError();
    try {
      const data = await load(cursor);
      for (const item of data.items) list.append(render(item));
      cursor = data.next_cursor ?? null;
      more.hidden = !cursor;
      emptyNote.hidden = list.children.length > 0;
      status('');
    } catch (e) {
      fail(e);
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', page);
  return { list, emptyNote, page, refresh() { list.replaceChildren(); cursor = null; return page(); } };
}

// Show the API's per-field errors beside the fields of `form` (inputs named like the API's fields); true if any.
export function fieldErrors(form, details) {
  let first = null;
  for (const d of details) {
    const name = String(d.field ?? '').split('.').pop();
    const input = form.elements.namedItem(name);
    const box = input && document.getElementById(`${input.id}-error`);
    if (!box) continue;
    box.textContent = d.message;
    input.setAttribute('aria-invalid', 'true');
    first ??= input;
  }
  first?.focus();
  return first !== null;
}

export function clearFieldErrors(form) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
}

// the unread notifications count beside the Notifications tab
export function showUnread(n) {
  const b = $('unread-badge');
  b.textContent = n > 0 ? `${n >= 1000 ? '999+' : n} unread` : '';
  b.hidden = !(n > 0);
}
