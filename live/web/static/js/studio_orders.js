// The seller's orders queue (/studio/orders, /studio/orders/<id>; docs/web.md, "The studio"): the shop's orders
// (GET /api/v1/seller/orders, by status), one order's detail, its label bought (POST .../label: a job buys it, the
// seller's socket hears `order:update`), printed (the PDF fetched with the token, opened as a blob: no token in a
// URL), or tracking entered by hand (POST .../tracking).
import { io } from '/static/vendor/socket.io.esm.min.js';
import { ApiError, api, authHeaders, errorOf, requireSession, signInAgain } from './api.js';
import { el, money } from './format.js';

const STATUS_NAMES = {
  pending_payment: 'Awaiting payment', paid: 'Paid: to ship', processing: 'Processing', label_created: 'Labelled',
  shipped: 'Shipped', in_transit: 'In transit', out_for_delivery: 'Out for delivery', delivered: 'Delivered',
  delivery_failed: 'Delivery failed', returned_to_sender: 'Returned to sender', canceled: 'Canceled',
  refunded: 'Refunded',
};
const CARRIERS = { usps: 'USPS', ups: 'UPS', fedex: 'FedEx', dhl_express: 'DHL Express', canada_post: 'Canada Post',
  royal_mail: 'Royal Mail', other: 'Other' };
const SHIPPABLE = new Set(['paid', 'processing']);
const LIVE_LABEL = new Set(['pending', 'purchasing', 'label_created', 'pre_transit', 'voiding']);
const SLOW_LABEL_MS = 30000;

const $ = (id) => document.getElementById(id);
const me = requireSession();
const root = $('orders-page');
const list = $('orders');
const listError = $('orders-error');
const statusSelect = $('status-filter');
const detail = $('order');
let cursor = null;
let current = null; // the order shown (detail)
let slowTimer = 0;

const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const statusName = (s) => STATUS_NAMES[s] ?? s;

function fail(box, e) {
  if (e instanceof ApiError && e.status === 401) return signInAgain();
  box.textContent = e.message;
  return undefined;
}

// ---- the list

function row(o) {
  const itemCount = o.items.reduce((n, i) => n + i.quantity, 0);
  return el('li', { 'data-order': o.id, class: current?.id === o.id ? 'on' : '' },
    el('a', { href: `/studio/orders/${o.id}`, 'aria-current': current?.id === o.id ? 'page' : null },
      el('strong', { text: `#${o.number}` }), ' ',
      el('span', { class: `badge st-${o.status}`, text: statusName(o.status) })),
    el('span', { class: 'muted', text: `${when(o.created_at)} · ${itemCount} item${itemCount === 1 ? '' : 's'} · ` +
      money(o.total_minor, o.currency) }));
}

async function loadList({ more = false } = {}) {
  listError.textContent = '';
  const q = new URLSearchParams({ limit: '25' });
  if (statusSelect.value) q.set('status', statusSelect.value);
  if (more && cursor) q.set('cursor', cursor);
  $('list-state').textContent = 'Loading…';
  try {
    const page = await api(`/api/v1/seller/orders?${q}`);
    cursor = page.next_cursor;
    const rows = page.items.map(row);
    if (more) list.append(...rows); else list.replaceChildren(...rows);
    $('more').hidden = !cursor;
    $('list-state').textContent = list.children.length ? '' : 'No orders here yet.';
  } catch (e) {
    $('list-state').textContent = '';
    fail(listError, e);
  }
}

function updateRow(o) {
  const old = list.querySelector(`li[data-order="${CSS.escape(o.id)}"]`);
  if (old) old.replaceWith(row(o));
}

// ---- one order

function addressLines(a) {
  if (!a) return [];
  return [a.name, a.line1, a.line2, [a.postal_code, a.city].filter(Boolean).join(' '), a.state, a.country, a.phone]
    .filter(Boolean);
}

