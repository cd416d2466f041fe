// What the studio's product forms share (js/studio_products.js, studio_variants.js, studio_pictures.js): their
// requests (cart.js's `call`, which keeps the API's `details`: the studio's one request helper, js/studio_coupons.js
// and studio_returns.js call it too), prices in a currency's units, labelled fields with their error lines, and the
// API's per-field errors put under their fields.
import { clearFieldErrors } from './account_util.js';
import { signInAgain } from './api.js';
import { call } from './cart.js';
import { el } from './format.js';

// JSON with the session's token; a failure keeps the API's `details` for per-field errors; a refused token signs in
// again
export async function send(path, method, body) {
  try {
    return await call(path, { method, body });
  } catch (e) {
    if (e.status === 401) signInAgain();
    throw e;
  }
}

export function digits(currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

// '24.50' in USD -> 2450; null when it is not a price
export function toMinor(text, currency) {
  const value = Number(String(text).trim().replace(',', '.'));
  if (!String(text).trim() || !Number.isFinite(value) || value < 0) return null;
  return Math.round(value * 10 ** digits(currency));
}

export const fromMinor = (minor, currency) => (minor / 10 ** digits(currency)).toFixed(digits(currency));

// A labelled input (or `tag`: textarea, select) with its error line: [label, input, error]
export function field(id, label, { tag = 'input', ...attrs } = {}) {
  return [el('label', { for: id, text: label }), el(tag, { id, 'aria-describedby': `${id}-error`, ...attrs }),
    el('p', { id: `${id}-error`, class: 'error' })];
}

// The form's fields (account_util.js's clearFieldErrors) and its other error lines cleared
export function clearErrors(root) {
  clearFieldErrors(root);
  for (const node of root.querySelectorAll('.error')) node.textContent = '';
}

// The API's refusal on its fields (`fields` maps an API field, its last part or else its first, to an input; an
// input's first message is kept): each marked invalid with its message in its `${input.id}-error` line, the first
// one focused; `conflict` (409) goes on the `conflict` field when named; anything else in `line`
export function showErrors(e, fields, line) {
  const details = [...(e.details ?? [])];
  if (e.code === 'conflict' && fields.conflict) details.push({ field: 'conflict', message: e.message });
  const mine = new Map(); // input -> its first message
  for (const d of details) {
    const parts = String(d.field ?? '').split('.');
    const name = fields[parts[parts.length - 1]] ? parts[parts.length - 1] : parts[0];
    if (fields[name] && !mine.has(fields[name])) mine.set(fields[name], d.message);
  }
  let first = null;
  for (const [input, message] of mine) {
    const box = document.getElementById(`${input.id}-error`);
    if (!box) continue;
    box.textContent = message;
    input.setAttribute('aria-invalid', 'true');
    first ??= input;
  }
  if (first) first.focus();
  else line.textContent = e.message;
}

// One field's error: marked invalid, its message under it, focused
export function fieldError(input, message) {
  document.getElementById(`${input.id}-error`).textContent = message;
  input.setAttribute('aria-invalid', 'true');
  input.focus();
}
