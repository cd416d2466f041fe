// Admin, Contact: the contact form's messages, newest first (GET /api/v1/admin/contact?status=, cursor pages):
// unread, read, answered or spam; one opened whole (GET .../contact/<id>, which marks a new one read) and marked
// answered (POST .../contact/<id>/answered).
import {
  badge, call, el, filterBar, put, pager, query, read, replaceRow, select, status, when,
} from './admin_util.js';

const PAGE = 30;
const FILTERS = [['', 'All but spam'], ['new', 'Unread'], ['read', 'Read, not answered'], ['answered', 'Answered'],
  ['spam', 'Spam']];
const LABEL = { new: 'unread', read: 'read', answered: 'answered', spam: 'spam' };

function answered(m) {
  if (!m.answered_at) return null;
  return el('p', { class: 'muted', text: `Answered ${when(m.answered_at)}${m.answered_by?.name
    ? ` by ${m.answered_by.name}` : ''}.` });
}

// m: a summary (preview) or, once opened, the whole message (`message`)
function messageRow(m) {
  const li = el('li', { 'data-message': m.id, class: m.status === 'new' ? 'unread' : null });
  const subject = m.subject || '(no subject)';
  const error = el('p', { class: 'field-error', role: 'alert' });
  const actions = el('div', { class: 'actions' });
  const busy = (on) => { for (const b of actions.querySelectorAll('button')) b.disabled = on; };
  const run = async (request, said) => {
    if (li.dataset.busy) return;
    li.dataset.busy = '1';
    busy(true);
    error.textContent = '';
    try {
      const full = await request();
      replaceRow(li, messageRow(full));
      if (said) status(said);
    } catch (e) {
      error.textContent = e.message;
      busy(false);
      delete li.dataset.busy;
    }
  };
  if (m.message === undefined) {
    actions.append(el('button', { type: 'button', class: 'secondary',
      onclick: () => run(() => read(`/api/v1/admin/contact/${m.id}`)) }, `Open “${subject}”`));
  }
  if (m.status !== 'answered') {
    actions.append(el('button', { type: 'button', onclick: () => run(
      () => call(`/api/v1/admin/contact/${m.id}/answered`, { method: 'POST' }),
      `“${subject}” from ${m.name} is marked answered.`) }, `Mark “${subject}” answered`));
  }
  const body = m.message === undefined
    ? el('p', { class: 'preview', text: m.preview })
    : el('div', { class: 'message' }, el('p', { class: 'full', text: m.message }),
      el('p', {}, el('a', { href: `mailto:${m.email}?subject=${encodeURIComponent(`Re: ${subject}`)}` },
        `Reply to ${m.email} by email`)),
      el('p', { class: 'muted', text: `Sent from ${m.ip ?? 'an unknown address'}${m.user_agent
        ? ` (${m.user_agent})` : ''}.` }));
  put(li,
    el('div', { class: 'row' }, el('strong', { text: subject }), el('span', { class: 'muted', text: when(m.created_at) })),
    el('p', {}, el('span', { text: `From ${m.name} <${m.email}> ` }), badge(LABEL[m.status] ?? m.status)),
    body, answered(m), actions, error);
  return li;
}

// the message a link names (/admin/contact/<id>, the support mail's), opened on top of the list
async function opened(body, id) {
  const one = el('ul', { class: 'account-list opened', 'aria-label': 'The message from the link' });
  body.append(one);
  try {
    one.append(messageRow(await read(`/api/v1/admin/contact/${id}`)));
  } catch (e) {
    one.append(el('li', { role: 'alert', text: `The message from the link could not be opened: ${e.message}` }));
  }
}

export async function show(body) {
  const id = document.getElementById('panel').dataset.open;
  if (id) await opened(body, id);
  const filter = select('contact-status', FILTERS);
  let list;
  body.append(filterBar('Filter messages', [['Show', filter]], () => list.refresh()));
  list = pager(body, {
    label: 'Contact messages',
    empty: 'No message here.',
    render: messageRow,
    load: (cursor) => read(`/api/v1/admin/contact?${query({ status: filter.value, limit: PAGE, cursor })}`),
  });
  await list.page();
}
