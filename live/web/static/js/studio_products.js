// The seller's products (/studio/products; docs/web.md, "The studio"): every product of the shop (GET
// /api/v1/me/products) with its variants' stock (on hand, held in carts, sold, available), stock adjusted per variant
// (POST /api/v1/variants/{id}/stock with a reason), a product put on sale, back to draft or archived (PATCH
// /api/v1/products/{id}), and a new product with one variant (POST /api/v1/products; per-field errors). Each product's
// pictures (js/studio_pictures.js) and variants edited or added (js/studio_variants.js).
import { api, requireSession, signInAgain } from './api.js';
import { el, money } from './format.js';
import { clearErrors, fieldError, send, showErrors, toMinor } from './studio_form.js';
import { pictures } from './studio_pictures.js';
import { newVariant, variantEditor } from './studio_variants.js';

const $ = (id) => document.getElementById(id);
const me = requireSession();
const list = $('product-list');
const STATUS = { draft: 'Draft', active: 'On sale', archived: 'Archived' };
const FIELDS = { title: 'np-title', description: 'np-description', sku: 'np-sku', price_minor: 'np-price',
  stock: 'np-stock' };

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
    el('h2', { tabindex: '-1' }, p.title, ' ', el('span', { class: `badge st-${p.status}`, text: STATUS[p.status] ?? p.status })),
    el('ul', { class: 'variants', 'aria-label': `Variants of ${p.title}` }, ...p.variants.map((v) => el('li', {
      'data-variant': v.id },
    el('p', {}, el('strong', { text: variantName(v) }), ' ', money(v.price_minor, v.currency)),
    el('p', { class: 'muted stock-line', text: `${v.stock.on_hand} on hand · ${v.stock.reserved} in carts · ` +
      `${v.stock.sold} sold · ` }, el('strong', { class: 'available', text: `${v.available} available` })),
    stockForm(v), ...variantEditor(v, done(p))))),
    newVariant(p, done(p)),
    el('h3', { text: 'Pictures' }), pictures(p, done(p)),
    el('div', { class: 'actions' },
      p.status !== 'active' ? el('button', { type: 'button', text: 'Put on sale', 'aria-label': `Put ${p.title} on sale`,
        onclick: setStatus('active') }) : null,
      p.status === 'active' ? el('button', { type: 'button', class: 'secondary', text: 'Back to draft',
        'aria-label': `Back to draft: ${p.title}`, onclick: setStatus('draft') }) : null,
      p.status !== 'archived' ? el('button', { type: 'button', class: 'secondary', text: 'Archive',
        'aria-label': `Archive ${p.title}`, onclick: setStatus('archived') }) : null),
    err);
}

// After a change to product p: the list read again, `note` said, focus on p's title (its old nodes are gone)
const done = (p) => async (note) => {
  await load();
  $('list-note').textContent = note;
  document.querySelector(`li[data-product='${p.id}'] h2`)?.focus();
};

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
  const form = ev.target;
  clearErrors(form);
  $('np-state').textContent = '';
  const inputs = Object.fromEntries(Object.entries(FIELDS).map(([k, id]) => [k, $(id)]));
  const currency = $('np-currency').value;
  const price = toMinor($('np-price').value, currency);
  if (price === null) return fieldError($('np-price'), 'Enter the price, e.g. 19.99.');
  const variant = { sku: $('np-sku').value.trim(), price_minor: price, currency,
    stock: Number($('np-stock').value || 0) };
  if ($('np-color').value.trim()) variant.color = $('np-color').value.trim();
  if ($('np-size').value.trim()) variant.size = $('np-size').value.trim();
  const body = { title: $('np-title').value.trim(), variants: [variant],
    status: $('np-active').checked ? 'active' : 'draft' };
  if ($('np-description').value.trim()) body.description = $('np-description').value.trim();
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const p = await send('/api/v1/products', 'POST', body);
    form.reset();
    $('np-state').textContent = `${p.title} is added.`;
    await load();
  } catch (e) {
    showErrors(e, { ...inputs, conflict: inputs.sku }, $('np-error'));
  } finally {
    button.disabled = false;
  }
  return undefined;
});

if (me) load();
