// The seller's products (/studio/products; docs/web.md, "The studio"): every product of the shop (GET
// /api/v1/me/products) with its variants' stock (on hand, held in carts, sold, available), stock adjusted per variant
// (POST /api/v1/variants/{id}/stock with a reason), a product put on sale, back to draft or archived (PATCH
// /api/v1/products/{id}), and a new product with one variant (POST /api/v1/products; per-field errors).
import { api, authHeaders, errorOf, requireSession, signInAgain } from './api.js';
import { el, money } from './format.js';

const $ = (id) => document.getElementById(id);
const me = requireSession();
const list = $('product-list');
const STATUS = { draft: 'Draft', active: 'On sale', archived: 'Archived' };
const FIELDS = { title: 'np-title', description: 'np-description', sku: 'np-sku', price_minor: 'np-price',
  stock: 'np-stock' };

// JSON like api.js, but a failure keeps the API's `details` ([{field, message}]) for per-field errors
async function send(path, method, body) {
  const resp = await fetch(path, { method, body: JSON.stringify(body), headers: {
    'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders(me.token) } });
  if (resp.ok) return resp.json();
  const data = await resp.clone().json().catch(() => null);
  const e = await errorOf(resp);
  if (e.status === 401) signInAgain();
  e.details = Array.isArray(data?.error?.details) ? data.error.details : [];
  throw e;
}

function digits(currency) {
  return new Intl.NumberFormat(undefined, { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
}

const variantName = (v) => [v.sku, [v.color, v.size].filter(Boolean).join(' / ')].filter(Boolean).join(' · ');

function stockForm(v) {
  const id = `delta-${v.id}`;
  const delta = el('input', { id, type: 'number', step: '1', inputmode: 'numeric', class: 'delta' });
  const reason = el('input', { id: `reason-${v.id}`, maxlength: '200', value: 'Restock', class: 'reason' });
  const err = el('p', { class: 'error', role: 'alert' });
  return el('form', { class: 'stock-form', novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const n = Number(delta.value);
    if (!Number.isInteger(n) || n === 0) {
      err.textContent = 'Enter a whole number of units to add (or, negative, to remove).';
      delta.focus();
      return;
    }
    try {
      await send(`/api/v1/variants/${v.id}/stock`, 'POST', { delta: n, reason: reason.value.trim() || 'Adjusted' });
      await load();
      $(`delta-${v.id}`)?.focus();
    } catch (e) { err.textContent = e.message; }
  } },
  el('label', { for: id, text: `Add or remove units of ${v.sku}` }), delta,
  el('label', { for: `reason-${v.id}`, text: 'Why' }), reason,
  el('button', { type: 'submit', class: 'secondary', text: 'Update stock' }), err);
}

function productItem(p) {
  const err = el('p', { class: 'error', role: 'alert' });
  const setStatus = (status) => async () => {
    try {
      await send(`/api/v1/products/${p.id}`, 'PATCH', { status });
      await load();
    } catch (e) { err.textContent = e.message; }
  };
  return el('li', { 'data-product': p.id, class: 'card' },
    el('h2', {}, p.title, ' ', el('span', { class: `badge st-${p.status}`, text: STATUS[p.status] ?? p.status })),
    el('ul', { class: 'variants', 'aria-label': `Variants of ${p.title}` }, ...p.variants.map((v) => el('li', {
      'data-variant': v.id },
    el('p', {}, el('strong', { text: variantName(v) }), ' ', money(v.price_minor, v.currency)),
    el('p', { class: 'muted stock-line', text: `${v.stock.on_hand} on hand · ${v.stock.reserved} in carts · ` +
      `${v.stock.sold} sold · ` }, el('strong', { class: 'available', text: `${v.available} available` })),
    stockForm(v)))),
    el('div', { class: 'actions' },
      p.status !== 'active' ? el('button', { type: 'button', text: 'Put on sale', 'aria-label': `Put ${p.title} on sale`,
        onclick: setStatus('active') }) : null,
      p.status === 'active' ? el('button', { type: 'button', class: 'secondary', text: 'Back to draft',
        'aria-label': `Back to draft: ${p.title}`, onclick: setStatus('draft') }) : null,
      p.status !== 'archived' ? el('button', { type: 'button', class: 'secondary', text: 'Archive',
        'aria-label': `Archive ${p.title}`, onclick: setStatus('archived') }) : null),
    err);
}

async function load() {
  $('list-error').textContent = '';
  try {
    const { items } = await api('/api/v1/me/products?limit=100');
    list.replaceChildren(...items.map(productItem));
    $('list-state').textContent = items.length ? '' : 'No products yet: add your first one below.';
  } catch (e) {
    if (e.status === 401) return signInAgain();
    $('list-state').textContent = '';
    $('list-error').textContent = e.status === 403 ? 'Products are for sellers: this account has no shop.'
      : `Could not load your products: ${e.message}`;
  }
  return undefined;
}

$('new-product').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('np-error').textContent = $('np-state').textContent = '';
  for (const id of Object.values(FIELDS)) {
    $(id).removeAttribute('aria-invalid');
    $(`${id}-error`).textContent = '';
  }
  const currency = $('np-currency').value;
  const price = Number($('np-price').value.replace(',', '.'));
  const bad = (id, message) => {
    $(id).setAttribute('aria-invalid', 'true');
    $(`${id}-error`).textContent = message;
    $(id).focus();
  };
  if (!$('np-price').value.trim() || !Number.isFinite(price) || price < 0) {
    bad('np-price', 'Enter the price, e.g. 19.99.');
    return;
  }
  const variant = { sku: $('np-sku').value.trim(), price_minor: Math.round(price * 10 ** digits(currency)),
    currency, stock: Number($('np-stock').value || 0) };
  if ($('np-color').value.trim()) variant.color = $('np-color').value.trim();
  if ($('np-size').value.trim()) variant.size = $('np-size').value.trim();
  const body = { title: $('np-title').value.trim(), variants: [variant],
    status: $('np-active').checked ? 'active' : 'draft' };
  if ($('np-description').value.trim()) body.description = $('np-description').value.trim();
  const button = ev.target.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const p = await send('/api/v1/products', 'POST', body);
    ev.target.reset();
    $('np-state').textContent = `${p.title} is added.`;
    await load();
  } catch (e) {
    let first = null;
    for (const d of e.details ?? []) {
      const parts = String(d.field ?? '').split('.');
      const id = FIELDS[parts[parts.length - 1]] ?? FIELDS[parts[0]];
      if (!id || first === id) continue;
      $(id).setAttribute('aria-invalid', 'true');
      $(`${id}-error`).textContent = d.message;
      first ??= id;
    }
    if (first) $(first).focus();
    else $('np-error').textContent = e.message;
  } finally {
    button.disabled = false;
  }
});

if (me) load();
