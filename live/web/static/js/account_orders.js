// The account's Orders (GET /api/v1/me/orders, each linking its page /orders/<id>; a delivered order can ask for a
// return: POST /api/v1/me/orders/<id>/returns) and Returns (GET /api/v1/me/returns; withdraw one still requested).
import {
  badge, call, clearFieldErrors, fieldErrors, h, money, pagedList, put, status, when, words,
} from './account_util.js';

const PAGE = 20;
const REASONS = ['damaged', 'defective', 'wrong_item', 'not_as_described', 'changed_mind', 'other'];
const query = (cursor) => `?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;

function returnForm(order, li) {
  const id = `ret-${order.id}`;
  const form = h('form', { class: 'card stack', novalidate: true, 'aria-label': `Return items of order ${order.number}` });
  const lines = order.items.map((it) => {
    const qid = `${id}-${it.id}`;
    return h('div', { class: 'field' },
      h('label', { for: qid }, `${it.title} (${it.sku}): how many to return`),
      h('input', { id: qid, name: it.id, type: 'number', min: 0, max: it.quantity, value: 0, inputmode: 'numeric' }));
  });
  const reason = h('select', { id: `${id}-reason`, name: 'reason' },
    REASONS.map((r) => h('option', { value: r }, words(r))));
  const note = h('input', { id: `${id}-note`, name: 'note', maxlength: 500 });
  const error = h('p', { class: 'field-error', role: 'alert', id: `${id}-error` });
  form.append(...lines, h('label', { for: reason.id }, 'Reason'), reason,
    h('label', { for: note.id }, 'Note for the seller (optional)'), note,
    h('p', { class: 'field-error', id: `${note.id}-error` }), error,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Send the return request'),
      h('button', { type: 'button', class: 'secondary', onclick: () => form.remove() }, 'Cancel')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    error.textContent = '';
    const items = order.items.map((it) => ({ order_item_id: it.id, quantity: Number(form.elements.namedItem(it.id).value) }))
      .filter((l) => l.quantity > 0);
    if (!items.length) {
      error.textContent = 'Choose at least one item to return.';
      return;
    }
    const body = { reason: reason.value, items };
    if (note.value.trim()) body.note = note.value.trim();
    try {
      const ret = await call(`/api/v1/me/orders/${order.id}/returns`, { method: 'POST', body });
      form.replaceWith(h('p', { class: 'ok', role: 'status' }, 'Return requested: ',
        h('a', { href: '/account/returns' }, `see it in Returns (${words(ret.status)})`), '.'));
    } catch (e) {
      if (!fieldErrors(form, e.details ?? [])) error.textContent = e.message;
    }
  });
  li.append(form);
  form.querySelector('input')?.focus();
}

function orderItem(o) {
  const li = h('li', { 'data-order': o.id });
  const count = o.items.reduce((n, it) => n + it.quantity, 0);
  const ret = o.status === 'delivered'
    ? h('button', { type: 'button', class: 'secondary', onclick: (ev) => { ev.target.remove(); returnForm(o, li); } },
      `Return items of order ${o.number}`)
    : null;
  put(li,
    h('div', { class: 'row' },
      h('a', { href: `/orders/${o.id}` }, `Order ${o.number}`), badge(o.status)),
    h('p', { class: 'muted' }, `${when(o.created_at)} · ${o.seller.name} · ${count} item${count === 1 ? '' : 's'} · `,
      h('strong', {}, money(o.total_minor, o.currency))),
    h('p', {}, o.items.map((it) => `${it.quantity} × ${it.title}`).join(', ')),
    ret);
  return li;
}

function returnItem(r) {
  const li = h('li', { 'data-return': r.id });
  const withdraw = r.status === 'requested'
    ? h('button', {
      type: 'button', class: 'secondary', onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          li.replaceWith(returnItem(await call(`/api/v1/me/returns/${r.id}/cancel`, { method: 'POST', body: {} })));
        } catch (e) {
          ev.target.disabled = false;
          li.append(h('p', { class: 'error', role: 'alert' }, e.message));
        }
      },
    }, `Withdraw the return of order ${r.order_number}`)
    : null;
  const label = r.label?.tracking_url
    ? h('a', { href: r.label.tracking_url, rel: 'noopener', target: '_blank' }, 'Track the return parcel')
    : r.label?.label_url ? h('a', { href: r.label.label_url, rel: 'noopener', target: '_blank' }, 'Print the return label') : null;
  put(li,
    h('div', { class: 'row' }, h('a', { href: `/orders/${r.order_id}` }, `Return for order ${r.order_number}`),
      badge(r.status)),
    h('p', { class: 'muted' }, `${when(r.created_at)} · ${r.seller.name} · ${words(r.reason)}`),
    h('p', {}, r.items.map((it) => `${it.quantity} × ${it.title}`).join(', ')),
    r.decision_note ? h('p', {}, `Seller: ${r.decision_note}`) : null,
    r.refund_minor ? h('p', {}, `Refunded ${money(r.refund_minor, r.currency)}`) : null,
    label, withdraw);
  return li;
}

export function show(section, body) {
  const list = section === 'returns'
    ? pagedList(body, { label: 'Your returns', load: (c) => call(`/api/v1/me/returns${query(c)}`), render: returnItem,
      empty: 'No returns. A delivered order can be returned from Orders.' })
    : pagedList(body, { label: 'Your orders', load: (c) => call(`/api/v1/me/orders${query(c)}`), render: orderItem,
      empty: 'No orders yet.' });
  status('Loading…');
  return list.page();
}
