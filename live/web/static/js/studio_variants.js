// The studio's products page, variants (docs/web.md "The studio"): a variant's SKU, colour, size, price and
// per-buyer limit edited (PATCH /api/v1/variants/{id}, only what changed) and a variant added to a product (POST
// /api/v1/products/{id}/variants), the API's errors under their fields.
import { el } from './format.js';
import { clearErrors, field, fieldError, fromMinor, send, showErrors, toMinor } from './studio_form.js';

function fieldsOf(prefix, v, currency) {
  const [skuL, sku, skuE] = field(`${prefix}-sku`, 'SKU', { maxlength: '64', spellcheck: 'false',
    autocapitalize: 'characters', value: v?.sku ?? '' });
  const [colorL, color, colorE] = field(`${prefix}-color`, 'Colour (optional)', { maxlength: '50',
    value: v?.color ?? '' });
  const [sizeL, size, sizeE] = field(`${prefix}-size`, 'Size (optional)', { maxlength: '50', value: v?.size ?? '' });
  const [priceL, price, priceE] = field(`${prefix}-price`, `Price (${currency})`, { inputmode: 'decimal',
    value: v ? fromMinor(v.price_minor, currency) : '' });
  const inputs = { sku, color, size, price_minor: price, conflict: sku };
  const nodes = [skuL, sku, skuE, colorL, color, colorE, sizeL, size, sizeE, priceL, price, priceE];
  return { inputs, nodes };
}

// The edit form of one variant, behind an "Edit" button
export function variantEditor(v, reload) {
  const prefix = `ev-${v.id}`;
  const { inputs, nodes } = fieldsOf(prefix, v, v.currency);
  const [capL, cap, capE] = field(`${prefix}-cap`, 'Per buyer at most (optional)', { type: 'number', min: '1',
    max: '99', step: '1', inputmode: 'numeric', value: v.max_per_buyer ?? '' });
  inputs.max_per_buyer = cap;
  const line = el('p', { class: 'error', role: 'alert' });
  const toggle = el('button', { type: 'button', class: 'secondary', text: 'Edit', 'aria-expanded': 'false',
    'aria-label': `Edit variant ${v.sku}`, onclick: () => show(form.hidden) });
  const save = el('button', { type: 'submit', text: 'Save variant' });
  const form = el('form', { class: 'stack variant-form', hidden: true, novalidate: true,
    'aria-label': `Variant ${v.sku}`, onsubmit: submit }, ...nodes, capL, cap, capE,
  el('div', { class: 'actions' }, save, el('button', { type: 'button', class: 'secondary', text: 'Cancel',
    onclick: () => { show(false); toggle.focus(); } })), line);

  function show(open) {
    form.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    if (open) inputs.sku.focus();
  }

  async function submit(ev) {
    ev.preventDefault();
    clearErrors(form);
    line.textContent = '';
    const price = toMinor(inputs.price_minor.value, v.currency);
    if (price === null) return fieldError(inputs.price_minor, 'Enter the price, e.g. 19.99.');
    const wanted = { sku: inputs.sku.value.trim(), color: inputs.color.value.trim() || null,
      size: inputs.size.value.trim() || null, price_minor: price,
      max_per_buyer: cap.value.trim() === '' ? null : Number(cap.value) };
    const body = Object.fromEntries(Object.entries(wanted).filter(([k, value]) => value !== (v[k] ?? null)));
    if (!Object.keys(body).length) return show(false);
    save.disabled = true;
    try {
      await send(`/api/v1/variants/${v.id}`, 'PATCH', body);
      await reload(`Variant ${wanted.sku} is saved.`);
    } catch (e) {
      showErrors(e, inputs, line);
    } finally {
      save.disabled = false;
    }
    return undefined;
  }

  return [toggle, form];
}

// "Add a variant" to a product: SKU, colour, size, price (the product's currency) and units in stock
export function newVariant(p, reload) {
  const currency = p.variants[0]?.currency ?? 'USD';
  const prefix = `nv-${p.id}`;
  const { inputs, nodes } = fieldsOf(prefix, null, currency);
  const [stockL, stock, stockE] = field(`${prefix}-stock`, 'Units in stock', { type: 'number', min: '0', step: '1',
    inputmode: 'numeric', value: '0' });
  inputs.stock = stock;
  const line = el('p', { class: 'error', role: 'alert' });
  const add = el('button', { type: 'submit', text: 'Add the variant' });
  const form = el('form', { class: 'stack variant-form', novalidate: true, 'aria-label': `New variant of ${p.title}`,
    onsubmit: async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      line.textContent = '';
      const price = toMinor(inputs.price_minor.value, currency);
      if (price === null) return fieldError(inputs.price_minor, 'Enter the price, e.g. 19.99.');
      const body = { sku: inputs.sku.value.trim(), price_minor: price, currency, stock: Number(stock.value || 0) };
      if (inputs.color.value.trim()) body.color = inputs.color.value.trim();
      if (inputs.size.value.trim()) body.size = inputs.size.value.trim();
      add.disabled = true;
      try {
        await send(`/api/v1/products/${p.id}/variants`, 'POST', body);
        await reload(`Variant ${body.sku} is added to ${p.title}.`);
      } catch (e) {
        showErrors(e, inputs, line);
      } finally {
        add.disabled = false;
      }
      return undefined;
    } }, ...nodes, stockL, stock, stockE, el('div', { class: 'actions' }, add), line);
  return el('details', { class: 'add-variant' }, el('summary', { text: 'Add a variant' }), form);
}
