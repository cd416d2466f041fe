// The account's Addresses (GET/POST/DELETE /api/v1/me/addresses: add with per-field errors, the default one
// first, another made the default: POST .../addresses/<id>/default), Wishlist (GET /api/v1/me/wishlist,
// DELETE .../wishlist/<product>) and Following (GET /api/v1/me/follows, cursor-paged; DELETE
// /api/v1/sellers/<id>/follow).
import {
  $, call, clearError, clearFieldErrors, fail, fieldErrors, h, money, pagedList, put, status,
} from './account_util.js';

function removeButton(text, li, request, after) {
  return h('button', {
    type: 'button', class: 'secondary', onclick: async (ev) => {
      ev.target.disabled = true;
      clearError();
      try {
        await request();
        li.remove();
        after?.();
      } catch (e) {
        ev.target.disabled = false;
        fail(e);
      }
    },
  }, text);
}

// ---- addresses ----
const FIELDS = [['name', 'Full name', 'name', true], ['line1', 'Address line 1', 'address-line1', true],
  ['line2', 'Address line 2 (optional)', 'address-line2'], ['city', 'City', 'address-level2', true],
  ['state', 'State or region (optional)', 'address-level1'], ['postal_code', 'Postal code', 'postal-code'],
  ['country', 'Country code (2 letters, e.g. US)', 'country'], ['phone', 'Phone (optional)', 'tel']];

function addressText(a) {
  return [a.line1, a.line2, [a.postal_code, a.city].filter(Boolean).join(' '), a.state, a.country]
    .filter(Boolean).join(', ');
}

function addressItem(a, list, empty, reload) {
  const li = h('li', { 'data-address': a.id });
  const makeDefault = a.is_default ? null : h('button', {
    type: 'button', class: 'secondary', onclick: async (ev) => {
      ev.target.disabled = true;
      clearError();
      try {
        await call(`/api/v1/me/addresses/${a.id}/default`, { method: 'POST' });
        await reload();
        status(`${a.name}, ${a.line1} is now your default address.`);
      } catch (e) {
        ev.target.disabled = false;
        fail(e);
      }
    },
  }, `Make ${a.name}, ${a.line1} the default`);
  put(li, h('div', { class: 'row' }, h('strong', {}, a.name),
    a.is_default ? h('span', { class: 'status-badge good' }, 'default') : null),
  h('p', {}, addressText(a)), a.phone ? h('p', { class: 'muted' }, a.phone) : null,
  h('div', { class: 'actions' }, makeDefault, removeButton(`Delete the address ${a.name}, ${a.line1}`, li,
    () => call(`/api/v1/me/addresses/${a.id}`, { method: 'DELETE' }),
    () => { empty.hidden = list.children.length > 0; status('Address deleted.'); })));
  return li;
}

function addressForm(onAdded) {
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'add-address-h' },
    h('h3', { id: 'add-address-h' }, 'Add an address'));
  const grid = h('div', { class: 'form-grid' });
  for (const [name, label, auto, required] of FIELDS) {
    const id = `address-${name}`;
    grid.append(h('div', { class: 'field' }, h('label', { for: id }, label),
      h('input', { id, name, autocomplete: auto, required: !!required, 'aria-describedby': `${id}-error`,
        maxlength: name === 'country' ? 2 : 200 }),
      h('p', { class: 'field-error', id: `${id}-error` })));
  }
  const def = h('input', { id: 'address-default', name: 'default', type: 'checkbox' });
  const error = h('p', { class: 'error', role: 'alert' });
  form.append(grid, h('label', { class: 'check', for: def.id }, def, 'Make it my default address'), error,
    h('button', { type: 'submit' }, 'Save address'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    error.textContent = '';
    const body = { default: def.checked };
    for (const [name] of FIELDS) {
      const v = form.elements.namedItem(name).value.trim();
      if (v) body[name] = name === 'country' ? v.toUpperCase() : v;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const a = await call('/api/v1/me/addresses', { method: 'POST', body });
      form.reset();
      onAdded(a);
    } catch (e) {
      if (!fieldErrors(form, e.details ?? [])) error.textContent = e.message;
      else error.textContent = 'Please correct the fields marked above.';
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

async function addresses(body) {
  const list = h('ul', { class: 'account-list', 'aria-label': 'Your addresses' });
  const empty = h('p', { class: 'muted' }, 'No saved addresses.');
  async function load() {
    const data = await call('/api/v1/me/addresses');
    list.replaceChildren(...data.items.map((a) => addressItem(a, list, empty, load)));
    empty.hidden = data.items.length > 0;
  }
  body.append(empty, list, addressForm(async () => {
    try {
      await load();
      status('Address saved.');
    } catch (e) { fail(e); }
  }));
  await load();
  status('');
}

// ---- wishlist ----
function price(p) {
  const prices = p.variants.map((v) => v.price_minor);
  if (!prices.length) return '';
  const low = Math.min(...prices);
  return `${prices.some((x) => x !== low) ? 'from ' : ''}${money(low, p.variants[0].currency)}`;
}

async function wishlist(body) {
  const list = h('ul', { class: 'account-list', 'aria-label': 'Your wishlist' });
  const empty = h('p', { class: 'muted' }, 'Your wishlist is empty.');
  const data = await call('/api/v1/me/wishlist');
  list.append(...data.items.map((p) => {
    const li = h('li', { 'data-product': p.id });
    li.append(h('div', { class: 'row' }, h('strong', {}, p.title), h('span', {}, price(p))),
      h('p', { class: 'muted' }, p.seller.name, p.status !== 'active' ? ' · no longer on sale' : ''),
      h('div', { class: 'actions' }, removeButton(`Remove ${p.title} from the wishlist`, li,
        () => call(`/api/v1/me/wishlist/${p.id}`, { method: 'DELETE' }),
        () => { empty.hidden = list.children.length > 0; status('Removed from the wishlist.'); })));
    return li;
  }));
  empty.hidden = data.items.length > 0;
  body.append(empty, list);
  status('');
}

// ---- follows ----
function follows(body) {
  const paged = pagedList(body, {
    label: 'Sellers you follow', empty: 'You follow no seller.',
    load: (c) => call(`/api/v1/me/follows?limit=50${c ? `&cursor=${encodeURIComponent(c)}` : ''}`),
    render: (f) => {
      const li = h('li', { 'data-seller': f.seller.id });
      li.append(h('div', { class: 'row' }, h('strong', {}, f.seller.display_name),
        f.live ? h('span', { class: 'badge live' }, 'Live now') : null),
      h('div', { class: 'actions' }, removeButton(`Unfollow ${f.seller.display_name}`, li,
        () => call(`/api/v1/sellers/${f.seller.id}/follow`, { method: 'DELETE' }),
        () => { paged.emptyNote.hidden = paged.list.children.length > 0; status(`Unfollowed ${f.seller.display_name}.`); })));
      return li;
    },
  });
  return paged.page();
}

export function show(section, body) {
  const run = { addresses, wishlist, follows }[section];
  return Promise.resolve(run(body)).catch(fail).finally(() => { if ($('panel-status').textContent === 'Loading…') status(''); });
}
