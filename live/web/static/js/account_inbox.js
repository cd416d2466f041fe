// The account's Notifications (GET /api/v1/me/notifications, all or unread only; mark one or all read: POST
// .../read; new ones arrive live as `notification:new` on the user's socket) and Email preferences (GET/PUT
// /api/v1/me/notification-preferences: email and push per kind, transactional kinds locked).
import { io } from '/static/vendor/socket.io.esm.min.js';
import { session } from './api.js';
import { $, call, clearError, fail, h, put, showUnread, status, when } from './account_util.js';

const PAGE = 30;
const MAX_SHOWN = 200; // the list stays bounded: older items beyond this are dropped (reachable again by reload)

// a notification's url is a path of this site; anything else is not linked
const safePath = (url) => (typeof url === 'string' && url.startsWith('/') && !url.startsWith('//') ? url : null);

function notifications(body) {
  let unreadOnly = false;
  let cursor = null;
  const seen = new Set();
  const list = h('ul', { class: 'account-list', 'aria-label': 'Your notifications', 'aria-live': 'polite' });
  const empty = h('p', { class: 'muted', hidden: true }, 'No notifications.');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const allRead = h('button', { type: 'button', class: 'secondary' }, 'Mark all as read');
  const filter = h('input', { id: 'unread-only', type: 'checkbox' });
  const summary = h('p', { id: 'unread-summary', role: 'status' });
  const liveState = h('p', { id: 'live-state', class: 'muted' });
  body.append(h('div', { class: 'filters' }, h('label', { class: 'check', for: filter.id }, filter, 'Unread only'),
    allRead), summary, liveState, empty, list, h('div', { class: 'actions' }, more));

  function setUnread(n) {
    showUnread(n);
    summary.textContent = n > 0 ? `${n >= 1000 ? '1000+' : n} unread` : 'All read';
  }

  function markedRead(li) {
    li.classList.remove('unread');
    li.querySelector('.mark-one')?.remove();
    if (unreadOnly) li.remove();
    empty.hidden = list.children.length > 0;
  }

  function item(n) {
    const li = h('li', { 'data-notification': n.id, class: n.read_at ? '' : 'unread' });
    const path = safePath(n.url);
    li.append(h('div', { class: 'row' }, path ? h('a', { href: path }, n.title) : h('strong', {}, n.title),
      n.read_at ? null : h('span', { class: 'status-badge wait' }, 'unread')),
    h('p', { class: 'muted' }, when(n.created_at)));
    if (!n.read_at) {
      li.append(h('div', { class: 'actions' }, h('button', {
        type: 'button', class: 'secondary mark-one', onclick: async (ev) => {
          ev.target.disabled = true;
          clearError();
          try {
            setUnread((await call('/api/v1/me/notifications/read', { method: 'POST', body: { ids: [n.id] } })).unread);
            li.querySelector('.status-badge')?.remove();
            markedRead(li);
          } catch (e) {
            ev.target.disabled = false;
            fail(e);
          }
        },
      }, `Mark “${n.title}” as read`)));
    }
    return li;
  }

  async function page() {
    more.disabled = true;
    clearError();
    try {
      const q = `?limit=${PAGE}${unreadOnly ? '&unread=true' : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const data = await call(`/api/v1/me/notifications${q}`);
      for (const n of data.items) {
        if (seen.has(n.id) || list.children.length >= MAX_SHOWN) continue;
        seen.add(n.id);
        list.append(item(n));
      }
      cursor = list.children.length < MAX_SHOWN ? data.next_cursor : null;
      more.hidden = !cursor;
      empty.hidden = list.children.length > 0;
      setUnread(data.unread);
      status('');
    } catch (e) {
      fail(e);
    } finally {
      more.disabled = false;
    }
  }

  function reload() {
    list.replaceChildren();
    seen.clear();
    cursor = null;
    return page();
  }

  more.addEventListener('click', page);
  filter.addEventListener('change', () => { unreadOnly = filter.checked; reload(); });
  allRead.addEventListener('click', async () => {
    allRead.disabled = true;
    clearError();
    try {
      setUnread((await call('/api/v1/me/notifications/read', { method: 'POST', body: { all: true } })).unread);
      for (const li of [...list.querySelectorAll('li.unread')]) {
        li.querySelector('.status-badge')?.remove();
        markedRead(li);
      }
    } catch (e) {
      fail(e);
    } finally {
      allRead.disabled = false;
    }
  });

  // live: the user's socket (no room); after a reconnect the list is read again (docs/protocol.md)
  const socket = io({ auth: { token: session()?.token } });
  let connectedOnce = false;
  const paused = 'Live updates are paused: new notifications show after a reload.';
  socket.on('connect', () => {
    liveState.textContent = '';
    if (connectedOnce) reload();
    connectedOnce = true;
  });
  socket.on('connect_error', () => { if (!socket.active) liveState.textContent = paused; });
  socket.on('disconnect', () => { if (!socket.active) liveState.textContent = paused; });
  socket.on('notification:new', (data) => {
    const n = data?.notification;
    if (!n || seen.has(n.id)) return;
    seen.add(n.id);
    list.prepend(item(n));
    while (list.children.length > MAX_SHOWN) list.lastElementChild.remove();
    empty.hidden = true;
    setUnread(data.unread);
  });
  return page();
}

// ---- email preferences ----
async function preferences(body) {
  const data = await call('/api/v1/me/notification-preferences');
  const form = h('form', { novalidate: true, 'aria-label': 'Email and push preferences' });
  const saved = h('p', { class: 'ok', role: 'status' });
  const error = h('p', { class: 'error', role: 'alert' });
  const rows = data.items.map((p) => {
    const box = (channel) => {
      const input = h('input', { type: 'checkbox', name: `${p.kind}:${channel}`, 'data-kind': p.kind,
        'data-channel': channel, 'aria-label': `${p.label}: ${channel}`, disabled: p.transactional });
      input.checked = p.transactional || p[channel];
      return h('td', { class: 'toggle' }, input);
    };
    return h('tr', { 'data-kind': p.kind }, h('th', { scope: 'row' }, p.label,
      p.transactional ? h('span', { class: 'locked' }, 'Always sent: it is about your orders or account') : null),
    box('email'), box('push'));
  });
  const table = h('table', { class: 'prefs' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Kind'), h('th', { scope: 'col' }, 'Email'),
      h('th', { scope: 'col' }, 'Push'))), h('tbody', {}, rows));
  const note = data.all_optional.email ? null
    : h('p', { class: 'note' }, 'You unsubscribed from every optional email: turn a kind back on here.');
  put(form, note, table, error, saved, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save preferences')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    saved.textContent = '';
    error.textContent = '';
    const items = data.items.filter((p) => !p.transactional).map((p) => ({
      kind: p.kind,
      email: form.elements.namedItem(`${p.kind}:email`).checked,
      push: form.elements.namedItem(`${p.kind}:push`).checked,
    }));
    if (!items.length) {
      saved.textContent = 'Nothing to change: every kind you get is always sent.';
      return;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await call('/api/v1/me/notification-preferences', { method: 'PUT', body: { items } });
      saved.textContent = `Preferences saved at ${new Date().toLocaleTimeString()}.`;
    } catch (e) {
      error.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });
  body.append(form);
  status('');
}

export function show(section, body) {
  return Promise.resolve(section === 'preferences' ? preferences(body) : notifications(body)).catch(fail);
}
