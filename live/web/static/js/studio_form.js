// What the studio's product forms share (js/studio_products.js, studio_variants.js, studio_pictures.js): JSON
// requests that keep the API's `details` ([{field, message}]), prices in a currency's units, labelled fields with
// their error lines, and the API's per-field errors put under their fields.
import { authHeaders, errorOf, session, signInAgain } from './api.js';
import { el } from './format.js';

// JSON like api.js, but a failure keeps the API's `details` for per-field errors; a refused token signs in again
export async function send(path, method, body) {
  let resp;
  try {
    resp = await fetch(path, { method, body: JSON.stringify(body), headers: {
      'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders(session()?.token) } });
  } catch {
    throw Object.assign(new Error('The server could not be reached: check your connection and try again.'),
      { details: [] });
  }
  if (resp.ok) return resp.json();
  const data = await resp.clone().json().catch(() => null);
  const e = await errorOf(resp);
  if (e.status === 401) signInAgain();
  e.details = Array.isArray(data?.error?.details) ? data.error.details : [];
  throw e;
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

export function clearErrors(root) {
  for (const node of root.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
  for (const node of root.querySelectorAll('.error')) node.textContent = '';
}

// One field's error: marked invalid, its message under it, focused
export function fieldError(input, message) {
  input.setAttribute('aria-invalid', 'true');
  document.getElementById(`${input.id}-error`).textContent = message;
  input.focus();
}

// The API's refusal on its fields (`fields` maps an API field, its last part, to an input), the first one focused;
// `conflict` (409) goes on the `conflict` field when named; anything else in `line`
export function showErrors(e, fields, line) {
  let first = null;
  const details = [...(e.details ?? [])];
  if (e.code === 'conflict' && fields.conflict) details.push({ field: 'conflict', message: e.message });
  for (const d of details) {
    const parts = String(d.field ?? '').split('.');
    const input = fields[parts[parts.length - 1]] ?? fields[parts[0]];
    if (!input || input === first) continue;
    input.setAttribute('aria-invalid', 'true');
    document.getElementById(`${input.id}-error`).textContent = d.message;
    first ??= input;
  }
  if (first) first.focus();
  else line.textContent = e.message;
}
