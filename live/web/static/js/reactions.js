// The watch page's reactions (templates/watch.html .reactions): a button per kind of docs/protocol.md sends
// `reaction`; the room's `reactions` broadcasts ({counts} since the last one, {totals}) update the totals and float
// a few emoji over the video: at most MAX_FLOATING on screen, none when the person prefers reduced motion.
export const KINDS = { heart: '❤️', fire: '🔥', clap: '👏', wow: '😮', laugh: '😂' };
const MAX_FLOATING = 24;
const FLOAT_MS = 2000;

export function createReactions(socket, { streamRef }) {
  const box = document.getElementById('reactions');
  const layer = document.getElementById('floaters');
  const note = document.getElementById('reaction-note');
  const still = matchMedia('(prefers-reduced-motion: reduce)');
  const totals = new Map();
  let floating = 0;

  for (const [kind, emoji] of Object.entries(KINDS)) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary reaction';
    b.dataset.kind = kind;
    const icon = document.createElement('span');
    icon.setAttribute('aria-hidden', 'true');
    icon.textContent = emoji;
    const name = document.createElement('span');
    name.className = 'sr-only';
    name.textContent = `React ${kind}`; // the name holds the visible total too: "React heart 3"
    const n = document.createElement('span');
    n.className = 'reaction-total';
    n.textContent = '0';
    b.append(icon, name, ' ', n);
    totals.set(kind, n);
    b.addEventListener('click', async () => {
      note.textContent = '';
      const ack = await socket.timeout(5000).emitWithAck('reaction', { stream_id: streamRef(), kind })
        .catch(() => ({ ok: false, error: { code: 'timeout', message: 'the server did not answer' } }));
      if (!ack.ok && ack.error.code !== 'rate_limited') note.textContent = `Not sent: ${ack.error.message}.`;
    });
    box.append(b);
  }

  function float(kind) {
    if (floating >= MAX_FLOATING || still.matches || document.visibilityState !== 'visible') return;
    floating += 1;
    const f = document.createElement('span');
    f.className = 'floater';
    f.textContent = KINDS[kind];
    f.style.left = `${10 + Math.random() * 80}%`;
    layer.append(f);
    setTimeout(() => { f.remove(); floating -= 1; }, FLOAT_MS);
  }

  function show(all) {
    for (const [kind, n] of Object.entries(all || {})) {
      if (totals.has(kind)) totals.get(kind).textContent = String(n);
    }
  }

  return {
    setUser(user) {
      for (const b of box.querySelectorAll('button')) b.disabled = !user;
      box.title = user ? '' : 'Sign in to react';
    },
    reset(all) { show(all); },
    event(name, data) {
      if (name !== 'reactions') return;
      show(data.totals);
      for (const [kind, n] of Object.entries(data.counts || {})) {
        for (let i = 0; i < Math.min(n, 5); i += 1) float(kind);
      }
    },
  };
}
