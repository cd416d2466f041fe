// Sign-in by email code: POST /api/v1/auth/email/start, then /verify; the token is kept (api.js) and the page
// goes back to ?next= (a page of this site only).
import { api, saveSession } from './api.js';

const emailForm = document.getElementById('email-form');
const codeForm = document.getElementById('code-form');
const email = document.getElementById('email');
const code = document.getElementById('code');
const error = document.getElementById('signin-error');
const mailbox = document.getElementById('mailbox-link');

// `next` parsed as the browser will follow it (URL parsing drops tabs and newlines: `/\t/evil.example` is
// `//evil.example`), kept only when it stays on this origin.
function next() {
  const n = new URLSearchParams(location.search).get('next') || '/';
  try {
    const u = new URL(n, location.origin);
    if (u.origin === location.origin) return u.pathname + u.search + u.hash;
  } catch { /* not a URL: home */ }
  return '/';
}

function busy(form, on) { for (const b of form.querySelectorAll('button')) b.disabled = on; }

emailForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.textContent = '';
  const address = email.value.trim();
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address)) {
    error.textContent = 'Enter an email address like ann@example.com.';
    email.focus();
    return;
  }
  busy(emailForm, true);
  try {
    await api('/api/v1/auth/email/start', { method: 'POST', body: { email: address }, token: null });
    document.getElementById('code-sent').textContent = `We sent a code to ${address}. It expires in 10 minutes.`;
    if (mailbox) mailbox.href = '/dev/mailbox';
    emailForm.hidden = true;
    codeForm.hidden = false;
    code.focus();
  } catch (e) {
    error.textContent = e.code === 'rate_limited' ? 'Too many codes asked for: wait a little and try again.' : e.message;
  } finally {
    busy(emailForm, false);
  }
});

codeForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.textContent = '';
  if (!/^\d{6}$/.test(code.value.trim())) {
    error.textContent = 'The code is 6 digits.';
    code.focus();
    return;
  }
  busy(codeForm, true);
  try {
    const s = await api('/api/v1/auth/email/verify', {
      method: 'POST', body: { email: email.value.trim(), code: code.value.trim() }, token: null });
    saveSession(s);
    location.assign(next());
  } catch (e) {
    error.textContent = e.code === 'invalid_code' ? 'That code is not right (or was used already).'
      : e.code === 'code_expired' ? 'That code has expired: ask for a new one.' : e.message;
    code.select();
  } finally {
    busy(codeForm, false);
  }
});

document.getElementById('restart').addEventListener('click', () => {
  codeForm.hidden = true;
  emailForm.hidden = false;
  error.textContent = '';
  email.focus();
});
