// Admin, Seller applications: pending first, then the decided ones (GET /api/v1/admin/seller-applications?status=,
// cursor pages); a pending one approved with an optional note (POST .../<id>/approve: the user becomes a seller
// with a shop) or refused with a note the applicant is told (POST .../<id>/refuse), each confirmed in the row first.
import {
  badge, call, confirmIn, el, filterBar, put, pager, query, read, refreshCounts, replaceRow, select, when,
} from './admin_util.js';

const PAGE = 30;
const FILTERS = [['', 'All, pending first'], ['pending', 'Pending'], ['approved', 'Approved'], ['refused', 'Refused']];

function applicationRow(a) {
  const li = el('li', { 'data-application': a.id });
  const slot = el('div', { class: 'confirm-slot' });
  const who = `${a.user.name}${a.user.email ? ` <${a.user.email}>` : ''}`;
  const decide = async (action, note, said) => {
    const fresh = await call(`/api/v1/admin/seller-applications/${a.id}/${action}`,
      { method: 'POST', body: note || action === 'refuse' ? { note } : {} });
    replaceRow(li, applicationRow(fresh));
    refreshCounts();
    return said;
  };
  const actions = el('div', { class: 'actions' });
  if (a.status === 'pending') {
    const approve = el('button', { type: 'button' }, `Approve ${a.shop_name}`);
    approve.addEventListener('click', () => confirmIn(slot, approve, {
      question: `Approve “${a.shop_name}”? ${a.user.name} becomes a seller with this shop at once.`,
      confirm: 'Confirm: approve',
      field: { name: 'note', label: 'Note to the applicant (optional)', max: 500 },
      run: (note) => decide('approve', note, `${a.shop_name} is approved: ${a.user.name} is a seller now.`),
    }));
    const refuse = el('button', { type: 'button', class: 'danger' }, `Refuse ${a.shop_name}`);
    refuse.addEventListener('click', () => confirmIn(slot, refuse, {
      question: `Refuse “${a.shop_name}”? ${a.user.name} is told why and may apply again.`,
      confirm: 'Confirm: refuse',
      field: { name: 'note', label: 'Why (required, told to the applicant)', max: 500 },
      run: (note) => decide('refuse', note, `${a.shop_name} is refused; ${a.user.name} is told why.`),
    }));
    actions.append(approve, refuse);
  }
  put(li,
    el('div', { class: 'row' }, el('strong', { text: a.shop_name }), badge(a.status)),
    el('p', { text: `From ${who}, ${when(a.created_at)}` }),
    a.about ? el('p', { class: 'full', text: a.about }) : el('p', { class: 'muted', text: 'No description given.' }),
    a.decided_at ? el('p', { class: 'muted', text: `Decided ${when(a.decided_at)}${a.note ? `: ${a.note}` : '.'}` })
      : null,
    actions, slot);
  return li;
}

export async function show(body) {
  const filter = select('sellers-status', FILTERS);
  let list;
  body.append(filterBar('Filter applications', [['Show', filter]], () => list.refresh()));
  list = pager(body, {
    label: 'Seller applications',
    empty: 'No application here.',
    render: applicationRow,
    load: (cursor) => read(`/api/v1/admin/seller-applications?${query({ status: filter.value, limit: PAGE,
      cursor })}`),
  });
  await list.page();
}
