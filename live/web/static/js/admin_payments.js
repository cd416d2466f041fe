// Admin, Payments: the payments flagged for a human and those with a failed refund (GET
// /api/v1/admin/payments/flagged, cursor pages, filter by issue), each with its reason, amounts, orders and
// refunds; resolve a flag with a note (POST .../payments/<id>/resolve); a failed refund sent again (POST
// .../refunds/<id>/retry) or settled as refunded by hand (POST .../refunds/<id>/mark-refunded), each with a note.
import {
  badge, call, confirmIn, el, filterBar, put, money, pager, query, read, refreshCounts, replaceRow, select,
  when, words,
} from './admin_util.js';

const PAGE = 20;
const ISSUES = {
  amount_mismatch: 'The provider reported another amount or currency: no order moved.',
  paid_after_cancel: 'Money arrived for orders already canceled: their refunds are under way.',
  refund_due: 'A refund failed after its last attempt, was refused, or a partial refund matched no order.',
};
const NOTE = { name: 'note', label: 'Note (required, kept in the audit log)' };

// issue_details in words: the amounts as money, the rest as "key: value" (the webhook's event key left out)
function details(p) {
  const d = p.issue_details;
  if (!d) return null;
  const cur = p.currency;
  const parts = [];
  if (d.expected && d.received) {
    parts.push(`Expected ${money(d.expected.amount_minor, d.expected.currency)}, received `
      + `${money(d.received.amount_minor, d.received.currency || cur) || `${d.received.amount_minor} ${d.received.currency}`}.`);
  }
  if (typeof d.partial_refund_minor === 'number') {
    parts.push(`A partial refund of ${money(d.partial_refund_minor, cur)} came from the provider.`);
  }
  if (d.refund_id) {
    parts.push(`Refund of ${money(d.amount_minor, cur)} failed after ${d.attempts} attempts: ${d.error}`);
  }
  for (const [k, v] of Object.entries(d)) {
    if (['expected', 'received', 'partial_refund_minor', 'refund_id', 'order_id', 'amount_minor', 'attempts',
      'error', 'event_key', 'orders'].includes(k)) continue;
    parts.push(`${words(k)}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  }
  return parts.length ? el('p', { class: 'detail', text: parts.join(' ') }) : null;
}

function refundRow(p, r, li, slot) {
  const amount = money(r.amount_minor, r.currency);
  const item = el('li', {}, el('span', { text: `Refund of ${amount} ` }), badge(r.status),
    el('span', { class: 'muted', text: ` ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}` }),
    r.error ? el('p', { class: 'detail', text: `Last error: ${r.error}` }) : null);
  if (r.status !== 'failed') return item;
  const settle = async (action, note, said) => {
    const out = await call(`/api/v1/admin/refunds/${r.id}/${action}`, { method: 'POST', body: { note } });
    const refunds = p.refunds.map((x) => (x.id === r.id ? { ...x, status: out.refund.status,
      attempts: out.refund.attempts, error: out.refund.error, provider_ref: out.refund.provider_ref } : x));
    replaceRow(li, paymentRow({ ...p, ...out.payment, refunds }));
    refreshCounts();
    return said;
  };
  const retry = el('button', { type: 'button', class: 'secondary' }, `Retry the refund of ${amount}`);
  retry.addEventListener('click', () => confirmIn(slot, retry, {
    question: `Send the refund of ${amount} to ${p.provider} again?`, confirm: 'Confirm: retry the refund',
    field: NOTE, run: (note) => settle('retry', note, `The refund of ${amount} is sent to ${p.provider} again.`),
  }));
  const byHand = el('button', { type: 'button', class: 'secondary' }, `Mark the refund of ${amount} refunded`);
  byHand.addEventListener('click', () => confirmIn(slot, byHand, {
    question: `Was the ${amount} paid back by hand, outside ${p.provider}? This settles the refund.`,
    confirm: 'Confirm: mark refunded', field: NOTE,
    run: (note) => settle('mark-refunded', note, `The refund of ${amount} is marked refunded.`),
  }));
  item.append(el('div', { class: 'actions' }, retry, byHand));
  return item;
}

function paymentRow(p) {
  const li = el('li', { 'data-payment': p.id });
  const slot = el('div', { class: 'confirm-slot' });
  const total = money(p.amount_minor, p.currency);
  const failed = p.refunds.some((r) => r.status === 'failed');
  const head = el('div', { class: 'row' }, el('strong', { text: `${p.provider} payment of ${total}` }),
    el('span', { class: 'muted', text: when(p.created_at) }));
  const flag = p.issue
    ? el('p', {}, el('span', { class: 'status-badge bad' }, words(p.issue)), ' ', ISSUES[p.issue] ?? '')
    : el('p', {}, el('span', { class: 'status-badge good' }, 'flag cleared'),
      failed ? ' A failed refund still waits for you.' : ' Nothing left to do.');
  const orders = el('ul', { class: 'sublist', 'aria-label': `Orders paid by the ${total} payment` },
    ...p.orders.map((o) => el('li', {}, `Order ${o.number} `, badge(o.status), ` ${money(o.total_minor, p.currency)}`)));
  const refunds = el('ul', { class: 'sublist', 'aria-label': `Refunds of the ${total} payment` });
  for (const r of p.refunds) refunds.append(refundRow(p, r, li, slot));
  const actions = el('div', { class: 'actions' });
  if (p.issue) {
    const resolve = el('button', { type: 'button' }, `Resolve the ${words(p.issue)} of ${total}`);
    resolve.addEventListener('click', () => confirmIn(slot, resolve, {
      question: `Clear the ${words(p.issue)} flag of this ${total} payment?`, confirm: 'Confirm: resolve',
      field: NOTE,
      run: async (note) => {
        const out = await call(`/api/v1/admin/payments/${p.id}/resolve`, { method: 'POST', body: { note } });
        replaceRow(li, paymentRow({ ...p, ...out }));
        refreshCounts();
        return `The ${words(p.issue)} flag of the ${total} payment is resolved.`;
      },
    }));
    actions.append(resolve);
  }
  put(li,head, flag, details(p),
    el('p', { class: 'muted', text: `Status ${words(p.status)}`
      + `${p.refund_due_minor ? `; ${money(p.refund_due_minor, p.currency)} still to refund` : ''}.` }),
    el('h3', { class: 'sub' }, 'Orders'), orders,
    p.refunds.length ? el('h3', { class: 'sub' }, 'Refunds') : null, p.refunds.length ? refunds : null,
    actions, slot);
  return li;
}

export async function show(body) {
  const issue = select('payments-issue', [['', 'Every issue'], ...Object.keys(ISSUES).map((k) => [k, words(k)])]);
  let list;
  body.append(filterBar('Filter flagged payments', [['Issue', issue]], () => list.refresh()));
  list = pager(body, {
    label: 'Flagged payments',
    empty: 'No payment needs a human. Good night.',
    render: paymentRow,
    load: (cursor) => read(`/api/v1/admin/payments/flagged?${query({ issue: issue.value, limit: PAGE, cursor })}`),
  });
  await list.page();
}
