// The studio's stream settings (docs/web.md, "The studio"): title, description, start time (a scheduled stream),
// slow mode and the stream's blocked words, saved with PATCH /api/v1/livestreams/{id} (only what changed); the
// API's per-field errors are shown on their fields. studio.js feeds it the join ack and the room's events.
import { api, authHeaders, errorOf, session, signInAgain } from './api.js';
import { localInput } from './format.js';

const $ = (id) => document.getElementById(id);
const FIELDS = { title: 'set-title', description: 'set-description', scheduled_at: 'set-start',
  slow_mode_seconds: 'set-slow', blocked_words: 'set-blocked' };

// PATCH like api.js, but a failure keeps the API's `details` ([{field, message}]) for the per-field errors
async function patch(path, body) {
  const resp = await fetch(path, { method: 'PATCH', body: JSON.stringify(body), headers: {
    'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders(session()?.token) } });
  if (resp.ok) return resp.json();
  const data = await resp.clone().json().catch(() => null);
  const e = await errorOf(resp);
  if (e.status === 401) signInAgain();
  e.details = data?.error?.details;
  throw e;
}

export function streamSettings({ onSaved }) {
  const form = $('settings');
  const state = $('settings-state');
  const formError = $('settings-error');
  let stream = null;
  let saved = {}; // the values as last loaded or saved (what "changed" is measured from)

  function clearErrors() {
    formError.textContent = '';
    for (const id of Object.values(FIELDS)) {
      $(id).removeAttribute('aria-invalid');
      $(`${id}-error`).textContent = '';
    }
  }

  function values() {
    const words = $('set-blocked').value.split(/[\n,]/).map((w) => w.trim()).filter(Boolean);
    const start = $('set-start').value;
    return {
      title: $('set-title').value.trim(),
      description: $('set-description').value.trim() || null,
      scheduled_at: start ? new Date(start).toISOString() : null,
      slow_mode_seconds: Number($('set-slow').value),
      blocked_words: words,
    };
  }

  function show(s) {
    $('set-title').value = s.title ?? '';
    $('set-description').value = s.description ?? '';
    $('set-start').value = localInput(s.scheduled_at);
    $('set-start-row').hidden = s.status !== 'scheduled';
    setSlow(s.slow_mode_seconds ?? 0);
    saved = values();
    saved.blocked_words = null; // not readable back from the API: sent when the field is filled in
    $('set-blocked').value = '';
  }

  function setSlow(seconds) {
    const select = $('set-slow');
    if (![...select.options].some((o) => Number(o.value) === seconds)) {
      select.append(new Option(`${seconds} seconds`, String(seconds)));
    }
    select.value = String(seconds);
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors();
    state.textContent = '';
    const now = values();
    const body = {};
    for (const k of ['title', 'description', 'slow_mode_seconds']) if (now[k] !== saved[k]) body[k] = now[k];
    if (stream.status === 'scheduled' && now.scheduled_at !== saved.scheduled_at && now.scheduled_at) {
      body.scheduled_at = now.scheduled_at;
    }
    if (now.blocked_words.length) body.blocked_words = now.blocked_words;
    if (!Object.keys(body).length) { state.textContent = 'Nothing changed.'; return; }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const s = await patch(`/api/v1/livestreams/${encodeURIComponent(stream.id)}`, body);
      Object.assign(stream, s);
      show(s);
      if (body.blocked_words) $('set-blocked-saved').textContent = `Blocked now: ${body.blocked_words.join(', ')}`;
      state.textContent = 'Saved.';
      onSaved?.(s);
    } catch (e) {
      const details = Array.isArray(e.details) ? e.details : [];
      let first = null;
      for (const d of details) {
        const id = FIELDS[String(d.field ?? '').split('.')[0]];
        if (!id) continue;
        $(id).setAttribute('aria-invalid', 'true');
        $(`${id}-error`).textContent = d.message;
        first ??= $(id);
      }
      if (first) first.focus();
      else formError.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });

  return {
    joined(ack) {
      stream = { ...ack.stream };
      form.hidden = false;
      show(stream);
      // the start time is not in the join ack
      api(`/api/v1/livestreams/${encodeURIComponent(stream.id)}`).then((s) => {
        stream.scheduled_at = s.scheduled_at;
        $('set-start').value = localInput(s.scheduled_at);
        saved.scheduled_at = values().scheduled_at;
      }).catch(() => {});
    },
    event(name, data) {
      if (!stream) return;
      if (name === 'chat:slowmode') {
        stream.slow_mode_seconds = data.seconds;
        setSlow(data.seconds);
        saved.slow_mode_seconds = data.seconds;
      } else if (name === 'stream:status') {
        stream.status = data.status;
        $('set-start-row').hidden = data.status !== 'scheduled';
      }
    },
  };
}
