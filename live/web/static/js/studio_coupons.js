// The shop's coupons (/studio/coupons; docs/web.md, "The studio"): the list (GET /api/v1/me/coupons) with each
// one's discount, limits, window and uses; a coupon disabled or enabled again (PATCH /api/v1/coupons/{id} `active`);
// a new one (POST /api/v1/coupons: code, percent or amount, minimum subtotal, number of uses, start and end), the
// API's per-field errors on their fields; a coupon's window and number of uses edited in place (PATCH, only what
// changed; an emptied field is null: no start, no end, no limit).
import { requireSession, signInAgain } from './api.js';
import { call } from './cart.js';
import { el, localInput, money, pad } from './format.js';
import { clearErrors, field, fromMinor, showErrors, toMinor } from './studio_form.js';

const $ = (id) => document.getElementById(id);
const me = requireSession();
const FIELDS = { code: 'nc-code', conflict: 'nc-code', value: 'nc-value', currency: 'nc-value',
  min_subtotal_minor: 'nc-min', usage_limit: 'nc-limit', starts_at: 'nc-starts', ends_at: 'nc-ends' };

const when = (t) => new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function describe(c) {
  const off = c.kind === 'percent' ? `${c.value} % off` : `${money(c.value, c.currency)} off`;
  const parts = [off];
  // a percent coupon has no currency: its minimum is in the buyer's cart's, entered and shown as the form converts it
  if (c.min_subtotal_minor) {
    parts.push(`orders from ${c.currency ? money(c.min_subtotal_minor, c.currency)
      : `${fromMinor(c.min_subtotal_minor, $('nc-currency').value)} (in the cart’s currency)`}`);
  }
  parts.push(c.usage_limit === null ? `used ${c.used_count} times (no limit)` : `used ${c.used_count} of ${c.usage_limit}`);
  if (c.starts_at) parts.push(`from ${when(c.starts_at)}`);
  if (c.ends_at) parts.push(`until ${when(c.ends_at)}`);
  return parts.join(' · ');
}

