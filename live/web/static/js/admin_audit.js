// Admin, Audit log: every seller and admin change, newest first (GET /api/v1/admin/audit?actor=&action=&entity=
// &entity_id=&from=&to=, cursor pages): when, who, what, on which entity, and what changed (before -> after and the
// rest of the row's data, summarized; the whole data as compact JSON under "Data"). Text only: nothing from a row is
// read as HTML. A filter the API refuses is said beside its field.
import { clearFieldErrors, fieldErrors } from './account_util.js';
import { el, filterBar, pager, put, query, read, when } from './admin_util.js';

const PAGE = 50;
const LONG = 120; // a value longer than this is cut in the summary (the JSON under "Data" keeps it whole)

// the API's field -> [label, what it takes (said when the API refuses it)]
const FIELDS = {
  action: ['Action', 'an action like user.role, or a prefix ending with a dot like order.'],
  entity: ['Entity', 'a kind of entity in lower case, like user, product or order'],
  entity_id: ['Entity id', 'an id of at most 200 characters'],
  actor: ['Actor (user id)', "a user's id (a UUID): “Only changes by …” on a row fills it in"],
  from: ['From', 'a date and time'],
  to: ['Before', 'a date and time'],
};

const shown = (v) => {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? 'nothing';
  return s.length > LONG ? `${s.slice(0, LONG)}…` : s;
};

// {before, after, ...rest} -> "role: customer → seller; note: ..." (a key only before or after says "none")
function summary(data) {
  const { before = {}, after = {}, ...rest } = data && typeof data === 'object' ? data : { value: data };
  const parts = [];
  for (const key of new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])) {
    const was = before?.[key];
    const now = after?.[key];
    parts.push(`${key}: ${was === undefined ? 'none' : shown(was)} → ${now === undefined ? 'none' : shown(now)}`);
  }
  for (const [key, v] of Object.entries(rest)) if (v !== null && v !== undefined) parts.push(`${key}: ${shown(v)}`);
  return parts.join('; ');
}

function entryRow(a, onlyBy) {
  const li = el('li', { 'data-audit': a.id });
  const who = a.actor_name ?? (a.actor_id ? `user ${a.actor_id}` : 'the system');
  const what = summary(a.data);
  put(li,
    el('div', { class: 'row' }, el('strong', { class: 'audit-action', text: a.action }),
      el('time', { class: 'muted', datetime: a.created_at, text: when(a.created_at) })),
    el('p', { class: 'meta' }, el('span', { text: `By ${who}, on ${a.entity}${a.entity_id ? ` ${a.entity_id}` : ''}` })),
    what ? el('p', { class: 'audit-summary', text: what }) : null,
    el('details', {}, el('summary', { text: 'Data' }),
      el('pre', { class: 'audit-data', text: JSON.stringify(a.data ?? null) }),
      a.request_id ? el('p', { class: 'muted', text: `Request ${a.request_id}` }) : null),
    a.actor_id ? el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary',
      onclick: () => onlyBy(a.actor_id) }, `Only changes by ${who}`)) : null);
  return li;
}

// the value of a datetime-local input (local time) as ISO 8601 in UTC, or '' (left empty or not a time)
const iso = (input) => {
  const d = input.value ? new Date(input.value) : null;
  return d && !Number.isNaN(d.getTime()) ? d.toISOString() : '';
};

export async function show(body) {
  const inputs = {};
  const controls = Object.entries(FIELDS).map(([name, [label]]) => {
    const time = name === 'from' || name === 'to';
    const input = el('input', { id: `audit-${name}`, name, type: time ? 'datetime-local' : 'text', autocomplete: 'off',
      maxlength: time ? null : 200, 'aria-describedby': `audit-${name}-error`,
      placeholder: { action: 'e.g. user.role or order.', entity: 'e.g. user' }[name] ?? null });
    inputs[name] = input;
    return [label, input];
  });
  let list;
  const bar = filterBar('Filter the audit log', controls, () => list.refresh());
  // the bar is a <form> of inputs named after the API's fields, each with its `${input.id}-error` line
  for (const input of Object.values(inputs)) input.after(el('p', { class: 'field-error', id: `${input.id}-error` }));
  body.append(bar);
  // a refusal naming a field is said under it (in words, not the API's pattern), then in the panel's alert line
  const load = async (cursor) => {
    clearFieldErrors(bar);
    const v = (name) => inputs[name].value.trim();
    try {
      return await read(`/api/v1/admin/audit?${query({ actor: v('actor'), action: v('action'), entity: v('entity'),
        entity_id: v('entity_id'), from: iso(inputs.from), to: iso(inputs.to), limit: PAGE, cursor })}`);
    } catch (e) {
      const refused = (e.details ?? []).map((d) => String(d.field ?? '').split('.').pop())
        .filter((name) => FIELDS[name])
        .map((name) => ({ field: name, message: `${FIELDS[name][0]}: must be ${FIELDS[name][1]}.` }));
      if (fieldErrors(bar, refused)) throw new Error('A filter was refused: see the marked field.');
      throw e;
    }
  };
  list = pager(body, {
    label: 'Audit log',
    empty: 'No change matches these filters.',
    load,
    render: (a) => entryRow(a, (actor) => {
      inputs.actor.value = actor;
      list.refresh();
      inputs.actor.focus();
    }),
  });
  await list.page();
}
