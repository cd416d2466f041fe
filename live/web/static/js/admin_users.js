// Admin, Users: search by email or name, filter by role and suspension (GET /api/v1/admin/users, 50 a page by
// offset), change a role (PUT .../users/<id>/role) and suspend with a reason or lift it (POST .../suspend,
// .../unsuspend), each confirmed in the row first.
import {
  badge, call, confirmIn, el, filterBar, put, pager, query, read, replaceRow, select, when,
} from './admin_util.js';

const PAGE = 50;
const ROLES = ['customer', 'seller', 'admin'];

function who(u) { return u.email ?? u.wallet_address ?? u.id; }

function userRow(u) {
  const li = el('li', { 'data-user': u.id });
  const slot = el('div', { class: 'confirm-slot' });
  const role = select(`role-${u.id}`, ROLES.map((r) => [r, r]), u.role);
  const change = el('button', { type: 'button', class: 'secondary' }, 'Change role');
  change.addEventListener('click', () => {
    if (role.value === u.role) {
      slot.replaceChildren(el('p', { class: 'field-error', role: 'alert' },
        `${u.name} is a ${u.role} already: pick another role first.`));
      role.focus();
      return;
    }
    const to = role.value;
    confirmIn(slot, change, {
      question: `Make ${u.name} (${who(u)}) a ${to}? They are a ${u.role} now.`,
      confirm: `Confirm: make ${to}`,
      run: async () => {
        const fresh = await call(`/api/v1/admin/users/${u.id}/role`, { method: 'PUT', body: { role: to } });
        replaceRow(li, userRow(fresh));
        return `${fresh.name} is now a ${fresh.role}.`;
      },
    });
  });
  const suspend = el('button', { type: 'button', class: u.suspended ? 'secondary' : 'danger' },
    u.suspended ? 'Unsuspend' : 'Suspend');
  suspend.addEventListener('click', () => confirmIn(slot, suspend, u.suspended ? {
    question: `Lift ${u.name}'s suspension? They can sign in again (their old sessions stay signed out).`,
    confirm: 'Confirm: unsuspend',
    run: async () => {
      const fresh = await call(`/api/v1/admin/users/${u.id}/unsuspend`, { method: 'POST' });
      replaceRow(li, userRow(fresh));
      return `${fresh.name} is no longer suspended.`;
    },
  } : {
    question: `Suspend ${u.name} (${who(u)})? They are signed out everywhere at once and cannot sign in.`,
    confirm: 'Confirm: suspend',
    field: { name: 'reason', label: 'Reason (optional, kept in the audit log)', max: 500 },
    run: async (reason) => {
      const fresh = await call(`/api/v1/admin/users/${u.id}/suspend`,
        { method: 'POST', body: reason ? { reason } : {} });
      replaceRow(li, userRow(fresh));
      return `${fresh.name} is suspended.`;
    },
  }));
  put(li,
    el('div', { class: 'row' }, el('strong', { text: u.name }), el('span', { class: 'muted', text: who(u) })),
    el('p', { class: 'meta' }, badge(u.role), u.suspended ? el('span', { class: 'status-badge bad' }, 'suspended') : null,
      el('span', { class: 'muted', text: `joined ${when(u.created_at)}` })),
    u.suspended && u.suspended_reason ? el('p', { text: `Reason: ${u.suspended_reason}` }) : null,
    el('div', { class: 'actions' }, el('label', { for: role.id, class: 'vh' }, `Role of ${u.name}`), role, change,
      suspend),
    slot);
  return li;
}

export async function show(body) {
  const q = el('input', { id: 'users-q', type: 'search', maxlength: 254, autocomplete: 'off' });
  const role = select('users-role', [['', 'Any role'], ...ROLES.map((r) => [r, r])]);
  const state = select('users-state', [['', 'Any'], ['false', 'Active'], ['true', 'Suspended']]);
  let list;
  body.append(filterBar('Find users', [['Email or name', q], ['Role', role], ['Status', state]],
    () => list.refresh()));
  list = pager(body, {
    label: 'Users',
    empty: 'No user matches.',
    render: userRow,
    load: async (cursor) => {
      const offset = cursor ?? 0;
      const page = await read(`/api/v1/admin/users?${query({ q: q.value.trim(), role: role.value,
        suspended: state.value, limit: PAGE, offset })}`);
      return { items: page.items, next_cursor: page.items.length === PAGE ? offset + PAGE : null };
    },
  });
  await list.page();
}
