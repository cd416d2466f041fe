// Checkout (/checkout; docs/web.md, Buying): the cart's summary (edited in the drawer), a shipping address (a saved
// one, or a new one with the API's per-field errors), a shipping rate per seller (POST /cart/shipping-rates), a
// coupon, then POST /checkout with an Idempotency-Key (one per distinct request: a retry of the same request
// replays it), the totals the API computed, and the pay button of the provider the API started (its
// authorization_url: the sandbox's page or Paystack's). The provider sends the buyer back to
// /checkout?return=1, which goes on to the order's page.
import { requireSession } from './api.js';
import { call, el, money, openCart, variantName } from './cart.js';

const LAST = 'live.checkout'; // sessionStorage: the orders of the checkout being paid, for the way back
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ADDRESS_FIELDS = ['name', 'line1', 'line2', 'city', 'state', 'postal_code', 'country', 'phone'];
const $ = (id) => document.getElementById(id);

const status = $('checkout-status');
const form = $('checkout-form');
let cart = null;
let cartKey = '';
let addresses = [];
let rates = null; // the last POST /cart/shipping-rates answer, for the address it was asked with
let attempt = null; // {body, key}: the same body is sent again with the same Idempotency-Key
let placed = false;

function friendly(message) {
  if (/at least 1 character|Field required/i.test(message)) return 'Required.';
  if (/should match pattern/i.test(message)) return 'Not in the expected form.';
  return message.charAt(0).toUpperCase() + message.slice(1) + (/[.!?]$/.test(message) ? '' : '.');
}

function clearFieldErrors() {
  for (const f of ADDRESS_FIELDS) {
    $(`addr-${f}-error`).textContent = '';
    $(`addr-${f}`).removeAttribute('aria-invalid');
    $(`addr-${f}`).setAttribute('aria-describedby',
      f === 'country' ? 'addr-country-hint addr-country-error' : `addr-${f}-error`);
  }
  $('address-error').textContent = '';
}

// The API's {field, message} list shown beside each field; the first bad field gets the focus. Returns whether
// any problem was placed on a field.
function showFieldErrors(details, where) {
  let first = null;
  const rest = [];
  for (const d of Array.isArray(details) ? details : []) {
    const name = String(d.field || '').replace(/^address\./, '');
    if (ADDRESS_FIELDS.includes(name) && !$('new-address').hidden) {
      const input = $(`addr-${name}`);
      $(`addr-${name}-error`).textContent = friendly(d.message);
      input.setAttribute('aria-invalid', 'true');
      first = first || input;
    } else rest.push(friendly(d.message));
  }
  if (rest.length) where.textContent = rest.join(' ');
  first?.focus();
  return !!first;
}

function newAddress() {
  const out = {};
  for (const f of ADDRESS_FIELDS) {
    const v = $(`addr-${f}`).value.trim();
    if (v || ['name', 'line1', 'city', 'country'].includes(f)) out[f] = f === 'country' ? v.toUpperCase() : v;
  }
  return out;
}

function chosenAddress() {
  const picked = document.querySelector('input[name="ship-to"]:checked');
  return picked && picked.value !== 'new' ? { address_id: picked.value } : { address: newAddress() };
}

function renderCart() {
  const lines = $('summary-lines');
  lines.replaceChildren(...cart.items.map((l) => el('li', {},
    el('span', { text: `${l.quantity} × ${l.title || l.sku}${variantName(l) ? ` (${variantName(l)})` : ''}` }),
    el('span', { text: money(l.line_total_minor, l.currency) }))));
  $('summary-subtotal').textContent = money(cart.subtotal_minor, cart.currency);
  $('cart-count').textContent = String(cart.item_count);
  $('summary').hidden = false;
  if (placed) return;
  if (!cart.items.length) {
    status.textContent = 'Your cart is empty.';
    status.append(' ', el('a', { href: '/', text: 'Find something to buy' }));
    form.hidden = true;
    return;
  }
  status.textContent = '';
  form.hidden = false;
  const key = cart.items.map((l) => `${l.variant_id}:${l.quantity}`).join(',');
  if (cartKey && key !== cartKey && rates) { // the rates were for another cart
    resetRates();
    status.textContent = 'Your cart changed: choose the shipping again.';
  }
  cartKey = key;
  estimate();
}

function resetRates() {
  rates = null;
  $('rates-step').hidden = true;
  $('pay-step').hidden = true;
}

function renderAddresses() {
  const list = $('saved-list');
  list.replaceChildren();
  $('saved-addresses').hidden = addresses.length === 0;
  addresses.forEach((a, i) => {
    const text = [a.name, a.line1, a.line2, a.city, a.state, a.postal_code, a.country].filter(Boolean).join(', ');
    list.append(el('label', { class: 'choice' },
      el('input', { type: 'radio', name: 'ship-to', value: a.id, checked: i === 0 }), text));
  });
  $('ship-to-new').checked = addresses.length === 0;
  $('new-address').hidden = addresses.length > 0;
}

