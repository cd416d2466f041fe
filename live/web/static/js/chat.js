// The watch page's chat (templates/watch.html #chat): the join ack's history, live `chat:new`, `chat:deleted`,
// moderation notices, and sending with `chat:send` (docs/protocol.md). A busy room must not make the page janky:
// incoming changes are queued and written once per animation frame, and the list keeps the newest MAX_MESSAGES
// nodes (older ones are removed). It scrolls by itself only while the reader is at the bottom; otherwise a
// "New messages" button takes them there.
import { signInUrl } from './api.js';

export const MAX_MESSAGES = 200;
const SEND_TIMEOUT_MS = 10000;

export function createChat(socket, { me, streamRef }) {
  const list = document.getElementById('chat-list');
  const form = document.getElementById('chat-form');
  const input = document.getElementById('chat-text');
  const error = document.getElementById('chat-error');
  const notice = document.getElementById('chat-notice');
  const more = document.getElementById('chat-more');
  const signin = document.getElementById('chat-signin');
  const byId = new Map(); // message id -> its <li> (in the list or in the batch being built)
  const moderators = new Set();
  let queue = []; // ['add', message] | ['delete', id], applied on the next animation frame
  let frame = 0;
  let sellerUser = null;
  let user = me;

  function badge(u) {
    if (!u) return '';
    if (u.id === sellerUser) return 'Seller';
    if (u.role === 'admin' || moderators.has(u.id)) return 'Moderator';
    return '';
  }

  function node(m) {
    const li = document.createElement('li');
    li.msgId = m.id;
    const name = document.createElement('strong');
    name.textContent = m.user?.name || 'someone';
    li.append(name);
    const b = badge(m.user);
    if (b) {
      const span = document.createElement('span');
      span.className = `chat-badge ${b.toLowerCase()}`;
      span.textContent = b;
      li.append(' ', span);
    }
    li.append(' ', document.createTextNode(m.text));
    return li;
  }

  const atBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 24;

  function flush() {
    frame = 0;
    const ops = queue;
    queue = [];
    // of a burst, only the newest MAX_MESSAGES additions can stay: skip building the others
    let adds = ops.reduce((n, [op]) => n + (op === 'add'), 0);
    const stick = atBottom();
    const batch = document.createDocumentFragment();
    let added = 0;
    for (const [op, v] of ops) {
      if (op === 'add') {
        adds -= 1;
        if (adds >= MAX_MESSAGES || byId.has(v.id)) continue;
        const li = node(v);
        byId.set(v.id, li);
        batch.append(li);
        added += 1;
      } else {
        byId.get(v)?.remove();
        byId.delete(v);
      }
    }
    list.append(batch);
    let extra = list.childElementCount - MAX_MESSAGES;
    while (extra-- > 0) {
      const old = list.firstElementChild;
      byId.delete(old.msgId);
      old.remove();
    }
    if (stick) list.scrollTop = list.scrollHeight;
    else if (added) more.hidden = false;
  }

  function later(op, v) {
    queue.push([op, v]);
    if (!frame) frame = requestAnimationFrame(flush);
  }

  list.addEventListener('scroll', () => { if (atBottom()) more.hidden = true; });
  more.addEventListener('click', () => {
    list.scrollTop = list.scrollHeight;
    more.hidden = true;
  });

  function say(text) { notice.textContent = text; }

  function setUser(u) {
    user = u;
    form.hidden = !u;
    signin.hidden = !!u;
    signin.querySelector('a').href = signInUrl();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    error.textContent = '';
    if (!text) return;
    const button = form.querySelector('button');
    button.disabled = true;
    let ack;
    try {
      ack = await socket.timeout(SEND_TIMEOUT_MS).emitWithAck('chat:send', { stream_id: streamRef(), text });
    } catch {
      ack = { ok: false, error: { code: 'timeout', message: 'The server did not answer: try again.' } };
    } finally {
      button.disabled = false;
    }
    if (ack.ok) {
      input.value = '';
      later('add', ack.message); // the room's chat:new brings it too: the same id is shown once
    } else {
      const { code, message } = ack.error;
      const said = message.charAt(0).toUpperCase() + message.slice(1) + '.'; // "you are muted for 57 more seconds"
      error.textContent = code === 'banned' ? 'You are banned from this chat.'
        : code === 'rate_limited' && !message.startsWith('slow mode') ? `Slow down: ${message}.`
          : code === 'stream_not_live' ? 'The chat is closed: the stream is not live.'
            : code === 'unauthorized' ? 'Sign in again to chat.' : said;
    }
    input.focus();
  });

  return {
    setUser,
    // a fresh join ack: the stream's seller and slow mode, the last messages
    reset(stream, messages) {
      sellerUser = stream.seller?.user_id ?? null;
      moderators.clear();
      for (const id of stream.moderators || []) moderators.add(id);
      queue = [];
      byId.clear();
      list.replaceChildren();
      for (const m of messages || []) later('add', m);
      say(stream.slow_mode_seconds ? `Slow mode: one message every ${stream.slow_mode_seconds} s.` : '');
      form.querySelector('button').disabled = stream.status !== 'live';
    },
    status(status) { form.querySelector('button').disabled = status !== 'live'; },
    event(name, data) {
      if (name === 'chat:new') later('add', data);
      else if (name === 'chat:deleted') later('delete', data.id);
      else if (name === 'chat:slowmode') {
        say(data.seconds ? `Slow mode: one message every ${data.seconds} s.` : 'Slow mode is off.');
      } else if (name === 'moderator:added') moderators.add(data.user_id);
      else if (name === 'moderator:removed') moderators.delete(data.user_id);
      else if (name === 'user:muted' && user && data.user_id === user.id) {
        error.textContent = `A moderator muted you for ${data.seconds} s: you cannot chat until then.`;
      } else if (name === 'user:banned' && user && data.user_id === user.id) {
        error.textContent = 'You are banned from this chat.';
        form.hidden = true;
      }
    },
  };
}
