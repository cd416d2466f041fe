// The watch page's spotlight card (templates/watch.html #spotlight): the product the seller spotlights (the join
// ack's `spotlight`, `product:highlighted`, `product:unhighlighted`), its picture, price and variants, live stock
// (`stock:update`: sold out disables buying) and one-tap "Add to cart" (POST /api/v1/me/cart/items), after which
// `live:cart-changed` tells the cart drawer. Signed out, "Add to cart" goes to sign in and comes back.
import { api, session, signInUrl } from './api.js';
import { money } from './cart.js';

// crypto.randomUUID exists only in a secure context: a phone trying the page at http://<LAN address> has none
const newKey = () => globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;

export function createSpotlight({ streamRef }) {
  const card = document.getElementById('spotlight');
  const title = document.getElementById('spot-title');
  const image = document.getElementById('spot-image');
  const price = document.getElementById('spot-price');
  const picker = document.getElementById('spot-variant');
  const pickerRow = document.getElementById('spot-variant-row');
  const stock = document.getElementById('spot-stock');
  const add = document.getElementById('spot-add');
  const status = document.getElementById('spot-status');
  let product = null;

  const label = (v) => [v.color, v.size].filter(Boolean).join(' · ') || v.sku;
  const chosen = () => product?.variants.find((v) => v.id === picker.value) ?? null;

  function refresh() {
    const v = chosen();
    if (!v) return;
    price.textContent = money(v.price_minor, v.currency);
    const out = v.available <= 0;
    stock.textContent = out ? 'Sold out' : v.available <= 10 ? `Only ${v.available} left` : `${v.available} in stock`;
    stock.dataset.out = out ? 'yes' : 'no';
    add.disabled = out;
    for (const o of picker.options) {
      const ov = product.variants.find((x) => x.id === o.value);
      o.textContent = `${label(ov)}${ov.available <= 0 ? ' (sold out)' : ''}`;
    }
  }

  function show(p) {
    product = p;
    status.textContent = '';
    card.hidden = !p;
    if (!p) return;
    title.textContent = p.title;
    const src = p.image_urls?.[0];
    image.hidden = !src;
    if (src) {
      image.src = src;
      image.alt = p.title;
    }
    picker.replaceChildren(...p.variants.map((v) => new Option(label(v), v.id)));
    const first = p.variants.find((v) => v.available > 0) ?? p.variants[0];
    if (first) picker.value = first.id;
    pickerRow.hidden = p.variants.length < 2;
    refresh();
  }

  picker.addEventListener('change', () => { status.textContent = ''; refresh(); });
  add.addEventListener('click', async () => {
    const v = chosen();
    if (!v) return;
    if (!session()) {
      location.assign(signInUrl());
      return;
    }
    add.disabled = true;
    status.dataset.kind = '';
    status.textContent = 'Adding…';
    try {
      const { cart } = await api('/api/v1/me/cart/items', { method: 'POST',
        body: { variant_id: v.id, qty: 1, stream_id: streamRef(), idempotency_key: newKey() } });
      status.textContent = 'Added to your cart.';
      document.dispatchEvent(new CustomEvent('live:cart-changed', { detail: { count: cart.item_count, cart } }));
    } catch (e) {
      status.dataset.kind = 'error';
      status.textContent = e.status === 401 ? 'Your session has expired: sign in again to buy.'
        : e.code === 'out_of_stock' ? (e.message === 'sold out' ? 'Sold out.' : `Not added: ${e.message}.`)
          : `Not added: ${e.message}.`;
      if (e.code === 'out_of_stock' && e.message === 'sold out') v.available = 0;
    } finally {
      refresh();
    }
  });

  return {
    reset(p) { show(p); },
    event(name, data) {
      if (name === 'product:highlighted') show(data.product);
      else if (name === 'product:unhighlighted') show(null);
      else if (name === 'stock:update' && product && data.product_id === product.id) {
        const v = product.variants.find((x) => x.id === data.variant_id);
        if (v) {
          v.available = data.available;
          refresh();
        }
      }
    },
  };
}
