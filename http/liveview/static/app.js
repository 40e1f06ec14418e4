// The live view's page: polls /api/accounts twice a second and
// /api/series once a second, and draws them. No framework, no build step;
// charts are uPlot (vendor/). Every value from the server is put in the
// page as text (textContent), never as markup.
'use strict';

const ACCOUNTS_EVERY_MS = 500;
const SERIES_EVERY_MS = 1000;
const SHOWN = 64;
const PALETTE = ['#2f6fde', '#e8590c', '#2b8a3e', '#ae3ec9', '#f59f00', '#1098ad', '#c92a2a', '#5c7cfa',
  '#74b816', '#d6336c', '#495057', '#0b7285'];

const intFmt = new Intl.NumberFormat('en-US');
const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtRate(v) {
  if (v == null) return '–';
  if (v >= 100) return intFmt.format(Math.round(v));
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(v === 0 ? 0 : 2);
}

function fmtMs(v) {
  if (v == null) return '–';
  if (v >= 100) return Math.round(v) + ' ms';
  if (v >= 1) return v.toFixed(1) + ' ms';
  return Math.round(v * 1000) + ' µs';
}

// --- liveness -------------------------------------------------------------

let lastHeard = 0;
function heard() {
  lastHeard = Date.now();
}
setInterval(() => {
  const s = $('status');
  const ago = Date.now() - lastHeard;
  if (lastHeard && ago < 3000) {
    s.className = 'status live';
    s.textContent = 'live · ' + new Date(lastHeard).toLocaleTimeString();
  } else {
    s.className = 'status stale';
    s.textContent = lastHeard ? 'no answer for ' + Math.round(ago / 1000) + ' s' : 'connecting…';
  }
}, 250);

// --- accounts -------------------------------------------------------------

const previous = new Map(); // conta -> balance shown last time
const memberColor = new Map();

function colorOf(member) {
  if (!memberColor.has(member)) memberColor.set(member, PALETTE[memberColor.size % PALETTE.length]);
  return memberColor.get(member);
}

function renderAccounts(d) {
  if (d.title) $('title').textContent = d.title;
  const clustered = (d.members || []).length > 0;
  document.querySelectorAll('th.member').forEach((th) => { th.hidden = !clustered; });
  const maxHeat = Math.max(1, ...d.accounts.map((a) => a.ops_per_s));
  const rows = [];
  let locks = 0;
  let queued = 0;
  for (const a of d.accounts) {
    const tr = el('tr');
    tr.dataset.conta = String(a.conta);
    if (a.error) tr.classList.add('error');
    if (a.holder) { tr.classList.add('locked'); locks++; }
    if (a.waiting > 0) { tr.classList.add('queued'); queued += a.waiting; }
    const prev = previous.get(a.conta);
    if (prev !== undefined && prev !== a.saldo) tr.classList.add('changed');
    previous.set(a.conta, a.saldo);

    tr.append(el('td', 'num conta', String(a.conta)));
    const saldo = el('td', 'num saldo', a.error ? '?' : intFmt.format(a.saldo));
    saldo.dataset.value = String(a.saldo);
    tr.append(saldo);
    if (a.error) {
      tr.append(el('td', 'holder', a.error));
    } else {
      tr.append(el('td', a.holder ? 'holder' : 'holder free', a.holder || 'free'));
    }
    tr.append(el('td', 'num fence', a.fence ? String(a.fence) : '–'));
    tr.append(el('td', 'num queue', String(a.waiting)));
    tr.append(el('td', 'num lease', a.holder ? (a.lease_ms ? (a.lease_ms / 1000).toFixed(1) + ' s' : 'none') : '–'));
    const heat = el('td', 'heat');
    const bar = el('div', 'bar');
    const track = el('div', 'track');
    const fill = el('div', 'fill');
    fill.style.width = Math.min(100, (100 * a.ops_per_s) / maxHeat).toFixed(1) + '%';
    track.append(fill);
    bar.append(track, el('span', 'n', fmtRate(a.ops_per_s)));
    heat.append(bar);
    tr.append(heat);
    if (clustered) {
      const m = el('td', 'member');
      const sw = el('span', 'swatch');
      sw.style.background = colorOf(a.member);
      m.append(sw, document.createTextNode(a.member || '?'));
      tr.append(m);
    }
    rows.push(tr);
  }
  document.querySelector('#accounts tbody').replaceChildren(...rows);
  $('more').textContent = d.total > d.accounts.length
    ? 'the ' + d.accounts.length + ' hottest of ' + intFmt.format(d.total) + ' accounts' : '';
  $('c-accounts').textContent = intFmt.format(d.total);
  $('c-active').textContent = intFmt.format(d.active) + ' active in the last seconds';
  $('c-locks').textContent = String(locks);
  $('c-queued').textContent = queued + ' waiting, among those shown';
  renderMembers(d.members || []);
}

function renderMembers(members) {
  $('members-panel').hidden = members.length === 0;
  const items = members.map((m) => {
    const li = el('li', m.self ? 'self' : '');
    const sw = el('span', 'swatch');
    sw.style.background = colorOf(m.addr);
    li.append(sw, document.createTextNode(m.addr + (m.self ? ' (this member)' : '')));
    if (m.accounts >= 0) li.append(el('span', 'muted', ' · ' + intFmt.format(m.accounts) + ' accounts'));
    return li;
  });
  $('members').replaceChildren(...items);
}

async function pollAccounts() {
  try {
    const r = await fetch('api/accounts?limit=' + SHOWN, { cache: 'no-store' });
    if (r.ok) {
      renderAccounts(await r.json());
      heard();
    }
  } catch (e) {
    // the server is away: the status badge says so
  }
  setTimeout(pollAccounts, ACCOUNTS_EVERY_MS);
}

