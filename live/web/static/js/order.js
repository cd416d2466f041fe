// One of the buyer's orders (/orders/<id>; docs/web.md, Buying): items, totals, address, status, and the timeline
// of its status changes and carrier scans (GET /api/v1/me/orders/{id}). It stays current without a reload: a
// Socket.IO connection with the buyer's token receives the user's own events (docs/protocol.md): `order:update`
// for this order, or a `notification:new` about it, makes the page read the order again, as does every reconnect
// (those events are not recovered). Back from paying (?payment=succeeded|failed), it says what happened.
import { io } from '/static/vendor/socket.io.esm.min.js';
import { requireSession, signInAgain } from './api.js';
import { call, el, money } from './cart.js';

const STATUS = {
  pending_payment: 'Waiting for payment', paid: 'Paid', processing: 'Being prepared', label_created: 'Label created',
  shipped: 'Shipped', in_transit: 'In transit', out_for_delivery: 'Out for delivery', delivered: 'Delivered',
  delivery_failed: 'Delivery failed', returned_to_sender: 'Returned to sender', canceled: 'Canceled',
  refunded: 'Refunded',
};
const TRACKING = {
  pre_transit: 'Label scanned', transit: 'In transit', out_for_delivery: 'Out for delivery', delivered: 'Delivered',
  failure: 'Delivery problem', returned: 'Returned', unknown: 'Carrier update',
};
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const $ = (id) => document.getElementById(id);
const id = $('order').dataset.order;
const params = new URLSearchParams(location.search);
const when = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
let order = null;
let loading = null;
let again = false;

const label = (s) => STATUS[s] || s.replaceAll('_', ' ');
const at = (t) => (t ? when.format(new Date(t)) : '');

function notice() {
  const box = $('order-notice');
  box.replaceChildren();
  const outcome = params.get('payment');
  if (order.status === 'pending_payment') {
    if (outcome === 'succeeded') box.append(el('p', { class: 'note', text: 'Payment received: confirming it…' }));
    else if (outcome === 'failed') box.append(el('p', { class: 'note', text: 'The payment was declined.' }));
  } else if (!['canceled', 'refunded'].includes(order.status) && outcome === 'succeeded') {
    box.append(el('p', { class: 'confirm', text: `Thank you! Your payment is received and order ${order.number} is `
      + 'confirmed.' }));
  }
  const also = (params.get('also') || '').split(',').filter((x) => UUID_RE.test(x));
  if (also.length) {
    box.append(el('p', {}, 'The same checkout also made ',
      ...also.flatMap((o, i) => [i ? ', ' : '', el('a', { href: `/orders/${o}`, text: `order ${i + 2}` })]), '.'));
  }
}

function timeline() {
  const entries = order.history.map((h) => ({ t: h.at, text: label(h.to), note: h.reason }));
  for (const s of order.shipments || []) {
    for (const e of s.events || []) {
      entries.push({ t: e.status_date || e.at || e.created_at, text: TRACKING[e.status] || label(e.status || 'update'),
        note: [e.message, e.location && typeof e.location === 'object'
          ? [e.location.city, e.location.state, e.location.country].filter(Boolean).join(', ') : e.location]
          .filter(Boolean).join(' · ') });
    }
  }
  entries.sort((a, b) => Date.parse(a.t) - Date.parse(b.t));
  $('order-timeline').replaceChildren(...entries.map((e, i) => el('li', { class: i === entries.length - 1 ? 'current' : '' },
    el('strong', { text: e.text }), ' ', el('time', { datetime: e.t, class: 'muted small', text: at(e.t) }),
    e.note ? el('p', { class: 'muted small', text: e.note }) : null)));
}