// a datetime-local input's value (the seller's local time) as ISO 8601 with the seller's offset at that time
// ('2030-03-01T10:00:00+05:30'); null when empty, undefined when it is not a time
function withOffset(value) {
  if (!value) return null;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return undefined;
  const off = -d.getTimezoneOffset();
  return `${localInput(d)}:${pad(d.getSeconds())}${off < 0 ? '-' : '+'}`
    + `${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

// The edit form's fields as the PATCH body, only what changed (an unchanged time keeps its seconds), or the fields
// a person must fix first ([[API field, message]]): a window ending before it starts, a limit below the uses
const WINDOW = ['starts_at', 'ends_at'];
function changes(c, inputs) {
  const b = {};
  const bad = [];
  for (const name of WINDOW) {
    const input = inputs[name];
    if (input.value === localInput(c[name]) && !input.validity.badInput) continue;
    const t = input.validity.badInput ? undefined : withOffset(input.value);
    if (t === undefined) bad.push([name, 'Enter a date and time, or leave it empty.']);
    else b[name] = t;
  }
  const start = 'starts_at' in b ? b.starts_at : c.starts_at;
  const end = 'ends_at' in b ? b.ends_at : c.ends_at;
  if (!bad.length && start && end && Date.parse(start) >= Date.parse(end)) {
    bad.push('ends_at' in b ? ['ends_at', 'The end must come after the start.']
      : ['starts_at', `The start must come before the end (${when(end)}).`]);
  }
  const limit = inputs.usage_limit;
  const n = limit.value.trim() === '' ? null : Number(limit.value);
  if (limit.validity.badInput || (n !== null && !Number.isInteger(n))) {
    bad.push(['usage_limit', 'Enter a whole number of uses, or leave it empty for no limit.']);
  } else if (n !== null && n < c.used_count) {
    bad.push(['usage_limit', `It has been used ${c.used_count} times: enter at least ${c.used_count}.`]);
  } else if (n !== null && n < 0) {
    bad.push(['usage_limit', 'Enter 0 or more, or leave it empty for no limit.']);
  } else if (n !== c.usage_limit) {
    b.usage_limit = n;
  }
  return { b, bad };
}

// The coupon's window and limit in a form in place of nothing: `done(updated)` closes it (updated: the API's
// answer, or undefined for a cancel); Escape cancels
function editForm(c, done) {
  const id = (name) => `ec-${c.id}-${name}`;
  const starts = field(id('starts'), 'Starts (empty: no start date)', { type: 'datetime-local',
    value: localInput(c.starts_at) });
  const ends = field(id('ends'), 'Ends (empty: no end date)', { type: 'datetime-local', value: localInput(c.ends_at) });
  const limit = field(id('limit'), 'Number of uses (empty: no limit)', { type: 'number', min: c.used_count, step: 1,
    inputmode: 'numeric', value: c.usage_limit ?? '' });
  const inputs = { starts_at: starts[1], ends_at: ends[1], usage_limit: limit[1] };
  const error = el('p', { class: 'error', role: 'alert' });
  const save = el('button', { type: 'submit', text: 'Save' });
  const form = el('form', { class: 'coupon-edit', 'aria-label': `Edit ${c.code}`, novalidate: true },
    ...starts, ...ends, ...limit,
    el('div', { class: 'actions' }, save,
      el('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => done() })),
    error);
  form.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    ev.preventDefault();
    done();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const { b, bad } = changes(c, inputs);
    if (bad.length) return showErrors(localErrors(bad), inputs, error);
    if (!Object.keys(b).length) return done();
    save.disabled = true;
    try {
      done(await call(`/api/v1/coupons/${c.id}`, { method: 'PATCH', body: b }));
    } catch (e) {
      if (e.status === 401) return signInAgain();
      showErrors(e, inputs, error); // details on their fields; a refusal naming none in the form's line
      save.disabled = false;
    }
    return undefined;
  });
  return form;
}

function couponItem(c) {
  const err = el('p', { class: 'error', role: 'alert' });
  const expired = c.ends_at && Date.parse(c.ends_at) <= Date.now();
  const label = !c.active ? 'Disabled' : expired ? 'Ended' : 'Active';
  const toggle = async (ev) => {
    ev.target.disabled = true;
    err.textContent = '';
    try {
      await call(`/api/v1/coupons/${c.id}`, { method: 'PATCH', body: { active: !c.active } });
      await load();
      $(`coupon-${c.id}`)?.querySelector('[data-act=toggle]')?.focus();
    } catch (e) {
      if (e.status === 401) return signInAgain();
      err.textContent = e.message;
      ev.target.disabled = false;
    }
    return undefined;
  };
  let form = null;
  const edit = el('button', { type: 'button', class: 'secondary', 'data-act': 'edit', 'aria-expanded': 'false',
    'aria-label': `Edit ${c.code}`, text: 'Edit' });
  // closed by Save (the row redrawn with the API's answer) or Cancel / Escape (unchanged): focus back on Edit
  const done = (updated) => {
    if (updated) {
      const fresh = couponItem(updated);
      li.replaceWith(fresh);
      $('list-state').textContent = `${updated.code} is saved.`;
      fresh.querySelector('[data-act=edit]').focus();
      return;
    }
    form.remove();
    form = null;
    edit.setAttribute('aria-expanded', 'false');
    edit.focus();
  };
  edit.addEventListener('click', () => {
    if (form) return done();
    form = editForm(c, done);
    err.before(form);
    edit.setAttribute('aria-expanded', 'true');
    return form.querySelector('input').focus();
  });
  const li = el('li', { id: `coupon-${c.id}`, 'data-code': c.code, 'data-active': String(c.active) },
    el('h2', {}, el('code', { text: c.code }), ' ',
      el('span', { class: `badge ${c.active && !expired ? 'st-on' : 'st-off'}`, text: label })),
    el('p', { class: 'muted', text: describe(c) }),
    el('div', { class: 'actions' }, edit, el('button', { type: 'button', class: 'secondary', onclick: toggle,
      'data-act': 'toggle', text: c.active ? 'Disable' : 'Enable',
      'aria-label': `${c.active ? 'Disable' : 'Enable'} ${c.code}` })),
    err);
  return li;
}

async function load() {
  $('list-error').textContent = '';
  try {
    const { items } = await call('/api/v1/me/coupons');
    $('coupons').replaceChildren(...items.map(couponItem));
    $('list-state').textContent = items.length ? '' : 'No coupons yet: create your first one below.';
  } catch (e) {
    if (e.status === 401) return signInAgain();
    $('list-state').textContent = '';
    $('list-error').textContent = e.status === 403 ? 'Coupons are for sellers: this account has no shop.'
      : `Could not load your coupons: ${e.message}`;
  }
  return undefined;
}

const kind = () => ($('nc-amount').checked ? 'amount' : 'percent');
// the labels say each amount's unit: a percent coupon's minimum is in whatever currency the buyer's cart is in
function labels() {
  const percent = kind() === 'percent';
  $('nc-currency').disabled = percent;
  $('nc-value-label').textContent = percent ? 'Percent off (1-100)' : 'Amount off';
  $('nc-min-label').textContent = percent ? 'Minimum order subtotal, in the cart’s currency (optional)'
    : `Minimum order subtotal in ${$('nc-currency').value} (optional)`;
}
for (const id of ['nc-percent', 'nc-amount', 'nc-currency']) $(id).addEventListener('change', labels);
labels(); // a restored form (back button) may hold an amount coupon

// the inputs by API field, and by their own id (what the page checks itself)
const apiFields = Object.fromEntries(Object.entries(FIELDS).map(([k, id]) => [k, $(id)]));
const ids = Object.fromEntries(Object.values(FIELDS).map((id) => [id, $(id)]));
// what the page checks itself, shown as the API's per-field errors would be
const localErrors = (bad) => ({ details: bad.map(([id, message]) => ({ field: id, message })) });

// The form as the API's body, or the fields a person must fix first ([[id, message]]).
function body() {
  const bad = [];
  const currency = $('nc-currency').value;
  const b = { code: $('nc-code').value.trim(), kind: kind() };
  if (!b.code) bad.push(['nc-code', 'Enter the code buyers will type.']);
  const raw = $('nc-value').value.trim();
  if (b.kind === 'percent') {
    b.value = Number(raw);
    if (!Number.isInteger(b.value) || b.value < 1 || b.value > 100) bad.push(['nc-value', 'Enter a whole percent from 1 to 100.']);
  } else {
    b.value = toMinor(raw, currency);
    b.currency = currency;
    if (!(b.value > 0)) bad.push(['nc-value', `Enter the amount off in ${currency}, e.g. 5.00.`]);
  }
  if ($('nc-min').value.trim()) {
    b.min_subtotal_minor = toMinor($('nc-min').value, currency);
    if (b.min_subtotal_minor === null) {
      bad.push(['nc-min', `Enter an amount${b.kind === 'percent' ? '' : ` in ${currency}`}, e.g. 50.00.`]);
    }
  }
  if ($('nc-limit').value.trim()) b.usage_limit = Number($('nc-limit').value);
  if ($('nc-starts').value) b.starts_at = new Date($('nc-starts').value).toISOString();
  if ($('nc-ends').value) b.ends_at = new Date($('nc-ends').value).toISOString();
  if (b.starts_at && b.ends_at && b.starts_at >= b.ends_at) bad.push(['nc-ends', 'The end must come after the start.']);
  return { b, bad };
}

$('new-coupon').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearErrors(ev.target);
  $('nc-state').textContent = '';
  const { b, bad } = body();
  if (bad.length) return showErrors(localErrors(bad), ids, $('nc-error'));
  const button = ev.target.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const c = await call('/api/v1/coupons', { method: 'POST', body: b });
    ev.target.reset();
    labels();
    $('nc-state').textContent = `${c.code} is created.`;
    await load();
  } catch (e) {
    if (e.status === 401) return signInAgain();
    showErrors(e, apiFields, $('nc-error')); // a taken code (409) is a conflict about the code
  } finally {
    button.disabled = false;
  }
  return undefined;
});

if (me) load();