function rateLabel(r) {
  const days = r.estimated_days ? ` · ${r.estimated_days} day${r.estimated_days === 1 ? '' : 's'}` : '';
  return `${r.service_name}${days} · ${r.amount_minor === 0 ? 'Free' : money(r.amount_minor, r.currency)}`;
}

function renderRates() {
  const box = $('rates');
  box.replaceChildren();
  for (const s of rates.sellers) {
    const titles = cart.items.filter((l) => l.seller_id === s.seller_id).map((l) => l.title || l.sku);
    const group = el('fieldset', { class: 'choices' }, el('legend', { text: `Shipping for ${titles.join(', ')}` }));
    if (!s.ships) group.append(el('p', { text: 'The seller sends this themselves: no shipping charge.' }));
    else if (!s.rates.length) {
      group.append(el('p', { class: 'error', text: `No carrier rate for this address${
        s.unavailable ? `: ${s.unavailable}` : ''}. The cheapest fresh rate is tried when you place the order.` }));
    }
    s.rates.forEach((r, i) => group.append(el('label', { class: 'choice' },
      el('input', { type: 'radio', name: `rate-${s.seller_id}`, value: r.id, checked: i === 0,
        'data-seller': s.seller_id, 'data-amount': r.amount_minor, onchange: estimate }),
      rateLabel(r))));
    if (s.free_shipping) group.append(el('p', { class: 'ok small', text: 'Free shipping on this order.' }));
    box.append(group);
  }
  $('rates-step').hidden = false;
  $('pay-step').hidden = false;
  estimate();
}

function chosenRates() {
  const out = {};
  for (const input of $('rates').querySelectorAll('input[type=radio]:checked')) out[input.dataset.seller] = input.value;
  return out;
}

function estimate() {
  const box = $('estimate');
  if (!rates || !cart) return box.replaceChildren();
  let shipping = 0;
  for (const input of $('rates').querySelectorAll('input[type=radio]:checked')) shipping += Number(input.dataset.amount);
  const cur = cart.currency;
  box.replaceChildren(el('dt', { text: 'Subtotal' }), el('dd', { text: money(cart.subtotal_minor, cur) }),
    el('dt', { text: 'Shipping' }), el('dd', { text: money(shipping, cur) }),
    el('dt', { class: 'grand', text: 'Total before any coupon' }),
    el('dd', { class: 'grand', text: money(cart.subtotal_minor + shipping, cur) }));
}

