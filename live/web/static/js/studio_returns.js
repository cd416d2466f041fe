// The shop's returns (/studio/returns; docs/web.md, "The studio"): GET /api/v1/seller/returns by status (20 a page,
// "Load more"), each with the buyer's reason, the items, the return label and the refund. A requested return is
// approved (POST .../approve: a return label is bought, shown when the carrier has it) or refused with a reason told
// to the buyer (POST .../refuse); an approved one whose label failed gets a new label; one on its way or back is
// marked received, with the refund (default: the items' paid price; 0: none) and the units back in stock (POST
// .../receive). Errors go under the return (or on the field). The seller's socket hears `order:update` carrying a
// `return` and redraws it; one without (the return label bought or failed) makes it read that order's return again.
import { io } from '/static/vendor/socket.io.esm.min.js';
import { requireSession, signInAgain } from './api.js';
import { call } from './cart.js';
import { el, money } from './format.js';
import { toMinor } from './studio_form.js';

const $ = (id) => document.getElementById(id);
const me = requireSession();
const list = $('returns');
const STATUS = { requested: 'To decide', approved: 'Approved', refused: 'Refused', canceled: 'Withdrawn',
  in_transit: 'On the way back', delivered: 'Back at the shop', received: 'Received', refunded: 'Refunded' };
const REASON = { damaged: 'Damaged', defective: 'Defective', wrong_item: 'Wrong item',
  not_as_described: 'Not as described', changed_mind: 'Changed their mind', other: 'Other' };
const RECEIVABLE = ['approved', 'in_transit', 'delivered'];
const RELABEL = ['purchase_failed', 'voided'];
let cursor = null;

const base = (r) => `/api/v1/seller/returns/${r.id}`;

function fail(err, e) {
  if (e.status === 401) return signInAgain();
  err.textContent = e.message;
  return undefined;
}

// POST an action; the answer (the return's detail) redraws it. A refusal is shown in `err` and returned.
async function act(r, action, body, err, button) {
  // a focused button that becomes disabled drops the focus: note first whether the keyboard was in this row
  const focused = button.closest('li[data-return]').contains(document.activeElement);
  button.disabled = true;
  err.textContent = '';
  try {
    const updated = await call(`${base(r)}/${action}`, { method: 'POST', body });
    show(updated, focused);
    return null;
  } catch (e) {
    button.disabled = false;
    fail(err, e);
    return e;
  }
}

function labelLine(r) {
  const l = r.label;
  if (!l) return null;
  if (RELABEL.includes(l.status)) return el('p', { class: 'error', text: 'The return label could not be bought (or was voided).' });
  if (!l.tracking_number) return el('p', { class: 'muted', text: 'Buying the return label from the carrier…' });
  return el('p', {}, 'Return label: ', el('strong', { text: `${l.carrier ?? ''} ${l.tracking_number}`.trim() }),
    ` (${l.status.replaceAll('_', ' ')})`);
}

function refuseForm(r, err, open) {
  const id = `refuse-${r.id}`;
  const reason = el('textarea', { id, rows: '2', maxlength: '1000', 'aria-describedby': `${id}-error` });
  const fieldErr = el('p', { id: `${id}-error`, class: 'error' });
  const form = el('form', { novalidate: true, hidden: true, 'aria-label': `Refuse the return of order ${r.order_number}`,
    onsubmit: (ev) => {
      ev.preventDefault();
      fieldErr.textContent = '';
      reason.removeAttribute('aria-invalid');
      if (!reason.value.trim()) {
        reason.setAttribute('aria-invalid', 'true');
        fieldErr.textContent = 'Say why: the buyer is told.';
        reason.focus();
        return;
      }
      act(r, 'refuse', { reason: reason.value.trim() }, err, ev.target.querySelector('button[type=submit]'));
    } },
  el('label', { for: id, text: 'Why (told to the buyer)' }), reason, fieldErr,
  el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'danger', text: 'Confirm refusal' }),
    el('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => {
      form.hidden = true;
      open.focus();
    } })));
  return form;
}