function shipmentBox(o) {
  const s = o.shipment;
  if (!s) return el('p', { class: 'muted', text: 'No label or tracking yet.' });
  const parts = [
    el('p', {}, 'Shipment: ', el('strong', { class: 'ship-status', text: s.status.replaceAll('_', ' ') }),
      s.carrier ? ` · ${CARRIERS[s.carrier] ?? s.carrier}` : '', s.service ? ` ${s.service}` : ''),
  ];
  if (s.tracking_number) {
    parts.push(el('p', {}, 'Tracking: ', s.tracking_url
      ? el('a', { href: s.tracking_url, target: '_blank', rel: 'noopener noreferrer', text: s.tracking_number })
      : el('span', { text: s.tracking_number })));
  }
  if (s.status === 'pending' || s.status === 'purchasing') {
    parts.push(el('p', { class: 'note', role: 'status', id: 'label-wait', text: 'Buying the label from the carrier…' }));
  }
  if (s.last_error) parts.push(el('p', { class: 'error', text: `The carrier said: ${s.last_error}` }));
  if (s.label && s.status !== 'voided' && s.status !== 'voiding') {
    parts.push(el('div', { class: 'actions' },
      el('button', { type: 'button', id: 'print', text: 'Print label', onclick: () => printLabel(s) })));
  }
  return el('div', {}, ...parts);
}

function labelForm(o) {
  const rate = o.shipping_rate;
  const service = el('select', { id: 'label-service' },
    el('option', { value: '', text: rate ? `The buyer’s choice: ${rate.service_name}` : 'The cheapest service' }),
    ...['ground', 'express', 'overnight'].filter((s) => s !== rate?.service)
      .map((s) => el('option', { value: s, text: s[0].toUpperCase() + s.slice(1) })));
  const err = el('p', { class: 'error', role: 'alert', id: 'label-error' });
  const button = el('button', { type: 'submit', text: 'Buy label' });
  return el('form', { class: 'stack', 'aria-labelledby': 'label-h', onsubmit: async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    button.disabled = true;
    try {
      await api(`/api/v1/seller/orders/${o.id}/label`, { method: 'POST',
        body: service.value ? { service: service.value } : {} });
      await showOrder(o.id);
    } catch (e) {
      button.disabled = false;
      fail(err, e);
    }
  } },
  el('h3', { id: 'label-h', text: 'Ship with a label' }),
  rate ? el('p', { class: 'muted', text: `The buyer paid ${money(rate.amount_minor, rate.currency)} for ` +
    `${rate.service_name}${rate.estimated_days ? ` (about ${rate.estimated_days} days)` : ''}.` }) : null,
  el('label', { for: 'label-service', text: 'Service' }), service, button, err);
}

function trackingForm(o) {
  const carrier = el('select', { id: 'track-carrier', name: 'carrier' },
    ...Object.entries(CARRIERS).map(([v, t]) => el('option', { value: v, text: t })));
  const number = el('input', { id: 'track-number', name: 'tracking_number', autocomplete: 'off',
    'aria-describedby': 'track-number-error' });
  const errs = { carrier: el('p', { class: 'error', id: 'track-carrier-error' }),
    tracking_number: el('p', { class: 'error', id: 'track-number-error' }) };
  carrier.setAttribute('aria-describedby', 'track-carrier-error');
  const err = el('p', { class: 'error', role: 'alert' });
  const button = el('button', { type: 'submit', class: 'secondary', text: 'Save tracking' });
  return el('form', { class: 'stack', 'aria-labelledby': 'track-h', novalidate: '', onsubmit: async (ev) => {
    ev.preventDefault();
    err.textContent = errs.carrier.textContent = errs.tracking_number.textContent = '';
    for (const f of [carrier, number]) f.removeAttribute('aria-invalid');
    if (!number.value.trim()) {
      errs.tracking_number.textContent = 'Enter the tracking number the carrier gave you.';
      number.setAttribute('aria-invalid', 'true');
      number.focus();
      return;
    }
    button.disabled = true;
    try {
      const resp = await fetch(`/api/v1/seller/orders/${o.id}/tracking`, { method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders(me.token) },
        body: JSON.stringify({ carrier: carrier.value, tracking_number: number.value.trim() }) });
      if (!resp.ok) {
        const body = await resp.clone().json().catch(() => null);
        const fields = body?.error?.details ?? [];
        let shown = false;
        for (const d of Array.isArray(fields) ? fields : []) {
          const key = String(d.field ?? '').split('.').pop();
          if (errs[key]) {
            errs[key].textContent = d.message;
            (key === 'carrier' ? carrier : number).setAttribute('aria-invalid', 'true');
            shown = true;
          }
        }
        const e = await errorOf(resp);
        if (!shown) throw e;
        if (e.status === 401) signInAgain();
        (number.getAttribute('aria-invalid') ? number : carrier).focus();
        button.disabled = false;
        return;
      }
      await showOrder(o.id);
    } catch (e) {
      button.disabled = false;
      fail(err, e);
    }
  } },
  el('h3', { id: 'track-h', text: 'Or shipped it yourself' }),
  el('label', { for: 'track-carrier', text: 'Carrier' }), carrier, errs.carrier,
  el('label', { for: 'track-number', text: 'Tracking number' }), number, errs.tracking_number, button, err);
}