async function showRates() {
  clearFieldErrors();
  resetRates();
  const button = $('get-rates');
  button.disabled = true;
  status.textContent = 'Getting shipping options…';
  try {
    let where = chosenAddress();
    if (where.address && $('addr-save').checked) {
      const saved = await call('/api/v1/me/addresses', { method: 'POST', body: { ...where.address } });
      addresses = [saved, ...addresses.filter((a) => a.id !== saved.id)];
      renderAddresses();
      $('addr-save').checked = false;
      where = { address_id: saved.id };
    }
    rates = await call('/api/v1/cart/shipping-rates', { method: 'POST', body: where });
    rates.where = where;
    status.textContent = '';
    renderRates();
    $('rates').querySelector('input')?.focus();
  } catch (e) {
    status.textContent = '';
    if (e.code === 'validation_failed') {
      if (!showFieldErrors(e.details, $('address-error')) && !$('address-error').textContent) {
        $('address-error').textContent = e.message;
      }
    } else $('address-error').textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

function keyFor(body) {
  const text = JSON.stringify(body);
  if (!attempt || attempt.text !== text) attempt = { text, key: crypto.randomUUID() };
  return attempt.key;
}

async function place(ev) {
  ev.preventDefault();
  if (placed || !rates) return;
  const button = $('place');
  if (button.disabled) return;
  $('place-error').textContent = '';
  $('coupon-error').textContent = '';
  $('coupon').removeAttribute('aria-invalid');
  const body = { ...rates.where, shipping: chosenRates(), return_url: `${location.origin}/checkout?return=1` };
  const coupon = $('coupon').value.trim();
  if (coupon) body.coupon_code = coupon;
  const key = keyFor(body);
  button.disabled = true;
  button.textContent = 'Placing order…';
  try {
    const out = await call('/api/v1/checkout', { method: 'POST', body, headers: { 'Idempotency-Key': key } });
    placed = true;
    review(out);
  } catch (e) {
    if (e.code === 'invalid_coupon' || (e.code === 'validation_failed'
        && (e.details || []).some((d) => d.field === 'coupon_code'))) {
      $('coupon-error').textContent = e.code === 'invalid_coupon' ? friendly(e.message) : 'Not a coupon code.';
      $('coupon').setAttribute('aria-invalid', 'true');
      $('coupon').setAttribute('aria-describedby', 'coupon-error');
      $('coupon').focus();
    } else if (e.code === 'validation_failed' && showFieldErrors(e.details, $('place-error'))) {
      resetRates();
    } else {
      $('place-error').textContent = e.code === 'network' ? e.message : `The order could not be placed: ${e.message}`;
      if (e.code === 'out_of_stock') document.dispatchEvent(new CustomEvent('live:cart-changed'));
    }
  } finally {
    if (!placed) {
      button.disabled = false;
      button.textContent = 'Place order';
    }
  }
}

function review(out) {
  const pay = out.payment;
  sessionStorage.setItem(LAST, JSON.stringify({ payment: pay.id, orders: out.orders.map((o) => o.id) }));
  for (const n of form.querySelectorAll('input, button')) n.disabled = true;
  form.hidden = true;
  $('summary').hidden = true;
  status.textContent = 'Your order is placed: pay to confirm it.';
  const box = $('review-orders');
  box.replaceChildren(...out.orders.map((o) => el('div', { class: 'review-order' },
    el('h3', { text: `Order ${o.number} · ${o.seller.name}` }),
    el('ul', { class: 'summary-lines' }, ...o.items.map((i) => el('li', {},
      el('span', { text: `${i.quantity} × ${i.title}` }), el('span', { text: money(i.line_total_minor, i.currency) })))),
    el('dl', { class: 'totals' },
      el('dt', { text: 'Subtotal' }), el('dd', { text: money(o.subtotal_minor, o.currency) }),
      o.discount_minor ? el('dt', { text: 'Discount' }) : null,
      o.discount_minor ? el('dd', { text: `−${money(o.discount_minor, o.currency)}` }) : null,
      el('dt', { text: `Shipping${o.shipping_rate ? ` (${o.shipping_rate.service_name})` : ''}` }),
      el('dd', { text: money(o.shipping_minor, o.currency) }),
      el('dt', { text: 'Order total' }), el('dd', { text: money(o.total_minor, o.currency) })))));
  $('review-totals').replaceChildren(el('dt', { class: 'grand', text: 'To pay' }),
    el('dd', { class: 'grand', id: 'amount-due', text: money(pay.amount_minor, pay.currency) }));
  if (out.coupon_code) {
    const off = out.orders.reduce((n, o) => n + o.discount_minor, 0);
    $('review-coupon').textContent = `Coupon ${out.coupon_code} applied: −${money(off, pay.currency)}.`;
    $('review-coupon').hidden = false;
  }
  const actions = $('pay-actions');
  actions.replaceChildren();
  const first = `/orders/${out.orders[0].id}`;
  if (pay.status === 'succeeded' || pay.amount_minor === 0) {
    actions.append(el('a', { class: 'button', href: first, text: 'See your order' }));
  } else if (pay.started === false) {
    $('pay-error').textContent = `The payment could not be started: ${pay.error}`;
    actions.append(el('button', { type: 'button', text: 'Try again', onclick: retry }));
  } else if (pay.authorization_url) {
    const link = el('a', { class: 'button', id: 'pay', href: pay.authorization_url,
      text: `Pay ${money(pay.amount_minor, pay.currency)}` });
    actions.append(link);
    if (pay.provider === 'paystack') paystackPopup(link, pay);
  } else if (pay.provider === 'stripe' && pay.client_secret) {
    stripeElement(pay, first);
  } else {
    $('pay-error').textContent = `Paying through ${pay.provider} is not available on this page yet: your order is `
      + 'saved unpaid.';
    actions.append(el('a', { class: 'button secondary', href: first, text: 'See your order' }));
  }
  $('review').hidden = false;
  $('review').focus();
}

function script(src) {
  return new Promise((resolve, reject) => {
    const tag = el('script', { src, async: true });
    tag.addEventListener('load', resolve);
    tag.addEventListener('error', () => reject(new Error(`${src} could not be loaded`)));
    document.head.append(tag);
  });
}

// Paystack: its popup (InlineJS, resumeTransaction with the access code that ends the authorization_url) when
// its script loads; otherwise the link stays a plain link to Paystack's hosted page (callback_url: return_url).
async function paystackPopup(link, pay) {
  try {
    await script('https://js.paystack.co/v2/inline.js');
  } catch {
    return;
  }
  const code = new URL(pay.authorization_url).pathname.split('/').filter(Boolean).pop();
  if (!window.PaystackPop || !code) return;
  link.addEventListener('click', (ev) => {
    ev.preventDefault();
    new window.PaystackPop().resumeTransaction(code, {
      onSuccess: () => location.assign('/checkout?return=1&payment=succeeded'),
      onCancel: () => { $('pay-error').textContent = 'Payment canceled: your order is kept unpaid.'; },
      onError: (e) => { $('pay-error').textContent = `Paystack: ${e?.message || 'the payment failed'}`; },
    });
  });
}

// Stripe: the Payment Element with the PaymentIntent's client_secret and the server's publishable key
// (GET /payments/config); Stripe.js comes from js.stripe.com, as Stripe requires, on this page only.
async function stripeElement(pay, orderPath) {
  const box = el('div', { id: 'stripe-element', class: 'stripe-element' });
  const button = el('button', { type: 'button', disabled: true, text: `Pay ${money(pay.amount_minor, pay.currency)}` });
  $('pay-actions').append(box, button);
  const fail = (message) => {
    $('pay-error').textContent = `${message} Your order is kept unpaid.`;
    $('pay-actions').append(el('a', { class: 'button secondary', href: orderPath, text: 'See your order' }));
    button.remove();
  };
  let stripe;
  let elements;
  try {
    const { stripe_publishable_key: key } = await call('/api/v1/payments/config');
    if (!key) return fail('Card payment is not set up on this server (no Stripe publishable key).');
    await script('https://js.stripe.com/v3/');
    stripe = window.Stripe(key);
    elements = stripe.elements({ clientSecret: pay.client_secret });
    elements.create('payment').mount(box);
  } catch (e) {
    return fail(`The card form could not be loaded: ${e.message}.`);
  }
  button.disabled = false;
  button.addEventListener('click', async () => {
    button.disabled = true;
    $('pay-error').textContent = '';
    const { error } = await stripe.confirmPayment({ elements,
      confirmParams: { return_url: `${location.origin}/checkout?return=1` } });
    $('pay-error').textContent = error?.message || 'The payment did not go through.'; // a success leaves the page
    button.disabled = false;
  });
}

async function retry(ev) { // the same request with the same Idempotency-Key: the API starts the payment again
  ev.target.disabled = true;
  $('pay-error').textContent = '';
  try {
    review(await call('/api/v1/checkout', { method: 'POST', body: JSON.parse(attempt.text),
      headers: { 'Idempotency-Key': attempt.key } }));
  } catch (e) {
    $('pay-error').textContent = e.message;
    ev.target.disabled = false;
  }
}

// Back from the provider: on to the order (with the other orders of the same checkout, if any).
async function back(params) {
  status.textContent = 'Checking your payment…';
  let ids = [];
  try {
    ids = JSON.parse(sessionStorage.getItem(LAST) || '{}').orders || [];
  } catch { /* nothing kept */ }
  ids = ids.filter((id) => UUID_RE.test(id));
  if (!ids.length) {
    try {
      ids = (await call('/api/v1/me/orders?limit=1')).items.map((o) => o.id);
    } catch (e) {
      status.textContent = `Your orders could not be read: ${e.message}`;
      return;
    }
  }
  if (!ids.length) {
    status.textContent = 'No order was found for this payment.';
    return;
  }
  const q = new URLSearchParams();
  const stripe = { succeeded: 'succeeded', failed: 'failed' }[params.get('redirect_status')]; // Stripe's return
  const outcome = params.get('payment') || stripe;
  if (outcome === 'succeeded' || outcome === 'failed') q.set('payment', outcome);
  if (ids.length > 1) q.set('also', ids.slice(1).join(','));
  location.replace(`/orders/${ids[0]}${q.toString() ? `?${q}` : ''}`);
}

async function start() {
  const params = new URLSearchParams(location.search);
  if (params.has('return')) return back(params);
  $('edit-cart').addEventListener('click', openCart);
  $('get-rates').addEventListener('click', showRates);
  form.addEventListener('submit', place);
  $('saved-addresses').addEventListener('change', () => {
    $('new-address').hidden = !$('ship-to-new').checked;
    resetRates();
  });
  $('new-address').addEventListener('input', () => { if (rates) resetRates(); });
  document.addEventListener('live:cart-changed', (ev) => {
    if (ev.detail?.source === 'cart' && ev.detail.cart) {
      cart = ev.detail.cart;
      renderCart();
    }
  });
  try {
    const [c, a] = await Promise.all([call('/api/v1/me/cart'), call('/api/v1/me/addresses')]);
    addresses = a.items;
    renderAddresses();
    if (!cart) {
      cart = c.cart;
      renderCart();
    }
  } catch (e) {
    status.textContent = `Your cart could not be loaded: ${e.message}`;
  }
}

if (requireSession()) start();
