// The account pages (/account/<section>): the profile (name editable: PATCH /api/v1/me) and one section, whose
// module is loaded by name; the unread notifications count in the tabs (docs/web.md, "Account").
import { requireSession, saveSession } from './api.js';
import { $, call, clearFieldErrors, fail, fieldErrors, showUnread } from './account_util.js';

const MODULES = { orders: 'account_orders.js', returns: 'account_orders.js', addresses: 'account_lists.js',
  wishlist: 'account_lists.js', follows: 'account_lists.js', notifications: 'account_inbox.js',
  preferences: 'account_inbox.js', seller: 'account_seller.js' };

const me = requireSession();

async function profile() {
  const form = $('name-form');
  const input = $('profile-name');
  try {
    const user = await call('/api/v1/me');
    $('profile-email').textContent = user.email ?? user.wallet_address ?? '—';
    input.value = user.name;
  } catch (e) {
    $('profile-email').textContent = '—';
    fail(e);
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    $('profile-status').textContent = '';
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const user = await call('/api/v1/me', { method: 'PATCH', body: { name: input.value } });
      saveSession({ token: me.token, user });
      const who = $('who');
      if (who) who.textContent = `Signed in as ${user.name}`;
      $('profile-status').textContent = 'Name saved.';
    } catch (e) {
      if (!fieldErrors(form, e.details ?? [])) $('profile-name-error').textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });
}

async function unread() {
  try {
    showUnread((await call('/api/v1/me/notifications?limit=1')).unread);
  } catch { /* the badge is a hint: the section says what failed */ }
}

if (me) {
  const section = $('panel').dataset.section;
  profile();
  if (section !== 'notifications') unread();
  import(`./${MODULES[section]}`).then((m) => m.show(section, $('panel-body'))).catch(fail);
}
