// The studio's products page, pictures (docs/web.md "The studio"): a product's pictures in order, one made the
// first (what the watch page's spotlight and the cart show) or removed, and a new one uploaded: the chosen file is
// previewed, sent as the body of POST /api/v1/seller/uploads with its own type (upload progress shown; the API
// refuses what is not a JPEG, PNG or WebP, over 5 MiB or over 4096 x 4096 pixels, with its reason), then its url
// added to the product's image_urls (PATCH /api/v1/products/{id}). Each change is made to the pictures as read again
// just before (GET /api/v1/products/{id}), and the box's controls wait while an upload or a change runs.
import { session, signInAgain } from './api.js';
import { el } from './format.js';
import { send } from './studio_form.js';

const TYPES = ['image/jpeg', 'image/png', 'image/webp'];
const MAX_BYTES = 5 * 1024 * 1024; // the API's limit, checked here first to spare a long upload
const MAX_PICTURES = 10; // image_urls holds at most 10
const UPLOAD_TIMEOUT_MS = 120000; // an upload unanswered this long fails (nothing spins forever)

// POST the file as the body with its type; resolves {url, ...}, rejects an Error with the API's message
function upload(file, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/seller/uploads');
    xhr.setRequestHeader('Authorization', `Bearer ${session()?.token}`);
    xhr.setRequestHeader('Content-Type', file.type);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.responseType = 'json';
    xhr.timeout = UPLOAD_TIMEOUT_MS;
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) progress.value = ev.loaded / ev.total;
    };
    xhr.onload = () => {
      if (xhr.status === 201 && xhr.response?.url) return resolve(xhr.response);
      if (xhr.status === 401) signInAgain();
      return reject(new Error(xhr.response?.error?.message ?? `The upload failed (HTTP ${xhr.status}).`));
    };
    xhr.onerror = () => reject(new Error('The upload failed: check your connection and try again.'));
    xhr.ontimeout = () => reject(new Error('The upload took too long: try again, or a smaller picture.'));
    xhr.send(file);
  });
}

function preview(file, img) {
  const reader = new FileReader(); // a data: URL (the pages' Content-Security-Policy allows data: images, not blob:)
  reader.onload = () => { img.src = reader.result; };
  reader.readAsDataURL(file);
}

export function pictures(p, reload) {
  const urls = p.image_urls; // as drawn: what the buttons show, not what a save builds on
  const state = el('p', { class: 'muted', role: 'status' });
  const error = el('p', { class: 'error', role: 'alert' });
  const id = `pic-${p.id}`;
  const full = urls.length >= MAX_PICTURES;
  const input = el('input', { id, type: 'file', accept: TYPES.join(','), disabled: full,
    'aria-describedby': `${id}-help` });
  // While an upload or a save runs, the box's buttons and file input wait (a list sent meanwhile would undo it)
  const busy = (on) => {
    for (const b of list.querySelectorAll('button')) b.disabled = on;
    input.disabled = on || full;
  };
  // `change(latest)`: the list to save, built on the product's pictures read again now (another tab, or the list
  // drawn before a long upload, may be out of date)
  const save = async (change, note) => {
    error.textContent = '';
    const had = document.activeElement;
    busy(true);
    try {
      const latest = (await send(`/api/v1/products/${p.id}`, 'GET')).image_urls;
      await send(`/api/v1/products/${p.id}`, 'PATCH', { image_urls: change(latest) });
      await reload(note);
    } catch (e) {
      error.textContent = e.message;
      busy(false);
      if (had?.isConnected && list.contains(had)) had.focus(); // a disabled button lost the focus
    }
  };
  const list = el('ul', { class: 'pictures', 'aria-label': `Pictures of ${p.title}` }, ...urls.map((url, i) => {
    const name = `picture ${i + 1} of ${p.title}`;
    return el('li', {}, el('img', { src: url, alt: `Picture ${i + 1} of ${p.title}`, loading: 'lazy' }),
      el('div', { class: 'actions' },
        i > 0 ? el('button', { type: 'button', class: 'secondary', text: 'Make first', 'aria-label': `Make ${name} the first`,
          onclick: () => save((now) => (now.includes(url) ? [url, ...now.filter((u) => u !== url)] : now),
            `Picture ${i + 1} of ${p.title} is now the first.`) })
          : el('span', { class: 'first-tag', text: 'First' }),
        el('button', { type: 'button', class: 'secondary', text: 'Remove', 'aria-label': `Remove ${name}`,
          onclick: () => save((now) => now.filter((u) => u !== url), `A picture of ${p.title} is removed.`) })));
  }));
  const progress = el('progress', { max: '1', value: '0', hidden: true, 'aria-label': `Uploading a picture of ${p.title}` });
  const shown = el('img', { class: 'preview', alt: '', hidden: true });
  input.addEventListener('change', async () => {
    const file = input.files[0];
    if (!file) return;
    error.textContent = state.textContent = '';
    if (!TYPES.includes(file.type)) {
      error.textContent = `${file.name} is not a JPEG, PNG or WebP picture.`;
      input.value = '';
      return;
    }
    if (file.size > MAX_BYTES) {
      error.textContent = `${file.name} is larger than 5 MB.`;
      input.value = '';
      return;
    }
    preview(file, shown);
    shown.hidden = progress.hidden = false;
    progress.value = 0;
    busy(true);
    state.textContent = `Uploading ${file.name}…`;
    let url = null;
    try {
      url = (await upload(file, progress)).url;
    } catch (e) {
      error.textContent = `${file.name}: ${e.message}`;
      busy(false);
    } finally {
      state.textContent = '';
      shown.hidden = progress.hidden = true;
      input.value = '';
    }
    if (url) await save((now) => (now.includes(url) ? now : [...now, url]), `${file.name} is added to ${p.title}.`);
  });
  return el('div', { class: 'pictures-box' }, list,
    el('label', { for: id, text: `Add a picture to ${p.title}` }), input,
    el('p', { id: `${id}-help`, class: 'muted hint', text: full ? 'At most 10 pictures: remove one to add another.'
      : 'JPEG, PNG or WebP, at most 5 MB and 4096 x 4096 pixels.' }),
    shown, progress, state, error);
}
