// The small helpers every page shares: money in a currency's own minor units, elements built without HTML
// strings (no injection), and a request that gives up in time. One copy here; pages import them rather than keeping
// their own.

const formats = new Map();
// money(1999, 'USD') -> "$19.99"; the minor unit follows the currency (JPY has none); '' without an amount.
export function money(minor, currency) {
  if (typeof minor !== 'number' || !currency) return '';
  let f = formats.get(currency);
  if (!f) {
    try {
      f = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    } catch {
      f = { format: (v) => `${v.toFixed(2)} ${currency}`, resolvedOptions: () => ({ maximumFractionDigits: 2 }) };
    }
    formats.set(currency, f);
  }
  return f.format(minor / 10 ** f.resolvedOptions().maximumFractionDigits);
}

// el('p', {class: 'x', text: 'hi', onclick: fn}, child, ...): null/undefined/false attributes and children are
// left out; `true` sets a boolean attribute.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

export const pad = (n, size = 2) => String(n).padStart(size, '0');

// an ISO time (or a Date) as a datetime-local input's value, in the viewer's time zone ('' for none)
export function localInput(time) {
  if (!time) return '';
  const d = new Date(time);
  return `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
    + `T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// How long a page's read waits for the server before it says so (withTimeout(..., READ_MS)).
export const READ_MS = 15000;

// withTimeout(api(...)): the promise, or an Error 'the server did not answer' after `ms` (nothing spins forever).
export function withTimeout(promise, ms = 10000) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('the server did not answer')), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
