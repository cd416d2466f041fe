// The cart drawer (templates/_cart_drawer.html; docs/web.md, Buying): the buyer's cart from GET /api/v1/me/cart,
// quantities changed (PATCH) and lines removed (DELETE) with the refusal shown on the line, a countdown per
// reservation, the subtotal and the way to checkout. A modal <dialog>: focus stays inside, Esc closes, focus goes
// back to what opened it. Other pages talk to it with events on `document`: `live:open-cart` opens it,
// `live:cart-changed` (without `source: 'cart'`) makes it read the cart again; it dispatches `live:cart-changed`
// {detail: {count, cart, source: 'cart'}} whenever it has read or changed the cart.
// It also exports the small helpers the buying pages share (call, money, el).
import { ApiError, authHeaders, clearSession, session, signInUrl } from './api.js';
import { el, money } from './format.js';

export { el, money };

export class CallError extends ApiError {
  constructor(status, code, message, details) {
    super(status, code, message);
    this.details = details;
  }
}

// REST with the session's token; errors keep the API's `details` (per-field problems, available stock).
export async function call(path, { method = 'GET', body, headers = {} } = {}) {
  const token = session()?.token;
  const init = { method, headers: { Accept: 'application/json', ...authHeaders(token), ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new CallError(0, 'network', 'The server could not be reached: check your connection and try again.');
  }
  if (resp.status === 401 && token) clearSession(); // a refused token: the page offers to sign in again
  if (!resp.ok) {
    const data = await resp.json().catch(() => null);
    const e = data && data.error;
    throw new CallError(resp.status, e?.code || `http_${resp.status}`, e?.message || `HTTP ${resp.status}`,
      e?.details);
  }
  return resp.status === 204 ? null : resp.json();
}

export function variantName(line) { return [line.color, line.size].filter(Boolean).join(' · '); }

export function openCart() { document.dispatchEvent(new CustomEvent('live:open-cart')); }

function countdown(until) {
  const left = Math.max(0, Math.round((Date.parse(until) - Date.now()) / 1000));
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
}

function setup(dialog) {
  const lines = document.getElementById('cart-lines');
  const status = document.getElementById('cart-status');
  const foot = document.getElementById('cart-foot');
  const signin = document.getElementById('cart-signin');
  let cart = null;
  let opener = null;
  let timer = null;
  const lineErrors = new Map(); // variant id -> the last refusal, shown on its line until the next change

  function announce() {
    document.dispatchEvent(new CustomEvent('live:cart-changed',
      { detail: { count: cart ? cart.item_count : 0, cart, source: 'cart' } }));
  }

  function tick() {
    for (const node of lines.querySelectorAll('[data-until]')) {
      const until = node.dataset.until;
      if (Date.parse(until) > Date.now()) node.textContent = `Held for you for ${countdown(until)}`;
      else {
        node.textContent = 'Hold expired: checkout reserves it again if still in stock.';
        node.removeAttribute('data-until');
      }
    }
  }

  // the lines are drawn anew (a load after the drawer opened, a change elsewhere): a control that had the focus
  // gives it to the same control of the new line, else to the drawer's Close, never to the page's body
  function render() {
    const had = lines.contains(document.activeElement) ? document.activeElement : null;
    const variant = had?.closest('[data-variant]')?.dataset.variant;
    const name = had && (had.getAttribute('aria-label') || had.textContent);
    draw();
    if (!had) return;
    const line = [...lines.querySelectorAll('[data-variant]')].find((n) => n.dataset.variant === variant);
    const same = line && [...line.querySelectorAll('button:not([disabled]), a[href], input, select')]
      .find((n) => (n.getAttribute('aria-label') || n.textContent) === name);
    (same || line?.querySelector('button:not([disabled])') || dialog.querySelector('#cart-close')).focus();
  }

  function draw() {
    lines.replaceChildren();
    const s = session();
    signin.hidden = !!s;
    if (!s) {
      document.getElementById('cart-signin-link').href = signInUrl();
      status.textContent = 'Sign in to add products and buy.';
      foot.hidden = true;
      return;
    }
    if (!cart) return;
    status.textContent = cart.items.length ? `${cart.item_count} item${cart.item_count === 1 ? '' : 's'}`
      : 'Your cart is empty.';
    for (const line of cart.items) lines.append(renderLine(line));
    foot.hidden = cart.items.length === 0;
    document.getElementById('cart-subtotal').textContent = money(cart.subtotal_minor, cart.currency);
    tick();
  }

  function renderLine(line) {
    const name = line.title || line.sku;
    const error = lineErrors.get(line.variant_id);
    const errId = `cart-err-${line.variant_id}`;
    const qty = el('span', { class: 'qty', 'aria-label': `Quantity of ${name}`, text: String(line.quantity) });
    const change = (to) => update(line, to);
    const notes = [];
    if (!line.purchasable) notes.push(el('p', { class: 'error small', text: 'No longer for sale: remove it.' }));
    else if (line.reserved && line.reserved_until) {
      notes.push(el('p', { class: 'muted small', 'data-until': line.reserved_until }));
    } else if (line.available < line.quantity) {
      notes.push(el('p', { class: 'error small', text: `Only ${line.available} left.` }));
    }
    if (line.purchasable && line.available > 0 && line.available <= 5) {
      notes.push(el('p', { class: 'muted small', text: `${line.available} more in stock` }));
    }
    return el('li', { class: 'cart-line', 'data-variant': line.variant_id },
      line.image_url ? el('img', { src: line.image_url, alt: '', width: 64, height: 64,
        onerror: (ev) => ev.target.replaceWith(el('span', { class: 'thumb' })) })
        : el('span', { class: 'thumb' }),
      el('div', { class: 'cart-line-body' },
        el('p', { class: 'cart-line-title', text: name }),
        variantName(line) ? el('p', { class: 'muted small', text: variantName(line) }) : null,
        el('p', { class: 'small', text: `${money(line.unit_price_minor, line.currency)} each · ${
          money(line.line_total_minor, line.currency)}` }),
        ...notes,
        el('div', { class: 'qty-row' },
          el('button', { type: 'button', class: 'secondary step', 'aria-label': `One less ${name}`,
            disabled: line.quantity <= 1, 'aria-describedby': error ? errId : null,
            onclick: () => change(line.quantity - 1), text: '−' }),
          qty,
          el('button', { type: 'button', class: 'secondary step', 'aria-label': `One more ${name}`,
            'aria-describedby': error ? errId : null, onclick: () => change(line.quantity + 1), text: '+' }),
          el('button', { type: 'button', class: 'link', 'aria-label': `Remove ${name}`,
            onclick: () => change(0), text: 'Remove' })),
        el('p', { class: 'error small', id: errId, role: 'alert', text: error || '' })));
  }

  async function update(line, qty) {
    const name = line.title || line.sku;
    lineErrors.delete(line.variant_id);
    for (const b of lines.querySelectorAll(`[data-variant="${line.variant_id}"] button`)) b.disabled = true;
    try {
      const path = `/api/v1/me/cart/items/${line.variant_id}`;
      const out = qty === 0 ? await call(path, { method: 'DELETE' })
        : await call(path, { method: 'PATCH', body: { qty } });
      cart = out.cart;
      status.textContent = qty === 0 ? `${name} removed.` : `${name}: ${qty} in your cart.`;
    } catch (e) {
      lineErrors.set(line.variant_id, e.code === 'out_of_stock' ? `Not enough stock for ${qty}: ${e.message}.`
        : e.message);
      await load(false);
      if (e.status === 401) render();
      return;
    }
    render();
    announce();
    const again = lines.querySelector(`[data-variant="${line.variant_id}"] button:not([disabled])`);
    (again || dialog.querySelector('#cart-close')).focus();
  }

  async function load(tell = true) {
    if (!session()) {
      cart = null;
      render();
      return;
    }
    if (!cart) status.textContent = 'Loading your cart…';
    try {
      cart = (await call('/api/v1/me/cart')).cart;
    } catch (e) {
      status.textContent = e.status === 401 ? 'Your session has ended: sign in again.'
        : `Your cart could not be loaded: ${e.message}`;
      if (e.status === 401) render();
      return;
    }
    render();
    if (tell) announce();
  }

  function open() {
    opener = document.activeElement;
    if (!dialog.open) dialog.showModal();
    load();
    clearInterval(timer);
    timer = setInterval(tick, 1000);
    dialog.querySelector('#cart-close').focus();
  }

  dialog.addEventListener('close', () => {
    clearInterval(timer);
    if (opener && opener.isConnected) opener.focus();
  });
  document.getElementById('cart-close').addEventListener('click', () => dialog.close());
  dialog.addEventListener('click', (ev) => { if (ev.target === dialog) dialog.close(); }); // the backdrop
  dialog.addEventListener('keydown', (ev) => { // Tab cycles inside the drawer
    if (ev.key !== 'Tab') return;
    const f = [...dialog.querySelectorAll('a[href], button:not([disabled]), input, select')]
      .filter((n) => n.offsetParent !== null);
    if (!f.length) return;
    const first = f[0];
    const last = f[f.length - 1];
    if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
  });
  document.addEventListener('live:open-cart', open);
  document.addEventListener('live:cart-changed', (ev) => { if (ev.detail?.source !== 'cart') load(); });
  load();
}

const drawer = document.getElementById('cart-drawer');
if (drawer && !drawer.dataset.ready) { // once, even if this module is loaded under two URLs
  drawer.dataset.ready = '1';
  setup(drawer);
}
