// The operations dashboard: polls GET /api/v2/dashboard with the admin key and draws it.
// Charts are inline SVG (the gateway may run offline: no CDN, no chart library).
(() => {
  'use strict';
  const KEY = 'dartmouth:adminKey';
  const params = new URLSearchParams(location.search);
  const INTERVAL_MS = Math.max(1000, Number(params.get('interval')) * 1000 || 3000);
  const HISTORY = 60; // polls kept for the requests chart
  const COLORS = { p50: '#2f5bea', p95: '#8aa2f2', p99: '#c9d4fa', requests: '#2f5bea', errors: '#c2281d' };
  const $ = (id) => document.getElementById(id);
  const store = (() => { try { return window.sessionStorage; } catch (_) { return null; } })();

  let timer = null;
  let history = []; // {t, total, errors}
  let lastOK = null;

  // ---- auth and polling ----

  function key() { return (store && store.getItem(KEY)) || ''; }

  async function poll() {
    clearTimeout(timer);
    const headers = {};
    if (key()) headers.Authorization = 'Bearer ' + key();
    let res;
    try {
      res = await fetch('/api/v2/dashboard', { headers, cache: 'no-store' });
    } catch (err) {
      $('updated').textContent = 'Gateway unreachable; retrying…';
      timer = setTimeout(poll, INTERVAL_MS);
      return;
    }
    if (res.status === 401 || res.status === 403) {
      let message = '';
      try { message = (await res.json()).error.message; } catch (_) { /* no body */ }
      showLogin(key() ? message || 'That key was refused.' : '');
      return;
    }
    if (!res.ok) {
      $('updated').textContent = 'The gateway answered ' + res.status + '; retrying…';
      timer = setTimeout(poll, INTERVAL_MS);
      return;
    }
    const data = await res.json();
    showBoard();
    render(data);
    lastOK = new Date();
    $('updated').textContent = 'Updated ' + lastOK.toLocaleTimeString() + ' · every ' + INTERVAL_MS / 1000 + ' s';
    timer = setTimeout(poll, INTERVAL_MS);
  }

  function showLogin(message) {
    clearTimeout(timer);
    $('board').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('key').focus();
  }

  function showBoard() {
    $('login').hidden = true;
    $('board').hidden = false;
    $('logout').hidden = !key();
  }

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('key').value.trim();
    if (!value) return;
    if (store) store.setItem(KEY, value);
    $('key').value = '';
    poll();
  });
  $('logout').addEventListener('click', () => {
    if (store) store.removeItem(KEY);
    history = [];
    showLogin('');
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden && !$('board').hidden) poll(); });

  // ---- formatting ----

  const usd = (v) => (v === 0 ? '$0' : '$' + (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4)));
  const pct = (v) => (v * 100).toFixed(v >= 0.1 || v === 0 ? 0 : 1) + '%';
  const num = (v) => Number(v || 0).toLocaleString();
  const ms = (v) => (v >= 1000 ? (v / 1000).toFixed(2) + ' s' : (v >= 10 ? Math.round(v) : v.toFixed(1)) + ' ms');

  function get(obj, path) {
    return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
  }

  function setMetrics(data) {
    for (const node of document.querySelectorAll('[data-metric]')) {
      const path = node.dataset.metric;
      const v = get(data, path);
      if (v === undefined) continue;
      node.dataset.value = String(v);
      node.textContent = typeof v === 'number' ? (path.endsWith('usd') ? usd(v) : num(v)) : String(v);
    }
  }

  // ---- SVG ----

  const NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, children) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children || []) e.append(c);
    return e;
  }
  function text(x, y, s, attrs) { const t = svg('text', Object.assign({ x, y }, attrs || {})); t.textContent = s; return t; }
  function chartRoot(label, w, h) { return svg('svg', { viewBox: '0 0 ' + w + ' ' + h, role: 'img', 'aria-label': label }); }
  function put(id, node) { const host = $(id); host.textContent = ''; host.append(node); }
  function empty(id, message) { const p = document.createElement('p'); p.className = 'empty'; p.textContent = message; put(id, p); }

  function donut(id, rate, enabled, label) {
    const r = 38, c = 2 * Math.PI * r;
    const root = svg('svg', { viewBox: '0 0 96 96', role: 'img', 'aria-label': label + (enabled ? ' hit rate ' + pct(rate) : ' is off') });
    root.append(svg('circle', { cx: 48, cy: 48, r, fill: 'none', stroke: '#edf0f5', 'stroke-width': 12 }));
    if (enabled) {
      root.append(svg('circle', { cx: 48, cy: 48, r, fill: 'none', stroke: COLORS.p50, 'stroke-width': 12,
        'stroke-dasharray': (rate * c).toFixed(2) + ' ' + c.toFixed(2), transform: 'rotate(-90 48 48)' }));
    }
    const t = text(48, 54, enabled ? pct(rate) : 'off', { 'text-anchor': 'middle', class: 'value' });
    root.append(t);
    put(id, root);
  }

  function meter(id, budget) {
    const host = $(id);
    host.textContent = '';
    if (!budget) return;
    const track = document.createElement('span');
    track.className = 'track';
    track.setAttribute('role', 'meter');
    track.setAttribute('aria-label', budget.scope + ' budget');
    track.setAttribute('aria-valuemin', '0');
    track.setAttribute('aria-valuemax', '100');
    track.setAttribute('aria-valuenow', String(budget.percent));
    const fill = document.createElement('span');
    fill.className = 'fill' + (budget.percent >= 90 ? ' bad' : budget.percent >= 80 ? ' warn' : '');
    fill.style.width = Math.min(100, budget.percent) + '%';
    track.append(fill);
    const label = document.createElement('span');
    label.className = 'num';
    label.textContent = budget.percent.toFixed(1) + '% of ' + usd(budget.limitUsd) + ' budget';
    host.append(track, label);
  }

  function lineChart(id, series, label) {
    const w = 600, h = 200, left = 40, bottom = 22, top = 10;
    const n = series[0].points.length;
    if (n < 2) { empty(id, 'Collecting… (one point per ' + INTERVAL_MS / 1000 + ' s)'); return; }
    const maxY = Math.max(1, ...series.flatMap((s) => s.points));
    const x = (i) => left + (i / (HISTORY - 1)) * (w - left - 10);
    const y = (v) => top + (1 - v / maxY) * (h - top - bottom);
    const root = chartRoot(label, w, h);
    for (const f of [0, 0.5, 1]) {
      root.append(svg('line', { x1: left, x2: w - 10, y1: y(maxY * f), y2: y(maxY * f), stroke: '#edf0f5' }));
      root.append(text(4, y(maxY * f) + 4, (maxY * f).toFixed(maxY < 10 ? 1 : 0)));
    }
    const offset = HISTORY - n;
    for (const s of series) {
      const d = s.points.map((v, i) => (i ? 'L' : 'M') + x(i + offset).toFixed(1) + ' ' + y(v).toFixed(1)).join(' ');
      root.append(svg('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-linejoin': 'round' }));
    }
    root.append(text(left, h - 4, 'last ' + Math.round(HISTORY * INTERVAL_MS / 60000) + ' min'));
    put(id, root);
    legend(id, series.map((s) => [s.name, s.color]));
  }

  function legend(id, items) {
    const div = document.createElement('div');
    div.className = 'legend';
    for (const [name, color] of items) {
      const span = document.createElement('span');
      const i = document.createElement('i');
      i.style.background = color;
      span.append(i, name);
      div.append(span);
    }
    $(id).append(div);
  }

  function groupedBars(id, groups, keys, label) {
    const w = 600, h = 200, left = 40, bottom = 30, top = 10;
    const maxY = Math.max(1, ...groups.flatMap((g) => keys.map((k) => g.values[k] || 0)));
    const gw = (w - left - 10) / groups.length, bw = Math.min(26, (gw - 16) / keys.length);
    const y = (v) => top + (1 - v / maxY) * (h - top - bottom);
    const root = chartRoot(label, w, h);
    for (const f of [0, 0.5, 1]) {
      root.append(svg('line', { x1: left, x2: w - 10, y1: y(maxY * f), y2: y(maxY * f), stroke: '#edf0f5' }));
      root.append(text(2, y(maxY * f) + 4, ms(maxY * f)));
    }
    groups.forEach((g, gi) => {
      const x0 = left + gi * gw + (gw - bw * keys.length) / 2;
      keys.forEach((k, ki) => {
        const v = g.values[k] || 0;
        const rect = svg('rect', { x: (x0 + ki * bw).toFixed(1), y: y(v).toFixed(1), width: (bw - 2).toFixed(1),
          height: Math.max(0, h - bottom - y(v)).toFixed(1), fill: COLORS[k] });
        const tip = svg('title');
        tip.textContent = g.name + ' ' + k + ': ' + ms(v);
        rect.append(tip);
        root.append(rect);
      });
      root.append(text(left + gi * gw + gw / 2, h - 16, g.name, { 'text-anchor': 'middle' }));
      root.append(text(left + gi * gw + gw / 2, h - 4, g.count ? 'n=' + g.count : 'no data', { 'text-anchor': 'middle' }));
    });
    put(id, root);
    legend(id, keys.map((k) => [k, COLORS[k]]));
  }

  function dayBars(id, days) {
    if (!days || !days.length) { empty(id, 'Nothing spent this month yet.'); return; }
    const w = 600, h = 200, left = 46, bottom = 22, top = 10;
    const maxY = Math.max(1e-6, ...days.map((d) => d.usd));
    const bw = (w - left - 10) / days.length;
    const y = (v) => top + (1 - v / maxY) * (h - top - bottom);
    const root = chartRoot('Spending by day', w, h);
    for (const f of [0, 1]) root.append(text(2, y(maxY * f) + 4, usd(maxY * f)));
    days.forEach((d, i) => {
      const rect = svg('rect', { x: (left + i * bw + 1).toFixed(1), y: y(d.usd).toFixed(1), width: Math.max(1, bw - 2).toFixed(1),
        height: Math.max(1, h - bottom - y(d.usd)).toFixed(1), fill: COLORS.p50 });
      const tip = svg('title');
      tip.textContent = d.key + ': ' + usd(d.usd) + ', ' + d.requests + ' replies';
      rect.append(tip);
      root.append(rect);
    });
    root.append(text(left, h - 4, days[0].key));
    if (days.length > 1) root.append(text(w - 10, h - 4, days[days.length - 1].key, { 'text-anchor': 'end' }));
    put(id, root);
  }

  function bars(id, rows, emptyText) {
    const host = $(id);
    host.textContent = '';
    if (!rows.length) { empty(id, emptyText); return; }
    const max = Math.max(1e-9, ...rows.map((r) => r.value));
    for (const r of rows) {
      const row = document.createElement('div');
      row.className = 'bar';
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = r.label;
      label.title = r.label;
      const track = document.createElement('span');
      track.className = 'track';
      track.setAttribute('role', 'img');
      track.setAttribute('aria-label', r.label + ': ' + r.text);
      const fill = document.createElement('span');
      fill.className = 'fill' + (r.level ? ' ' + r.level : '');
      fill.style.width = Math.min(100, (r.value / (r.max || max)) * 100).toFixed(1) + '%';
      track.append(fill);
      const n = document.createElement('span');
      n.className = 'num';
      n.textContent = r.text;
      row.append(label, track, n);
      host.append(row);
    }
  }

  function health(id, items, emptyText) {
    const ul = $(id);
    ul.textContent = '';
    if (!items.length) { const li = document.createElement('li'); li.className = 'empty'; li.textContent = emptyText; ul.append(li); return; }
    for (const it of items) {
      const li = document.createElement('li');
      const dot = document.createElement('span');
      dot.className = 'dot ' + it.state;
      dot.setAttribute('role', 'img');
      dot.setAttribute('aria-label', it.state);
      const name = document.createElement('strong');
      name.textContent = it.name;
      const why = document.createElement('span');
      why.className = 'why';
      why.textContent = it.detail;
      li.append(dot, name, why);
      ul.append(li);
    }
  }

  // ---- the board ----

  function render(d) {
    const flat = Object.assign({}, d, { costs: d.costs || { today: {}, month: {}, mode: 'n/a' } });
    setMetrics(flat);
    const budgets = (d.costs && d.costs.budgets) || [];
    meter('budget-daily', budgets.find((b) => b.scope === 'global daily'));
    meter('budget-monthly', budgets.find((b) => b.scope === 'global monthly'));
    donut('llm-cache', d.cache.llm.hitRate, d.cache.llm.enabled, 'LLM response cache');
    donut('tts-cache', d.cache.tts.hitRate, d.cache.tts.enabled, 'TTS cache');
    $('llm-cache').querySelector('text').dataset.value = String(d.cache.llm.hitRate);
    $('tts-cache').querySelector('text').dataset.value = String(d.cache.tts.hitRate);

    const now = Date.now();
    history.push({ t: now, total: d.requests.total, errors: d.requests.errors });
    if (history.length > HISTORY + 1) history = history.slice(-HISTORY - 1);
    const perMin = (k) => history.slice(1).map((p, i) => Math.max(0, p[k] - history[i][k]) * 60000 / Math.max(1, p.t - history[i].t));
    lineChart('chart-requests', [
      { name: 'requests', color: COLORS.requests, points: perMin('total') },
      { name: 'errors', color: COLORS.errors, points: perMin('errors') },
    ], 'API requests and errors per minute');

    const stages = [['voice-to-voice', 'voiceToVoice'], ['first token (TTFT)', 'firstToken'], ['TTS first byte', 'ttsFirstByte'],
      ['transcript', 'transcript'], ['chat first token', 'chatFirstToken']];
    groupedBars('chart-latency', stages.map(([name, k]) => {
      const s = d.latency[k] || {};
      return { name, count: s.count, values: { p50: s.p50Ms, p95: s.p95Ms, p99: s.p99Ms } };
    }), ['p50', 'p95', 'p99'], 'Latency percentiles by stage');
    for (const [, k] of stages) {
      const s = d.latency[k] || {};
      $('chart-latency').dataset[k] = String(s.p50Ms || 0);
    }

    dayBars('chart-days', d.costs && d.costs.monthByDay);
    bars('budgets', budgets.map((b) => ({ label: b.scope, value: b.percent, max: 100, text: b.percent.toFixed(1) + '% of ' + usd(b.limitUsd),
      level: b.percent >= 90 ? 'bad' : b.percent >= 80 ? 'warn' : '' })), 'No budgets set (--budget-daily, --budget-monthly, --agent-budgets).');
    bars('agents', d.agents.map((a) => {
      const h = a.health || {};
      return { label: a.name + ' (' + a.id + ')', value: a.requestsToday,
        text: [num(a.requestsToday), usd(a.usdToday), h.calls ? pct(h.successRate) + ' ok, TTFT ' + ms(h.p50Ms) : '',
          a.hasOwnBudget ? 'budget ' + a.budgetPercent.toFixed(0) + '%' : ''].filter(Boolean).join(' · '),
        level: a.overBudget || (h.calls && h.successRate < 0.9) ? 'bad' : '' };
    }), 'No agents.');
    bars('routes', d.requests.byRoute.slice(0, 10).map((r) => ({ label: r.route, value: r.requests,
      text: num(r.requests) + (r.errors ? ' · ' + r.errors + ' errors' : ''), level: r.errors ? 'bad' : '' })), 'No API requests yet.');
    health('llm-providers', d.providers.llm.map((p) => ({ name: p.provider, state: p.circuit,
      detail: [p.circuit, p.successes ? p.successes + ' ok' : '', p.failures ? p.failures + ' failed' : '', num(p.requestsMonth) + ' this month',
        p.lastError ? 'last error: ' + p.lastError : ''].filter(Boolean).join(' · ') })), 'No LLM provider has answered yet.');
    health('voice-providers', d.providers.voice.map((p) => ({ name: p.name + ' (' + p.kind + ')', state: p.available ? p.circuit : 'open',
      detail: [p.tier, p.circuit, p.consecutiveFailures ? p.consecutiveFailures + ' failures in a row' : '', p.lastError || ''].filter(Boolean).join(' · ') })),
    'Voice is off on this gateway.');
  }

  poll();
})();
