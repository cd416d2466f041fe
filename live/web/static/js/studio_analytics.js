// A stream's analytics (/studio/streams/<id>/analytics; docs/web.md, "The studio"): totals, viewers over time (a
// line chart of GET /api/v1/livestreams/{id}/analytics's viewers_over_time, sampled every 30 s), units sold per
// minute (a bar chart of sales_over_time), each with its table, and the top products. The stream's title from GET
// /api/v1/livestreams/{id}.
import { api, requireSession, signInAgain } from './api.js';
import { barChart, figure, lineChart } from './chart.js';
import { el, money, READ_MS, withTimeout } from './format.js';

const $ = (id) => document.getElementById(id);
const me = requireSession();
const stream = $('analytics').dataset.stream;
const path = `/api/v1/livestreams/${encodeURIComponent(stream)}`;

const when = (t) => new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const time = (t) => new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
const seconds = (t) => new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const percent = (r) => (r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)} %`);
const amounts = (list) => (list.length ? list.map((r) => money(r.amount_minor, r.currency)).join(' + ') : '—');

function totals(a) {
  const units = a.revenue.reduce((n, r) => n + r.units, 0);
  const rows = [['Peak viewers', a.peak_viewers], ['Paid orders', a.paid_orders], ['Units sold', units],
    ['Revenue', amounts(a.revenue)], ['Buyers', a.buyers], ['Viewers who bought', percent(a.conversion.viewer_conversion)],
    ['Added to cart', a.add_to_carts], ['Carts that bought', percent(a.conversion.cart_conversion)],
    ['Chat messages', a.chat_messages], ['Reactions', a.reactions_total]];
  $('totals').replaceChildren(...rows.map(([k, v]) => el('div', { 'data-total': k },
    el('dt', { text: k }), el('dd', { text: String(v) }))));
}

function viewersFigure(samples) {
  const heading = 'Viewers over time';
  if (!samples.length) {
    return el('section', { id: 'viewers-chart', class: 'card chart-figure' }, el('h2', { text: heading }),
      el('p', { class: 'muted', text: 'No viewer counts yet: they are recorded every 30 seconds while people watch.' }));
  }
  const points = samples.map((s) => ({ t: Date.parse(s.at), y: s.viewers }));
  const peak = Math.max(...points.map((p) => p.y));
  const summary = `${heading}: ${points.length} counts from ${time(points[0].t)} to ${time(points.at(-1).t)}, ` +
    `at most ${peak} viewers`;
  return figure('viewers-chart', heading, lineChart(summary, points, { yTitle: 'Viewers' }),
    ['Time', 'Viewers'], samples.map((s) => [seconds(s.at), s.viewers]));
}

function salesFigure(minutes, width) {
  // width: minutes a point covers (1, or more when the sales span over 600 minutes: equal buckets, docs/commerce.md)
  const heading = width > 1 ? `Sales per ${width} minutes` : 'Sales per minute';
  if (!minutes.length) {
    return el('section', { id: 'sales-chart', class: 'card chart-figure' }, el('h2', { text: heading }),
      el('p', { class: 'muted', text: 'No paid orders from this stream yet.' }));
  }
  const points = minutes.map((m) => ({ t: Date.parse(m.at), y: m.units }));
  const units = points.reduce((n, p) => n + p.y, 0);
  const n = points.length;
  const periods = width > 1 ? `${n === 1 ? 'period' : 'periods'} of ${width} minutes` : (n === 1 ? 'minute' : 'minutes');
  const summary = `${heading}: ${units} units in ${n} ${periods} with a sale, from ` +
    `${time(points[0].t)} to ${time(points.at(-1).t)}`;
  return figure('sales-chart', heading, barChart(summary, points, { yTitle: 'Units sold' }),
    [width > 1 ? 'From' : 'Minute', 'Orders', 'Units', 'Revenue'],
    minutes.map((m) => [time(m.at), m.orders, m.units, amounts(m.revenue)]));
}

function topProducts(items) {
  $('top-empty').hidden = items.length > 0;
  $('top').replaceChildren(...items.map((p) => el('li', { 'data-product': p.product_id },
    el('strong', { text: p.title }), ': ',
    el('span', { text: `${p.units} sold · ${money(p.amount_minor, p.currency)}` }))));
}

// Read the stream and its analytics (again on Refresh: one read at a time, the button aria-disabled meanwhile, not
// disabled, which would drop a keyboard's focus); both give up after READ_MS (nothing loads forever).
async function load() {
  const reload = $('an-reload');
  if (reload.getAttribute('aria-disabled') === 'true') return undefined;
  reload.setAttribute('aria-disabled', 'true');
  $('an-error').textContent = '';
  $('an-state').textContent = 'Loading…';
  try {
    const [s, a] = await withTimeout(Promise.all([api(path), api(`${path}/analytics`)]), READ_MS);
    document.title = `Analytics: ${s.title} · live`;
    $('an-title').textContent = `Analytics: ${s.title}`;
    $('an-live').href = `/studio/live/${encodeURIComponent(s.slug)}`;
    $('an-when').textContent = a.started_at
      ? `${a.status === 'live' ? 'Live since' : 'Started'} ${when(a.started_at)}${a.ended_at ? `, ended ${when(a.ended_at)}` : ''}`
      : 'Not started yet: the numbers fill in once the stream is live.';
    totals(a);
    $('charts').replaceChildren(viewersFigure(a.viewers_over_time), salesFigure(a.sales_over_time, a.sales_bucket_minutes || 1));
    topProducts(a.top_products);
    $('an-body').hidden = false;
    $('an-state').textContent = '';
  } catch (e) {
    if (e.status === 401) return signInAgain();
    $('an-state').textContent = '';
    $('an-error').textContent = e.status === 403 ? 'Only the stream’s seller sees its analytics.'
      : e.status === 404 ? 'There is no such stream.' : `Could not load the analytics: ${e.message}.`;
  } finally {
    reload.removeAttribute('aria-disabled');
  }
  return undefined;
}

$('an-reload').addEventListener('click', load);
if (me) load();
