// "Follow <seller>" on the home page's scheduled cards (docs/web.md "Home"). The API has no per-stream reminder:
// following the seller is what brings the reminder before a scheduled stream starts (`follow.reminder`) and the
// notice when the seller goes live, so that is what a card offers. A toggle button (aria-pressed, its name never
// changes) on every card of that seller, kept in step; what happened is said on the card pressed (a status line).
// Whom the person follows is read once from GET /api/v1/me/follows (cursor pages); POST / DELETE
// /api/v1/sellers/{id}/follow change it. Signed out (or a refused token), the button goes to the sign-in page and
// back here, where the follow asked for is made (remembered in sessionStorage: this tab only, never from a link).
import { api, clearSession, session, signInUrl } from './api.js';
import { el, withTimeout } from './format.js';

const INTENT = 'live.home.follow'; // the seller id to follow once back from signing in
const PAGES = 10; // follows read at most: 10 pages of 100

export class Follows {
  constructor() {
    this.following = new Set(); // seller ids
    this.busy = new Set();
    this.ready = this.load();
  }

  async load() {
    if (!session()) return;
    let cursor = null;
    try {
      for (let i = 0; i < PAGES; i++) {
        const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
        const page = await withTimeout(api(`/api/v1/me/follows?limit=100${q}`));
        for (const f of page.items) this.following.add(f.seller.id);
        cursor = page.next_cursor;
        if (!cursor) break;
      }
    } catch (e) {
      if (e.status === 401) clearSession(); // a refused token: the buttons go to the sign-in page
      // otherwise the buttons start unpressed; following again changes nothing on the server
    }
    this.sync();
  }

  // The follow button of a card, and its status line.
  control(seller) {
    const button = el('button', { type: 'button', class: 'secondary', 'data-seller': seller.id,
      'aria-pressed': String(this.following.has(seller.id)) },
    el('span', { class: 'tick', 'aria-hidden': 'true' }, '✓ '), `Follow ${seller.name}`);
    const note = el('p', { class: 'note', role: 'status' });
    button.addEventListener('click', () => this.toggle(seller, button, note));
    return el('div', { class: 'follow' }, button, note);
  }

  sync(sellerId = null) {
    for (const b of document.querySelectorAll('#home .follow button')) {
      if (sellerId === null || b.dataset.seller === sellerId) {
        b.setAttribute('aria-pressed', String(this.following.has(b.dataset.seller)));
      }
    }
  }

  signIn(sellerId) {
    sessionStorage.setItem(INTENT, sellerId);
    location.assign(signInUrl());
  }

  async toggle(seller, button, note) {
    if (!session()) {
      this.signIn(seller.id);
      return;
    }
    if (this.busy.has(seller.id)) return;
    this.busy.add(seller.id);
    const on = button.getAttribute('aria-pressed') !== 'true';
    button.setAttribute('aria-busy', 'true');
    note.classList.remove('error');
    note.textContent = on ? 'Following…' : 'Unfollowing…';
    try {
      const state = await withTimeout(api(`/api/v1/sellers/${encodeURIComponent(seller.id)}/follow`,
        { method: on ? 'POST' : 'DELETE' }));
      if (state.following) this.following.add(seller.id);
      else this.following.delete(seller.id);
      this.sync(seller.id);
      note.textContent = state.following
        ? `You follow ${seller.name}: you will be reminded before their streams start.`
        : `You no longer follow ${seller.name}.`;
    } catch (e) {
      if (e.status === 401) {
        clearSession();
        this.signIn(seller.id);
        return;
      }
      note.classList.add('error');
      note.textContent = `Could not ${on ? 'follow' : 'unfollow'} ${seller.name}: ${e.message}.`;
    } finally {
      this.busy.delete(seller.id);
      button.removeAttribute('aria-busy');
    }
  }

  // Back from signing in to follow: follow that seller now, on the first card of theirs, which gets the focus.
  resume() {
    const sellerId = sessionStorage.getItem(INTENT);
    if (!sellerId || !session()) return;
    sessionStorage.removeItem(INTENT);
    const button = [...document.querySelectorAll('#home .follow button')].find((b) => b.dataset.seller === sellerId);
    if (!button) return; // the stream is no longer scheduled
    button.focus();
    if (button.getAttribute('aria-pressed') !== 'true') button.click();
  }
}