// --- time series ----------------------------------------------------------

const charts = {}; // id -> {plot, keys}

function chartWidth(div) {
  return Math.max(200, div.clientWidth);
}

// draw shows columns (name -> values) against t in chart id, rebuilding the
// chart when its set of series changed.
function draw(id, t, columns, opts = {}) {
  const div = $(id);
  const keys = Object.keys(columns);
  if (t.length === 0 || keys.length === 0) {
    if (charts[id]) { charts[id].plot.destroy(); delete charts[id]; }
    if (!div.querySelector('.empty')) div.replaceChildren(el('div', 'empty', opts.empty || 'nothing yet'));
    return;
  }
  const data = [t, ...keys.map((k) => columns[k])];
  const c = charts[id];
  if (c && c.keys.join('\u0000') === keys.join('\u0000')) {
    c.plot.setData(data);
    return;
  }
  if (c) c.plot.destroy();
  div.replaceChildren();
  const series = [{}];
  keys.forEach((k, i) => {
    const color = (opts.colors && opts.colors[k]) || PALETTE[i % PALETTE.length];
    series.push({
      label: k,
      stroke: color,
      width: 1.6,
      scale: (opts.scales && opts.scales[k]) || 'y',
      value: (u, v) => (v == null ? '–' : (opts.fmt || fmtRate)(v)),
      points: { show: false },
      spanGaps: false,
    });
  });
  const axisFont = '11px system-ui, sans-serif';
  const axes = [
    { stroke: '#6b7385', font: axisFont, grid: { stroke: '#f0f2f5' }, ticks: { stroke: '#e3e6ec' }, space: 70,
      values: (u, vals) => vals.map(clock) },
    { stroke: '#6b7385', font: axisFont, grid: { stroke: '#f0f2f5' }, ticks: { stroke: '#e3e6ec' }, size: 52,
      values: (u, vals) => vals.map(compact) },
  ];
  if (opts.right) {
    axes.push({ scale: opts.right, side: 1, stroke: '#6b7385', font: axisFont, grid: { show: false }, size: 52,
      values: (u, vals) => vals.map(compact) });
  }
  const range = (u, lo, hi) => [0, hi > 0 ? hi * 1.15 : 1];
  const scales = { x: { time: true }, y: { range } };
  if (opts.right) scales[opts.right] = { range };
  const plot = new uPlot({
    width: chartWidth(div),
    height: 140,
    series,
    axes,
    scales,
    legend: { live: false },
    cursor: { points: { show: false } },
  }, data, div);
  charts[id] = { plot, keys };
}

// clock formats a time axis tick (Unix seconds) as HH:MM:SS.
function clock(v) {
  const d = new Date(v * 1000);
  return d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// compact formats a value axis tick: 1.5k, 12k, 0.25.
function compact(v) {
  if (v == null) return '';
  const a = Math.abs(v);
  if (a >= 1e6) return +(v / 1e6).toFixed(1) + 'M';
  if (a >= 1e3) return +(v / 1e3).toFixed(1) + 'k';
  if (a >= 10 || a === 0) return String(Math.round(v));
  return String(+v.toPrecision(2));
}

function last(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i];
  return null;
}

function renderSeries(s) {
  draw('ch-requests', s.t, s.requests, { empty: 'no requests yet' });
  draw('ch-refusals', s.t, s.refusals, { empty: 'no refusals' });
  draw('ch-latency', s.t, { p50: s.p50_ms, p99: s.p99_ms }, { fmt: fmtMs, colors: { p50: '#2f6fde', p99: '#e8590c' } });
  draw('ch-locks', s.t, { 'grants/s': s.lock_grants, 'p99 wait ms': s.lock_wait_p99_ms },
    { right: 'ms', scales: { 'p99 wait ms': 'ms' }, colors: { 'grants/s': '#2b8a3e', 'p99 wait ms': '#ae3ec9' } });
  draw('ch-actors', s.t, { actors: s.actors }, { colors: { actors: '#1098ad' } });
  draw('ch-expiries', s.t, { expiries: s.lease_expiries }, { colors: { expiries: '#c92a2a' } });

  let rps = 0;
  for (const k in s.requests) rps += last(s.requests[k]) || 0;
  let refusals = 0;
  let top = '';
  let topRate = 0;
  for (const k in s.refusals) {
    const v = last(s.refusals[k]) || 0;
    refusals += v;
    if (v > topRate) { topRate = v; top = k; }
  }
  $('c-rps').textContent = s.t.length ? fmtRate(rps) : '–';
  $('c-refusals').textContent = s.t.length ? fmtRate(refusals) : '–';
  $('c-refusal-top').textContent = top ? 'mostly ' + top : 'none in the last second';
  $('c-p99').textContent = fmtMs(last(s.p99_ms));
  $('c-p50').textContent = 'p50 ' + fmtMs(last(s.p50_ms));
  const actors = last(s.actors);
  $('c-actors').textContent = actors == null ? '–' : intFmt.format(actors);
}

async function pollSeries() {
  try {
    const r = await fetch('api/series', { cache: 'no-store' });
    if (r.ok) {
      renderSeries(await r.json());
      heard();
    }
  } catch (e) {
    // the server is away: the status badge says so
  }
  setTimeout(pollSeries, SERIES_EVERY_MS);
}

window.addEventListener('resize', () => {
  for (const id in charts) charts[id].plot.setSize({ width: chartWidth($(id)), height: 140 });
});

pollAccounts();
pollSeries();
