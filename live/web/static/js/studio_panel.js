// The studio's live panel (docs/web.md, "The studio"): viewers, reactions, units sold and revenue during this stream
// (GET /api/v1/livestreams/{id}/analytics, again when a sale is announced), the spotlighted product with its live
// stock, the product picker (GET /api/v1/me/products; `product:highlight` / `product:unhighlight`) and the chat
// with delete / mute / ban on each message (docs/protocol.md). studio.js owns the room and feeds it here.
import { api } from './api.js';
import { el, money } from './format.js';

const MAX_CHAT = 200; // messages kept on screen (a busy room never grows the page)
const ANALYTICS_DEBOUNCE_MS = 300;
const MUTE_CHOICES = [[300, '5 minutes'], [3600, '1 hour'], [86400, '1 day']];

const $ = (id) => document.getElementById(id);

function variantLabel(v) {
  return [v.sku, [v.color, v.size].filter(Boolean).join(' / ')].filter(Boolean).join(' · ');
}

export function livePanel({ socket, me }) {
  const root = $('panel');
  const chatList = $('chat-list');
  const modState = $('mod-state');
  const modError = $('mod-error');
  let stream = null;
  let spotlight = null; // the spotlighted product (as product:highlighted has it)
  let products = [];
  const names = new Map(); // user id -> name, from chat
  let pending = []; // chat:new waiting for the next animation frame
  let frame = 0;
  let analyticsTimer = 0;
  let analyticsBusy = false;

  const emit = async (event, payload) => {
    const ack = await socket().timeout(10000).emitWithAck(event, { stream_id: stream.id, ...payload })
      .catch(() => ({ ok: false, error: { message: 'The server did not answer: try again.' } }));
    if (!ack.ok) throw new Error(ack.error.message);
    return ack;
  };
  const said = (text) => { modError.textContent = ''; modState.textContent = text; };
  const failed = (e) => { modState.textContent = ''; modError.textContent = e.message; };

  // ---- numbers

  async function loadAnalytics() {
    if (analyticsBusy) { analyticsTimer = setTimeout(loadAnalytics, ANALYTICS_DEBOUNCE_MS); return; }
    analyticsBusy = true;
    try {
      const a = await api(`/api/v1/livestreams/${encodeURIComponent(stream.id)}/analytics`);
      const units = a.revenue.reduce((n, r) => n + r.units, 0);
      $('units').textContent = String(units);
      $('revenue').textContent = a.revenue.length ? a.revenue.map((r) => money(r.amount_minor, r.currency)).join(' + ')
        : money(0, products[0]?.variants[0]?.currency ?? 'USD');
      $('orders-count').textContent = String(a.paid_orders);
      $('carts').textContent = String(a.add_to_carts);
      $('peak').textContent = String(a.peak_viewers);
      $('sales-error').textContent = '';
    } catch (e) {
      $('sales-error').textContent = `Could not load the sales: ${e.message}`;
    } finally {
      analyticsBusy = false;
    }
  }

  function refreshSales() {
    clearTimeout(analyticsTimer);
    analyticsTimer = setTimeout(loadAnalytics, ANALYTICS_DEBOUNCE_MS);
  }

  function setReactions(totals) {
    $('reactions').textContent = String(Object.values(totals ?? {}).reduce((n, c) => n + c, 0));
  }

  // ---- the spotlight and the picker

  function renderSpotlight() {
    const box = $('spotlight-now');
    $('unspotlight').hidden = !spotlight;
    if (!spotlight) {
      box.replaceChildren(el('p', { class: 'muted', text: 'Nothing is spotlighted: pick a product below.' }));
    } else {
      box.replaceChildren(el('p', { class: 'spot-title', text: spotlight.title }),
        el('ul', { class: 'stock', 'aria-label': 'Stock of the spotlighted product' },
          ...spotlight.variants.map((v) => el('li', { 'data-variant': v.id },
            el('span', { text: variantLabel(v) || 'Default' }), ' ',
            el('strong', { class: v.available > 0 ? '' : 'sold-out',
              text: v.available > 0 ? `${v.available} left` : 'sold out' }), ' ',
            el('span', { class: 'muted', text: money(v.price_minor, v.currency) })))));
    }
    renderProducts();
  }

  function renderProducts() {
    const list = $('products');
    if (!products.length) {
      list.replaceChildren(el('li', { class: 'muted', text: 'You have no active products yet.' }));
      return;
    }
    list.replaceChildren(...products.map((p) => {
      const on = spotlight?.id === p.id;
      const stock = p.variants.reduce((n, v) => n + Math.max(0, v.available), 0);
      return el('li', { class: on ? 'on' : '', 'data-product': p.id },
        el('span', { class: 'grow' }, el('strong', { text: p.title }), el('br'),
          el('span', { class: 'muted', text: `${stock} in stock · ${p.variants.length} variant${p.variants.length === 1 ? '' : 's'}` })),
        on ? el('span', { class: 'badge live', text: 'On screen' }) : null,
        on ? el('button', { type: 'button', class: 'secondary', 'aria-label': `Clear the spotlight (${p.title})`,
          text: 'Clear', onclick: clearSpotlight })
          : el('button', { type: 'button', 'aria-label': `Spotlight ${p.title}`, text: 'Spotlight',
            onclick: () => pick(p) }));
    }));
  }

  async function loadProducts() {
    try {
      products = (await api('/api/v1/me/products?status=active&limit=100')).items;
      $('products-error').textContent = '';
    } catch (e) {
      $('products-error').textContent = `Could not load your products: ${e.message}`;
    }
    renderProducts();
  }

  async function pick(p) {
    try {
      const ack = await emit('product:highlight', { product_id: p.id });
      spotlight = ack.product;
      renderSpotlight();
      said(`${p.title} is on screen.`);
    } catch (e) { failed(e); }
  }

  async function clearSpotlight() {
    try {
      await emit('product:unhighlight', {});
      spotlight = null;
      renderSpotlight();
      said('The spotlight is cleared.');
    } catch (e) { failed(e); }
  }

  $('unspotlight').addEventListener('click', clearSpotlight);

  // ---- chat and moderation

  function confirmBox(li, m, kind) {
    li.querySelector('.confirm')?.remove();
    const who = m.user.name;
    const box = el('div', { class: 'confirm', role: 'group', 'aria-label': `${kind === 'mute' ? 'Mute' : 'Ban'} ${who}` });
    const cancel = el('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => box.remove() });
    if (kind === 'mute') {
      const select = el('select', { 'aria-label': `Mute ${who} for` },
        ...MUTE_CHOICES.map(([s, label]) => el('option', { value: String(s), text: label })));
      box.append(select, el('button', { type: 'button', text: 'Confirm mute', onclick: async () => {
        try {
          await emit('user:mute', { user_id: m.user.id, seconds: Number(select.value) });
          box.remove();
          said(`${who} is muted for ${select.selectedOptions[0].textContent}.`);
        } catch (e) { failed(e); }
      } }), cancel);
    } else {
      const reason = el('input', { type: 'text', maxlength: '500', 'aria-label': `Why ban ${who} (optional)`,
        placeholder: 'Reason (optional)' });
      box.append(reason, el('button', { type: 'button', class: 'danger', text: 'Confirm ban', onclick: async () => {
        try {
          const r = reason.value.trim();
          await emit('user:ban', { user_id: m.user.id, ...(r ? { reason: r } : {}) });
          box.remove();
          said(`${who} is banned from this stream.`);
        } catch (e) { failed(e); }
      } }), cancel);
    }
    li.append(box);
    box.querySelector('select, input')?.focus();
  }

  function chatItem(m) {
    names.set(m.user.id, m.user.name);
    const li = el('li', { 'data-id': m.id, 'data-user': m.user.id },
      el('span', { class: 'who', text: m.user.name }),
      m.user.role === 'seller' || m.user.id === stream.seller?.user_id ? el('span', { class: 'tag', text: 'seller' })
        : m.user.role === 'admin' ? el('span', { class: 'tag', text: 'admin' }) : null,
      ' ', el('span', { class: 'text', text: m.text }));
    const own = m.user.id === me.user?.id || m.user.id === stream.seller?.user_id;
    if (!own) {
      li.append(el('span', { class: 'mod' },
        el('button', { type: 'button', class: 'link', text: 'Delete', 'aria-label': `Delete ${m.user.name}’s message`,
          onclick: async () => {
            try {
              await emit('chat:delete', { message_id: m.id });
              li.remove();
              said(`${m.user.name}’s message is deleted.`);
            } catch (e) { failed(e); }
          } }),
        el('button', { type: 'button', class: 'link', text: 'Mute', 'aria-label': `Mute ${m.user.name}`,
          onclick: () => confirmBox(li, m, 'mute') }),
        el('button', { type: 'button', class: 'link', text: 'Ban', 'aria-label': `Ban ${m.user.name}`,
          onclick: () => confirmBox(li, m, 'ban') })));
    }
    return li;
  }

  function flushChat() {
    frame = 0;
    const batch = pending.slice(-MAX_CHAT);
    pending = [];
    const stick = chatList.scrollHeight - chatList.scrollTop - chatList.clientHeight < 40;
    chatList.append(...batch.map(chatItem));
    while (chatList.children.length > MAX_CHAT) chatList.firstElementChild.remove();
    $('chat-empty').hidden = chatList.children.length > 0;
    if (stick) chatList.scrollTop = chatList.scrollHeight;
  }

  function addChat(m) {
    pending.push(m);
    if (!frame) frame = requestAnimationFrame(flushChat);
  }

  return {
    joined(ack) {
      stream = ack.stream;
      root.hidden = false;
      spotlight = ack.spotlight;
      setReactions(ack.reactions);
      chatList.replaceChildren();
      pending = [];
      for (const m of ack.chat ?? []) addChat(m);
      if (!ack.chat?.length) $('chat-empty').hidden = false;
      renderSpotlight();
      loadProducts();
      loadAnalytics();
    },
    recovered() {
      if (stream) loadAnalytics();
    },
    event(name, data) {
      if (!stream) return;
      switch (name) {
        case 'chat:new': addChat(data); break;
        case 'chat:deleted':
          pending = pending.filter((m) => m.id !== data.id);
          chatList.querySelector(`li[data-id="${CSS.escape(String(data.id))}"]`)?.remove();
          break;
        case 'user:banned':
          for (const li of chatList.querySelectorAll(`li[data-user="${CSS.escape(data.user_id)}"]`)) {
            li.classList.add('banned');
            li.querySelector('.mod')?.remove();
          }
          break;
        case 'reactions': setReactions(data.totals); break;
        case 'product:highlighted': spotlight = data.product; renderSpotlight(); break;
        case 'product:unhighlighted': spotlight = null; renderSpotlight(); break;
        case 'stock:update': {
          const v = spotlight?.id === data.product_id && spotlight.variants.find((x) => x.id === data.variant_id);
          if (v) { v.available = data.available; renderSpotlight(); }
          const p = products.find((x) => x.id === data.product_id);
          const pv = p?.variants.find((x) => x.id === data.variant_id);
          if (pv) { pv.available = data.available; renderProducts(); }
          break;
        }
        case 'notification:new':
          if (data.notification?.kind === 'seller.new_order') refreshSales();
          break;
        case 'order:update':
          if (data.order?.livestream_id === stream.id) refreshSales();
          break;
        case 'viewer:count':
          if (data.count > Number($('peak').textContent)) $('peak').textContent = String(data.count);
          break;
        default:
      }
    },
  };
}
