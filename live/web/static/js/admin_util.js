// What the admin sections share (docs/web.md, "Admin"): the counts needing action beside the tabs, a confirmation
// form opened inside a row (an optional note or reason; it cannot be sent twice; a refusal is said in the form and
// nothing else changes), a row replaced by its new state after an action, filters, and short texts.
import { ApiError } from './api.js';
import { call, clearError, fail, status } from './account_util.js';
import { el, READ_MS, withTimeout } from './format.js';

export { badge, call, fail, put, status, when, words } from './account_util.js';
export { el, money } from './format.js';

// section -> [the REST list of what needs action, the count's words]. Not Contact: its listing is audited as a look
// at each message listed (contact.list), which a count on every admin page would fake.
const COUNTS = {
  payments: ['/api/v1/admin/payments/flagged?limit=100', 'flagged'],
  jobs: ['/api/v1/admin/jobs?state=dead&limit=100', 'dead'],
  sellers: ['/api/v1/admin/seller-applications?status=pending&limit=100', 'pending'],
};

// Read what needs action in each section (the first page of its list: "100+" when there are more) into the tabs.
export async function refreshCounts() {
  await Promise.all(Object.entries(COUNTS).map(async ([section, [path, what]]) => {
    const badge = document.getElementById(`count-${section}`);
    if (!badge) return;
    try {
      const page = await read(path);
      const n = page.items.length;
      badge.textContent = n ? `${page.next_cursor ? `${n}+` : n} ${what}` : '';
      badge.hidden = !n;
    } catch { /* a hint only: the section itself says what failed */ }
  }));
}

// A read that gives up after READ_MS: the list or check then says so (nothing spins forever); an action is not timed
// out (its answer, however late, is what the row shows).
export async function read(path) {
  try {
    return await withTimeout(call(path), READ_MS);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(0, 'timeout', `The server did not answer within ${READ_MS / 1000} s. Reload the page to try `
      + 'again.');
  }
}

let uid = 0;

// A confirmation inside `slot` (a row's action area): the question, an optional text field ({name, label,
// optional}), the confirm button and Cancel. `run(value)` does the request and returns what to say ("Role changed
// ..."); until it answers both buttons are disabled (no double submit). A refusal is shown in the form (the API's
// per-field message for the field, else its message) and the form stays as it was. `opener` gets the focus back
// on Cancel (or Esc).
export function confirmIn(slot, opener, { question, confirm, field, run }) {
  const id = `confirm-${++uid}`;
  const error = el('p', { class: 'field-error', role: 'alert', id: `${id}-error` });
  const input = field ? el('textarea', { id, name: field.name, rows: 2, maxlength: field.max ?? 2000,
    'aria-describedby': `${id}-error` }) : null;
  const ok = el('button', { type: 'submit' }, confirm);
  const cancel = el('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const form = el('form', { class: 'confirm', novalidate: true, 'aria-label': question },
    el('p', { class: 'question', text: question }),
    field ? el('label', { for: id, text: field.label }) : null, input, error,
    el('div', { class: 'actions' }, ok, cancel));
  cancel.addEventListener('click', () => {
    form.remove();
    opener?.focus();
  });
  form.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !cancel.disabled) cancel.click();
  });
  let busy = false;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (busy) return;
    busy = true;
    ok.disabled = cancel.disabled = true;
    error.textContent = '';
    input?.removeAttribute('aria-invalid');
    try {
      status(await run(input ? input.value.trim() : undefined));
      form.remove();
    } catch (e) {
      const mine = (e.details ?? []).find((d) => String(d.field ?? '').split('.').pop() === field?.name);
      error.textContent = mine ? `${field.label}: ${mine.message}` : e.message;
      if (mine) input.setAttribute('aria-invalid', 'true');
      ok.disabled = cancel.disabled = false;
      busy = false;
      (mine ? input : ok).focus();
    }
  });
  slot.replaceChildren(form);
  (input ?? ok).focus();
  return form;
}

// The row `li` replaced by `fresh` (its new state), which takes the focus so a keyboard user keeps their place.
export function replaceRow(li, fresh) {
  fresh.tabIndex = -1;
  li.replaceWith(fresh);
  fresh.focus();
  return fresh;
}

// A filter bar: `controls` ([label, element]) and a submit button; `apply()` on submit and on a select's change.
export function filterBar(label, controls, apply) {
  const form = el('form', { class: 'filters', role: 'search', 'aria-label': label });
  for (const [text, control] of controls) {
    form.append(el('span', { class: 'filter' }, el('label', { for: control.id, text }), control));
    if (control.tagName === 'SELECT') control.addEventListener('change', apply);
  }
  form.append(el('button', { type: 'submit', class: 'secondary' }, 'Show'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    apply();
  });
  return form;
}

export function select(id, options, value = '') {
  const s = el('select', { id });
  for (const [v, text] of options) s.append(el('option', { value: v, selected: v === value }, text));
  return s;
}

export const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  return q.toString();
};

// A paged list under a filter bar: `load(cursor)` -> {items, next_cursor}; `render(item)` -> an <li>; "Load more"
// while there is a next page. `refresh()` (a new filter) starts again, and an answer to an older request (the
// filter changed meanwhile) is dropped, so two filters' rows never mix.
export function pager(container, { label, load, render, empty }) {
  const list = el('ul', { class: 'account-list', 'aria-label': label });
  const more = el('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const emptyNote = el('p', { class: 'muted', hidden: true }, empty);
  container.append(emptyNote, list, el('div', { class: 'actions' }, more));
  let cursor = null;
  let generation = 0;
  async function page() {
    const mine = generation;
    more.disabled = true;
    clearError();
    try {
      const data = await load(cursor);
      if (mine !== generation) return;
      for (const item of data.items) list.append(render(item));
      cursor = data.next_cursor ?? null;
      more.hidden = !cursor;
      emptyNote.hidden = list.children.length > 0;
    } catch (e) {
      if (mine === generation) fail(e);
    } finally {
      if (mine === generation) more.disabled = false;
    }
  }
  more.addEventListener('click', page);
  return {
    list,
    page,
    refresh() {
      generation += 1;
      status('');
      list.replaceChildren();
      emptyNote.hidden = true;
      cursor = null;
      return page();
    },
  };
}
