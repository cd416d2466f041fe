// Admin, Jobs: the durable job queue by state, dead jobs first (GET /api/v1/admin/jobs?state=&kind=, cursor
// pages) with their kind, attempts and last error; a dead job requeued (POST .../jobs/<id>/requeue) or discarded
// (DELETE .../jobs/<id>), each confirmed in the row first.
import {
  badge, call, confirmIn, el, filterBar, put, pager, query, read, refreshCounts, replaceRow, select, when,
} from './admin_util.js';

const PAGE = 50;
const STATES = [['dead', 'Dead (held)'], ['retrying', 'Retrying'], ['queued', 'Queued'], ['running', 'Running'],
  ['', 'Every state']];

function jobRow(j) {
  const li = el('li', { 'data-job': j.id });
  const slot = el('div', { class: 'confirm-slot' });
  const name = `job ${j.id} (${j.kind})`;
  const actions = el('div', { class: 'actions' });
  if (j.state === 'dead') {
    const requeue = el('button', { type: 'button' }, `Requeue ${name}`);
    requeue.addEventListener('click', () => confirmIn(slot, requeue, {
      question: `Queue ${name} again, due now, its attempts reset?`, confirm: 'Confirm: requeue',
      run: async () => {
        const fresh = await call(`/api/v1/admin/jobs/${j.id}/requeue`, { method: 'POST' });
        replaceRow(li, jobRow(fresh));
        refreshCounts();
        return `The ${name} is queued again.`;
      },
    }));
    const discard = el('button', { type: 'button', class: 'danger' }, `Discard ${name}`);
    discard.addEventListener('click', () => confirmIn(slot, discard, {
      question: `Discard ${name} for good? Its work will not be done.`, confirm: 'Confirm: discard',
      run: async () => {
        await call(`/api/v1/admin/jobs/${j.id}`, { method: 'DELETE' });
        replaceRow(li, el('li', { 'data-job': j.id, class: 'gone' },
          el('p', { text: `Job ${j.id} (${j.kind}) was discarded.` })));
        refreshCounts();
        return `The ${name} is discarded.`;
      },
    }));
    actions.append(requeue, discard);
  }
  put(li,
    el('div', { class: 'row' }, el('strong', { text: `#${j.id} ${j.kind}` }), badge(j.state)),
    el('p', { class: 'muted', text: `${j.attempts} failed attempt${j.attempts === 1 ? '' : 's'}; created `
      + `${when(j.created)}, due ${when(j.execute_after)}, updated ${when(j.updated)}` }),
    j.last_error ? el('pre', { class: 'last-error', text: j.last_error }) : null,
    actions, slot);
  return li;
}

export async function show(body) {
  const state = select('jobs-state', STATES, 'dead');
  const kind = el('input', { id: 'jobs-kind', maxlength: 124, autocomplete: 'off', placeholder: 'e.g. email.send' });
  let list;
  body.append(filterBar('Filter jobs', [['State', state], ['Kind (optional)', kind]],
    () => list.refresh()));
  list = pager(body, {
    label: 'Jobs',
    empty: 'No job in this state.',
    render: jobRow,
    load: (cursor) => read(`/api/v1/admin/jobs?${query({ state: state.value, kind: kind.value.trim(), limit: PAGE,
      cursor })}`),
  });
  await list.page();
}