function receiveForm(r, err, open) {
  const id = `refund-${r.id}`;
  const refund = el('input', { id, inputmode: 'decimal', 'aria-describedby': `${id}-help ${id}-error` });
  const fieldErr = el('p', { id: `${id}-error`, class: 'error' });
  const restock = r.items.map((it) => el('input', { type: 'checkbox', id: `restock-${it.order_item_id}`, checked: true }));
  const form = el('form', { novalidate: true, hidden: true, 'aria-label': `Receive the return of order ${r.order_number}`,
    onsubmit: (ev) => {
      ev.preventDefault();
      fieldErr.textContent = '';
      refund.removeAttribute('aria-invalid');
      const body = { restock: r.items.filter((_, i) => restock[i].checked)
        .map((it) => ({ order_item_id: it.order_item_id, quantity: it.quantity })) };
      if (refund.value.trim()) {
        body.refund_minor = toMinor(refund.value, r.currency);
        if (body.refund_minor === null) {
          refund.setAttribute('aria-invalid', 'true');
          fieldErr.textContent = `Enter an amount in ${r.currency}, e.g. 19.99 (0: no refund).`;
          refund.focus();
          return;
        }
      }
      act(r, 'receive', body, err, ev.target.querySelector('button[type=submit]')).then((e) => {
        const bad = (e?.details ?? []).find((d) => d.field === 'refund_minor');
        if (!bad) return;
        err.textContent = '';
        refund.setAttribute('aria-invalid', 'true');
        fieldErr.textContent = bad.message;
        refund.focus();
      });
    } },
  el('label', { for: id, text: `Refund (${r.currency})` }), refund,
  el('p', { id: `${id}-help`, class: 'muted', text: 'Empty: the items’ paid price. 0: no refund.' }), fieldErr,
  ...r.items.map((it, i) => el('label', { class: 'check' }, restock[i], `Put ${it.quantity} × ${it.title} back in stock`)),
  el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Confirm received' }),
    el('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => {
      form.hidden = true;
      open.focus();
    } })));
  return form;
}

function actions(r, err) {
  const box = el('div');
  const name = `order ${r.order_number}`;
  const buttons = el('div', { class: 'actions' });
  box.append(buttons);
  const opener = (text, label, make) => {
    const button = el('button', { type: 'button', class: 'secondary', text, 'aria-label': label });
    const form = make(r, err, button);
    button.addEventListener('click', () => {
      form.hidden = false;
      form.querySelector('input, textarea').focus();
    });
    buttons.append(button);
    box.append(form);
  };
  if (r.status === 'requested') {
    buttons.append(el('button', { type: 'button', text: 'Approve', 'aria-label': `Approve the return of ${name}`,
      onclick: (ev) => act(r, 'approve', {}, err, ev.target) }));
    opener('Refuse…', `Refuse the return of ${name}`, refuseForm);
  }
  if (r.status === 'approved' && r.label && RELABEL.includes(r.label.status)) {
    buttons.append(el('button', { type: 'button', text: 'Buy a new return label',
      onclick: (ev) => act(r, 'approve', {}, err, ev.target) }));
  }
  if (RECEIVABLE.includes(r.status)) opener('Mark received…', `Mark the return of ${name} received`, receiveForm);
  return buttons.children.length ? box : null;
}

function returnItem(r) {
  const err = el('p', { class: 'error', role: 'alert' });
  const refunded = r.refund_minor !== null && r.refund_minor !== undefined;
  return el('li', { 'data-return': r.id, 'data-order': r.order_id, 'data-status': r.status,
    'data-created': String(Date.parse(r.created_at)) },
    el('h2', { tabindex: '-1' }, `Return of order #${r.order_number} `,
      el('span', { class: `badge st-${r.status}`, text: STATUS[r.status] ?? r.status })),
    el('p', { class: 'muted', text: `Asked ${new Date(r.created_at).toLocaleString(undefined, { dateStyle: 'medium',
      timeStyle: 'short' })} · ${REASON[r.reason] ?? r.reason}` }),
    r.note ? el('p', { text: `“${r.note}”` }) : null,
    el('ul', { class: 'items', 'aria-label': `Items returned of order ${r.order_number}` }, ...r.items.map((it) => el('li', {
      text: `${it.quantity} × ${it.title} (${it.sku}) · ${money(it.unit_price_minor, r.currency)}` +
        (it.restocked ? ` · ${it.restocked} back in stock` : '') }))),
    labelLine(r),
    r.decision_note ? el('p', { text: `${r.status === 'refused' ? 'Refused' : 'Note'}: ${r.decision_note}` }) : null,
    refunded ? el('p', { text: r.refund_minor ? `Refunded ${money(r.refund_minor, r.currency)}${r.refund
      ? ` (${r.refund.status})` : ''}` : 'Received, no refund' }) : null,
    actions(r, err), err);
}

