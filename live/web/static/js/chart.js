// Tiny SVG charts (no chart library; docs/web.md, "The studio"): a line chart and a bar chart over time, each an
// inline <svg> scaled by its viewBox (it fits any width: no layout break at 360 px) with its axes' labels, and a
// <table> of the same numbers for screen readers and anyone who wants them (the <svg> is one image named by its
// summary). figure() puts the three together.
import { el } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 360; // a phone's width: the labels stay readable there, and scale up with a wider screen
const H = 220;
const M = { top: 12, right: 10, bottom: 40, left: 40 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// The smallest 1, 2 or 5 times a power of ten at or above v (at least 1): the y axis's top.
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((n) => n >= v);
}

const hhmm = (t) => new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });

// The frame both charts share: y grid lines and labels (0, half, top), x labels (first, middle, last time), the
// axes' titles. `x(t)` maps a time to a position.
function frame(summary, points, { xTitle, yTitle, yFormat, x }) {
  const top = niceMax(Math.max(...points.map((p) => p.y)));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary, class: 'chart',
    preserveAspectRatio: 'xMidYMid meet' });
  const y = (v) => M.top + PH - (v / top) * PH;
  const g = svg('g', { class: 'axes', 'aria-hidden': 'true' });
  for (const v of [0, top / 2, top]) {
    g.append(svg('line', { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), class: v ? 'grid' : 'axis' }),
      svg('text', { x: M.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, yFormat(v)));
  }
  const times = [...new Set([points[0].t, points[Math.floor((points.length - 1) / 2)].t, points.at(-1).t])];
  times.forEach((t, i) => { // the first and last labels inside the frame
    const anchor = times.length === 1 ? 'middle' : i === 0 ? 'start' : i === times.length - 1 ? 'end' : 'middle';
    g.append(svg('text', { x: x(t), y: H - M.bottom + 16, 'text-anchor': anchor }, hhmm(t)));
  });
  g.append(svg('text', { x: M.left + PW / 2, y: H - 4, 'text-anchor': 'middle', class: 'title' }, xTitle),
    svg('text', { x: 11, y: M.top + PH / 2, 'text-anchor': 'middle', class: 'title',
      transform: `rotate(-90 11 ${M.top + PH / 2})` }, yTitle));
  root.append(g);
  return { root, y };
}

function timeScale(points, pad = 0) {
  const t0 = points[0].t;
  const span = points.at(-1).t - t0;
  return (t) => (span ? M.left + pad + ((t - t0) / span) * (PW - 2 * pad) : M.left + PW / 2);
}

// points: [{t: ms, y: number}] in time order (at least one). One circle per point (class `point`).
export function lineChart(summary, points, { xTitle = 'Time', yTitle = '', yFormat = String } = {}) {
  const x = timeScale(points, 8);
  const { root, y } = frame(summary, points, { xTitle, yTitle, yFormat, x });
  const g = svg('g', { class: 'series', 'aria-hidden': 'true' });
  if (points.length > 1) {
    g.append(svg('polyline', { points: points.map((p) => `${x(p.t)},${y(p.y)}`).join(' '), class: 'line' }));
  }
  for (const p of points) g.append(svg('circle', { cx: x(p.t), cy: y(p.y), r: 3.5, class: 'point' }));
  root.append(g);
  return root;
}

// points: [{t: ms, y: number}] in time order (at least one), one bar each (class `bar`), as wide as the
// closest two allow.
export function barChart(summary, points, { xTitle = 'Time', yTitle = '', yFormat = String } = {}) {
  const gaps = points.slice(1).map((p, i) => p.t - points[i].t).filter((d) => d > 0);
  const span = points.at(-1).t - points[0].t;
  const slots = gaps.length ? span / Math.min(...gaps) + 1 : 1;
  const width = Math.max(2, Math.min(48, (PW / slots) * 0.7));
  const x = timeScale(points, width / 2 + 4);
  const { root, y } = frame(summary, points, { xTitle, yTitle, yFormat, x });
  const g = svg('g', { class: 'series', 'aria-hidden': 'true' });
  for (const p of points) {
    g.append(svg('rect', { x: x(p.t) - width / 2, y: y(p.y), width, height: Math.max(0, y(0) - y(p.y)),
      class: 'bar' }));
  }
  root.append(g);
  return root;
}

// A <figure>: its heading, the chart, and the numbers as a table (in a <details>, "Show the numbers").
export function figure(id, heading, chart, columns, rows) {
  const table = el('table', { class: 'chart-table' },
    el('caption', { text: heading }),
    el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { scope: 'col', text: c })))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((v, i) => el(i ? 'td' : 'th', i ? {} : { scope: 'row' },
      String(v)))))));
  return el('figure', { id, class: 'card chart-figure', 'aria-labelledby': `${id}-h` },
    el('h2', { id: `${id}-h`, text: heading }), chart,
    el('details', {}, el('summary', { text: 'Show the numbers' }), table));
}