function renderOrder(o) {
  current = o;
  clearTimeout(slowTimer);
  const canShip = SHIPPABLE.has(o.status) && !(o.shipment && LIVE_LABEL.has(o.shipment.status));
  detail.replaceChildren(
    el('h2', { id: 'order-h', tabindex: '-1' }, `Order #${o.number} `,
      el('span', { class: `badge st-${o.status}`, id: 'order-status', text: statusName(o.status) })),
    el('p', { class: 'muted', text: `${when(o.created_at)}${o.livestream_id ? ' · sold during a live stream' : ''}` }),
    el('ul', { class: 'items', 'aria-label': 'Items' }, ...o.items.map((i) => el('li', {},
      el('span', { text: `${i.title} × ${i.quantity}` }), el('span', { class: 'muted', text: ` ${i.sku}` }),
      el('span', { class: 'amount', text: money(i.line_total_minor, i.currency) })))),
    el('p', {}, `Subtotal ${money(o.subtotal_minor, o.currency)}`,
      o.discount_minor ? ` · discount −${money(o.discount_minor, o.currency)}` : '',
      ` · shipping ${money(o.shipping_minor, o.currency)} · `, el('strong', { text: `total ${money(o.total_minor, o.currency)}` })),
    el('h3', { text: 'Ship to' }),
    el('address', {}, ...addressLines(o.shipping_address).flatMap((l, i) => (i ? [el('br'), l] : [l]))),
    el('h3', { text: 'Shipping' }),
    shipmentBox(o),
    canShip ? labelForm(o) : null,
    canShip ? trackingForm(o) : null,
    el('p', { id: 'print-error', class: 'error', role: 'alert' }),
  );
  detail.hidden = false;
  if (o.shipment?.status === 'pending' || o.shipment?.status === 'purchasing') {
    slowTimer = setTimeout(() => {
      const wait = $('label-wait');
      if (wait) wait.textContent = 'The carrier is taking long: the label will show here when it is bought (you may leave this page).';
    }, SLOW_LABEL_MS);
  }
  updateRow(o);
}

async function showOrder(id) {
  $('order-error').textContent = '';
  try {
    renderOrder(await api(`/api/v1/seller/orders/${encodeURIComponent(id)}`));
  } catch (e) {
    detail.hidden = true;
    fail($('order-error'), e.status === 404 ? new Error('This order is not one of your shop’s.') : e);
  }
}

async function printLabel(s) {
  const err = $('print-error');
  err.textContent = '';
  try {
    const resp = await fetch(`/api/v1/shipments/${s.id}/label.pdf`, { headers: authHeaders(me.token) });
    if (!resp.ok) throw await errorOf(resp);
    const url = URL.createObjectURL(await resp.blob());
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    if (!window.open(url, '_blank')) {
      err.replaceChildren('The browser blocked the new tab: ', el('a', { href: url, target: '_blank', text: 'open the label' }));
    }
  } catch (e) {
    fail(err, e.name === 'TypeError' ? new Error('The label could not be fetched (a carrier’s label opens on their site).') : e);
  }
}

// ---- live updates: the seller's own socket hears every order of the shop change (no room to join)

function listen() {
  const socket = io({ auth: { token: me.token } });
  socket.on('order:update', (data) => {
    if (current && data.order.id === current.id) showOrder(current.id);
    else updateRow(data.order);
  });
  socket.on('notification:new', (data) => {
    if (data.notification?.kind === 'seller.new_order') loadList();
  });
  let connected = false;
  socket.on('connect', () => {
    // per-user events are not recovered after a dropped connection: read what may have changed meanwhile
    if (connected) {
      loadList();
      if (current) showOrder(current.id);
    }
    connected = true;
  });
  socket.on('connect_error', (err) => { if (err.data?.code === 'unauthorized') signInAgain(); });
}

if (me) {
  statusSelect.addEventListener('change', () => loadList());
  $('more').addEventListener('click', () => loadList({ more: true }));
  loadList();
  if (root.dataset.order) showOrder(root.dataset.order);
  listen();
}