// Redraw a listed return in place. An open form keeps what was typed in it (fields by id) and stays open, and the
// keyboard keeps its place: the same control, else the return's heading (`focus`: it had the focus before an action).
function show(r, focus = false) {
  const old = list.querySelector(`[data-return="${r.id}"]`);
  if (!old) return;
  const active = old.contains(document.activeElement) ? document.activeElement : null;
  const fresh = returnItem(r);
  for (const form of old.querySelectorAll('form:not([hidden])')) {
    const twin = [...fresh.querySelectorAll('form')].find((f) => f.getAttribute('aria-label') === form.getAttribute('aria-label'));
    if (!twin) continue;
    twin.hidden = false;
    for (const input of form.querySelectorAll('input[id], textarea[id]')) {
      const same = twin.querySelector(`#${CSS.escape(input.id)}`);
      if (!same) continue;
      same.value = input.value;
      same.checked = input.checked;
    }
  }
  old.replaceWith(fresh);
  if (!active && !focus) return;
  const same = active?.id ? fresh.querySelector(`#${CSS.escape(active.id)}`) : null;
  (same && !same.closest('[hidden]') ? same : fresh.querySelector('h2')).focus();
}

// A return not on screen (a new one, or one now in the filter's status) goes where the list's order (newest first)
// puts it among the rows shown; one older than every row shown while more pages remain comes with "Load more".
function place(r) {
  const status = $('filter').value;
  if (status && status !== r.status) return;
  const at = Date.parse(r.created_at);
  const next = [...list.children].find((li) => Number(li.dataset.created) < at);
  if (next) next.before(returnItem(r));
  else if (!cursor) list.append(returnItem(r));
  else return;
  $('list-state').textContent = '';
}

// One page of the list (`more`: the next one, else the first again). An answer to an older request (the filter
// changed, or the list was read again meanwhile) is dropped; "Load more" is disabled while its page loads.
let generation = 0;
async function load(more = false) {
  const mine = ++generation;
  $('list-error').textContent = '';
  const status = $('filter').value;
  const q = new URLSearchParams({ limit: '20' });
  if (status) q.set('status', status);
  if (more && cursor) q.set('cursor', cursor);
  $('more').disabled = true;
  try {
    const page = await call(`/api/v1/seller/returns?${q}`);
    if (mine !== generation) return undefined;
    const items = page.items.filter((r) => !more || !list.querySelector(`[data-return="${r.id}"]`)).map(returnItem);
    if (more) list.append(...items); else list.replaceChildren(...items);
    cursor = page.next_cursor;
    $('more').hidden = !cursor;
    $('list-state').textContent = list.children.length ? '' : status ? 'No returns with this status.' : 'No returns yet.';
  } catch (e) {
    if (mine !== generation) return undefined;
    $('list-state').textContent = '';
    if (e.status === 401) return signInAgain();
    $('list-error').textContent = e.status === 403 ? 'Returns are for sellers: this account has no shop.'
      : `Could not load the returns: ${e.message}`;
  } finally {
    if (mine === generation) $('more').disabled = false;
  }
  return undefined;
}

$('filter').addEventListener('change', () => {
  cursor = null;
  $('more').hidden = true;
  $('list-state').textContent = 'Loading…';
  load();
});
$('more').addEventListener('click', () => {
  if (!$('more').disabled) load(true);
});

if (me) {
  load();
  // the seller's own socket hears every order of the shop change, returns included (no room to join)
  const socket = io({ auth: { token: me.token } });
  socket.on('order:update', async (data) => {
    const r = data?.return;
    if (r) {
      if (list.querySelector(`[data-return="${r.id}"]`)) show(r);
      else place(r);
      return;
    }
    // the order's own news (e.g. its return label bought or failed): read its listed return again
    const row = data?.order?.id && list.querySelector(`[data-order="${data.order.id}"]`);
    if (row) {
      try {
        show(await call(`/api/v1/seller/returns/${row.dataset.return}`));
      } catch { /* the next load shows it */ }
    }
  });
  let connected = false;
  socket.on('connect', () => { // per-user events are not recovered: read again after a dropped connection
    if (connected) load();
    connected = true;
  });
  socket.on('connect_error', (err) => { if (err.data?.code === 'unauthorized') signInAgain(); });
}
