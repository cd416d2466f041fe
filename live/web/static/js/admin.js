// The admin pages (/admin/<section>): admins only (signed out: to sign in and back; anyone else is told so), the
// counts needing action beside the tabs, and the section's module loaded by name (docs/web.md, "Admin").
import { requireSession } from './api.js';
import { read, refreshCounts } from './admin_util.js';

const MODULES = { users: 'admin_users.js', payments: 'admin_payments.js', jobs: 'admin_jobs.js',
  contact: 'admin_contact.js', sellers: 'admin_sellers.js', audit: 'admin_audit.js' };
const $ = (id) => document.getElementById(id);

async function start() {
  let me;
  try {
    me = await read('/api/v1/me');
  } catch (e) {
    $('loading').textContent = `Could not check who you are: ${e.message}`;
    $('loading').setAttribute('role', 'alert');
    return;
  }
  $('loading').remove();
  if (me.role !== 'admin') {
    $('denied-text').textContent = `You are signed in as ${me.name}, who is not an admin: these pages are for the `
      + "shop's admins only.";
    $('denied').hidden = false;
    return;
  }
  $('desk').hidden = false;
  refreshCounts();
  const section = $('panel').dataset.section;
  try {
    const m = await import(`./${MODULES[section]}`);
    await m.show($('panel-body'));
  } catch (e) {
    $('panel-error').textContent = e.message || 'Something went wrong.';
  }
}

if (requireSession()) start();
