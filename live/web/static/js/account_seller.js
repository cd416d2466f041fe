// The account's "Become a seller" section: a customer applies (POST /api/v1/me/seller-application, per-field
// errors), then sees their application's status (GET .../seller-application): pending, refused with the admin's
// note (and may apply again), or approved: the session's user is read again (GET /api/v1/me, role seller) and
// the studio is linked. While the application is pending the page holds the user's socket: the decision's
// notification (`notification:new`, kind account.seller_approved / _refused) shows it without a reload; after a
// reconnect the application is read again, and "Check for a decision" still reads it by hand.
import { io } from '/static/vendor/socket.io.esm.min.js';
import { saveSession, session } from './api.js';
import { $, badge, call, clearFieldErrors, fail, fieldErrors, h, status, when } from './account_util.js';

const DECIDED = new Set(['account.seller_approved', 'account.seller_refused']);
let live = null;  // the user's socket, only while an application is pending

function follow(body) {
  if (live) return;
  live = io({ auth: { token: session()?.token } });
  // the page is redrawn only when the application is no longer pending (what is shown meanwhile stays)
  const check = async () => {
    if ((await latest())?.status === 'pending') return;
    await render(body);
    status('Your application has a decision.');
  };
  // on every connect too: a decision may have come before the socket was joined, or while it was away
  live.on('connect', () => check().catch(fail));
  live.on('notification:new', (data) => { if (DECIDED.has(data?.notification?.kind)) check().catch(fail); });
}

function unfollow() {
  live?.disconnect();
  live = null;
}

function studioLink(text) {
  return h('p', {}, h('a', { class: 'button', href: '/studio' }, text));
}

function applicationCard(app) {
  return h('div', { class: 'card seller-application', 'data-status': app.status },
    h('div', { class: 'row' }, h('strong', {}, app.shop_name), badge(app.status)),
    h('p', { class: 'muted' }, `Sent ${when(app.created_at)}`
      + (app.decided_at ? `, decided ${when(app.decided_at)}` : '')),
    app.about ? h('p', { class: 'seller-about' }, app.about) : null,
    app.status === 'pending' ? h('p', {}, 'An admin looks at it soon; this page shows the decision.') : null,
    app.note ? h('p', { class: 'seller-note' }, h('span', { class: 'muted' },
      app.status === 'refused' ? 'Why: ' : 'Note: '), app.note) : null);
}

function field(label, control, hint) {
  return h('div', { class: 'field' }, h('label', { for: control.id }, label),
    hint ? h('p', { class: 'muted', id: `${control.id}-hint` }, hint) : null, control,
    h('p', { class: 'field-error', id: `${control.id}-error` }));
}

function applyForm(onSent, again) {
  const shop = h('input', { id: 'seller-shop_name', name: 'shop_name', maxlength: 80, required: true,
    autocomplete: 'organization', 'aria-describedby': 'seller-shop_name-error' });
  const about = h('textarea', { id: 'seller-about', name: 'about', maxlength: 2000, rows: 4,
    'aria-describedby': 'seller-about-hint seller-about-error' });
  const error = h('p', { class: 'error', role: 'alert' });
  const button = h('button', { type: 'submit' }, again ? 'Apply again' : 'Send my application');
  const form = h('form', { class: 'card seller-form', novalidate: true, 'aria-labelledby': 'seller-form-h' },
    h('h3', { id: 'seller-form-h' }, again ? 'Apply again' : 'Apply to sell'),
    h('p', {}, 'Sell your products in live streams. An admin reads your application and opens your shop.'),
    h('div', { class: 'seller-fields' }, field('Shop name (2 to 80 characters)', shop),
      field('About your shop (optional)', about, 'What you sell and where it comes from.')),
    error, button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    error.textContent = '';
    button.disabled = true;
    try {
      const app = await call('/api/v1/me/seller-application', { method: 'POST',
        body: { shop_name: shop.value, about: about.value } });
      onSent(app).catch(fail);
    } catch (e) {
      if (!fieldErrors(form, e.details ?? [])) error.textContent = e.message;
      button.disabled = false;
    }
  });
  return form;
}

async function latest() {
  try {
    return await call('/api/v1/me/seller-application');
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

async function render(body) {
  const [user, app] = await Promise.all([call('/api/v1/me'), latest()]);
  const s = session();
  if (s) saveSession({ token: s.token, user });  // the role may have changed since sign-in
  body.replaceChildren();
  if (app?.status === 'pending') follow(body); else unfollow();
  if (user.role === 'seller' || user.role === 'admin') {
    body.append(h('p', { class: 'ok', id: 'seller-welcome' }, app?.status === 'approved'
      ? `Your application is approved: ${app.shop_name} is open.` : 'You are a seller.'),
    studioLink('Open your studio'));
    if (app?.status === 'approved') body.append(applicationCard(app));
    return;
  }
  if (app) body.append(applicationCard(app));
  if (app?.status === 'pending') {
    body.prepend(h('p', { class: 'ok', id: 'seller-sent', role: 'status' }));
    body.append(h('button', { type: 'button', class: 'secondary', onclick: (ev) => {
      ev.target.disabled = true;
      status('Loading…');
      render(body).catch(fail).finally(() => status(''));
    } }, 'Check for a decision'));
    return;
  }
  body.append(applyForm(async () => {
    await render(body);
    $('seller-sent').textContent = 'Application sent.';
  }, app !== null));
}

export function show(section, body) {
  return render(body).catch(fail).finally(() => { if ($('panel-status').textContent === 'Loading…') status(''); });
}