function render() {
  const o = order;
  document.title = `Order ${o.number} · live`;
  $('order-title').textContent = `Order ${o.number}`;
  const badge = $('order-status');
  badge.textContent = label(o.status);
  badge.className = `badge ${['canceled', 'refunded', 'delivery_failed', 'returned_to_sender'].includes(o.status)
    ? 'bad' : o.status === 'pending_payment' ? '' : 'ok'}`;
  notice();
  const pay = $('order-pay');
  pay.replaceChildren();
  const p = o.payment;
  if (o.status === 'pending_payment' && p && p.authorization_url
      && ['requires_action', 'requires_payment_method', 'processing', 'pending'].includes(p.status)) {
    pay.append(el('a', { class: 'button', href: p.authorization_url, text: `Pay ${money(p.amount_minor, p.currency)}` }));
  }
  const ship = o.shipment;
  const shipBox = $('order-shipment');
  shipBox.replaceChildren();
  if (ship && ship.tracking_number) {
    shipBox.append(el('p', {}, `${ship.carrier || 'Carrier'} tracking: `,
      ship.tracking_url ? el('a', { href: ship.tracking_url, rel: 'noopener', text: ship.tracking_number })
        : el('strong', { text: ship.tracking_number }),
      ship.eta ? ` · expected ${at(ship.eta)}` : ''));
  }
  timeline();
  $('order-items').replaceChildren(...o.items.map((i) => el('li', {},
    el('span', { text: `${i.quantity} × ${i.title}` }), el('span', { text: money(i.line_total_minor, i.currency) }))));
  const c = o.currency;
  $('order-totals').replaceChildren(
    el('dt', { text: 'Subtotal' }), el('dd', { text: money(o.subtotal_minor, c) }),
    ...(o.discount_minor ? [el('dt', { text: `Discount${o.coupon_code ? ` (${o.coupon_code})` : ''}` }),
      el('dd', { text: `−${money(o.discount_minor, c)}` })] : []),
    el('dt', { text: 'Shipping' }), el('dd', { text: money(o.shipping_minor, c) }),
    el('dt', { class: 'grand', text: 'Total' }), el('dd', { class: 'grand', text: money(o.total_minor, c) }),
    ...(o.refund ? [el('dt', { text: `Refund (${o.refund.status})` }),
      el('dd', { text: money(o.refund.amount_minor, o.refund.currency) })] : []));
  const a = o.shipping_address || {};
  $('order-address').textContent = [a.name, a.line1, a.line2, [a.postal_code, a.city].filter(Boolean).join(' '),
    a.state, a.country, a.phone].filter(Boolean).join('\n');
  const r = o.shipping_rate;
  $('order-rate').textContent = r ? `${r.service_name} (${r.carrier})${r.estimated_days ? `, about ${r.estimated_days} days`
    : ''}` : 'The seller sends it themselves.';
  $('order-body').hidden = false;
}

// Read the order; a call while one is under way makes one more read after it (the newest state wins).
async function load() {
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    do {
      again = false;
      try {
        order = await call(`/api/v1/me/orders/${id}`);
        $('order-error').textContent = '';
        render();
      } catch (e) {
        if (e.status === 401) return signInAgain();
        $('order-error').textContent = e.status === 404 ? 'This order was not found among yours.'
          : `The order could not be loaded: ${e.message}`;
      }
    } while (again);
  })();
  try {
    await loading;
  } finally {
    loading = null;
  }
}

function follow(token) {
  const live = $('order-live');
  const socket = io({ auth: { token } });
  let connected = false;
  socket.on('connect', () => {
    live.textContent = 'Live: this page updates by itself.';
    if (connected) load(); // what changed while disconnected is not replayed
    connected = true;
  });
  socket.on('disconnect', () => { live.textContent = 'Reconnecting…'; });
  socket.on('connect_error', (err) => {
    if (err?.data?.code === 'unauthorized') signInAgain();
    else live.textContent = 'Reconnecting…';
  });
  socket.on('order:update', (d) => { if (d?.order?.id === id) load(); });
  socket.on('notification:new', (d) => {
    const n = d?.notification;
    if (n && (n.data?.order_id === id || (n.data?.order_ids || []).includes(id) || (n.url || '').endsWith(id))) load();
  });
}

const s = requireSession();
if (s) {
  load();
  follow(s.token);
}
