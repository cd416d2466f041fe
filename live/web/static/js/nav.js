// The header on every page: who is signed in, and signing out (this browser forgets its token).
import { clearSession, session } from './api.js';

const s = session();
const who = document.getElementById('who');
const link = document.getElementById('signin-link');
const out = document.getElementById('signout');
if (s && who) {
  who.textContent = `Signed in as ${s.user?.name ?? 'you'}`;
  link.hidden = true;
  out.hidden = false;
}
out?.addEventListener('click', () => {
  clearSession();
  location.reload();
});
