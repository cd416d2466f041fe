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
  // the admin pages' link, for an admin (the pages themselves ask the server who is signed in)
  const admin = document.getElementById('admin-link');
  if (admin) admin.hidden = s.user?.role !== 'admin';
}
out?.addEventListener('click', () => {
  clearSession();
  location.reload();
});
