// Plexus explorer — plain JavaScript, no build step, no outside hosts.
//
// Reads the node's JSON API (docs/api.md) from the origin that served the
// page: /chain/status once a second (the live height; new blocks are then
// fetched with /chain/blocks and prepended to the feed), and every 2 s the
// slower data the visible view needs: /providers, /jobs, /upow and
// /upow/epochs.  Views are chosen by the URL fragment (#/block/12,
// #/job/ID, ...), so every page can be linked and the back button works.
// Everything the node says is put in the page as text (textContent), never
// as HTML.
'use strict';
(() => {
  const FEED = 20; // blocks in the live feed
  const FAST_MS = 1000; // /chain/status
  const SLOW_MS = 2000; // providers, jobs, uPoW
  const HEX64 = /^[0-9a-fA-F]{64}$/;
  // the requester's events (src/node/requester*.c) about audits and disputes
  const AUDIT_EVENT = /audited by|dispute shard|equivocated|was caught|re-checked/;

  const state = {
    height: 0,
    chain: null,
    feed: [], // newest first
    providers: null,
    jobs: null,
    upow: null,
    epochs: null,
    view: 'overview',
    arg: '',
    slowAt: 0,
    blocksTop: 0, // the blocks view's newest height; 0: follow the tip
  };

  // ---- helpers -------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k.startsWith('data-') || k === 'href' || k === 'title') e.setAttribute(k, v);
        else e[k] = v;
      }
    }
    for (const c of kids) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const td = (v, cls) => el('td', { class: cls }, v);
  const link = (href, text, title) => el('a', { href, title }, text);
  const short = (h) => (h && h.length > 16 ? `${h.slice(0, 8)}…${h.slice(-6)}` : h || '');
  const fmt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : n === undefined ? '–' : String(n));
  const pct = (x, d = 1) => `${(x * 100).toFixed(d)}%`;

  function siRate(n) {
    if (!n) return '0';
    const u = ['', 'k', 'M', 'G', 'T', 'P'];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return `${n.toFixed(n < 10 && i ? 2 : n < 100 && i ? 1 : 0)} ${u[i]}`;
  }

  function age(ms) {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 60) return `${s.toFixed(0)} s ago`;
    if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
    if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
    return `${(s / 86400).toFixed(1)} d ago`;
  }

  function badge(text) {
    const cls = /settled|ok|active|committed/.test(text) ? 'ok'
      : /fail|lost|slash|inactive|unknown/.test(text) ? 'bad'
        : /running|open|settling|submitted|pending/.test(text) ? 'run' : '';
    return el('span', { class: `badge ${cls}` }, text);
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function kv(dl, pairs) {
    const kids = [];
    for (const [k, v] of pairs) {
      if (v === undefined) continue;
      kids.push(el('dt', null, k), el('dd', null, v instanceof Node ? v : fmt(v)));
    }
    dl.replaceChildren(...kids);
  }

  function message(tbody, cols, text) {
    fill(tbody, [el('tr', null, el('td', { colSpan: cols, class: 'muted' }, text))]);
  }

  // Errors go to the page (the status line), not to the console.
  async function api(path) {
    let r;
    try {
      r = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch (e) {
      const err = new Error(`the node is unreachable (${e.message})`);
      err.status = 0;
      throw err;
    }
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok || !body) {
      const err = new Error(body && body.error ? body.error.message : `HTTP ${r.status}`);
      err.status = r.status;
      throw err;
    }
    return body;
  }

  function setLive(ok, text) {
    const l = $('live');
    l.className = `live ${ok ? 'on' : 'off'}`;
    l.textContent = text;
  }

  // ---- data ---------------------------------------------------------------
  async function pollStatus() {
    const st = await api('/chain/status');
    state.chain = st.chain;
    const h = st.chain.height;
    if (h > state.height) {
      const from = Math.max(state.height + 1, h - FEED + 1, 1);
      const page = await api(`/chain/blocks?from=${from}&limit=${Math.min(FEED, h - from + 1)}`);
      const fresh = page.blocks.slice().reverse();
      fresh.forEach((b) => { b.fresh = state.height > 0; });
      state.feed.forEach((b) => { b.fresh = false; });
      state.feed = fresh.concat(state.feed).slice(0, FEED);
      state.height = h;
    }
    setLive(true, `live · height ${fmt(h)}`);
  }

  async function pollSlow() {
    const v = state.view;
    const jobs = api('/jobs?limit=20').then((j) => { state.jobs = j; }, () => { state.jobs = null; });
    const prov = api('/providers').then((p) => { state.providers = p; }, () => { state.providers = null; });
    const waits = [jobs, prov];
    if (v === 'upow') {
      waits.push(api('/upow').then((u) => { state.upow = u.upow; }, () => { state.upow = null; }));
      waits.push(api('/upow/epochs?limit=100').then((e) => { state.epochs = e; }, () => { state.epochs = null; }));
    }
    await Promise.all(waits);
  }

  // ---- views ----------------------------------------------------------------
  function renderOverview() {
    const c = state.chain;
    if (!c) return;
    $('ov-height').textContent = fmt(c.height);
    $('ov-validators').textContent = fmt(c.validators);
    $('ov-mempool').textContent = fmt(c.mempool);
    const f = state.feed;
    if (f.length >= 2) {
      const span = (f[0].time - f[f.length - 1].time) / 1000;
      let txs = 0;
      for (let i = 0; i < f.length - 1; i++) txs += f[i].n_txs;
      $('ov-tps').textContent = span > 0 ? (txs / span).toFixed(txs / span < 10 ? 2 : 0) : '0';
      $('ov-bt').textContent = span > 0 ? `${(span / (f.length - 1)).toFixed(2)} s` : '–';
    }
    if (state.providers) {
      const ps = state.providers.providers;
      const active = ps.filter((p) => p.active).length;
      $('ov-providers').textContent = active === ps.length ? fmt(ps.length) : `${active} / ${ps.length}`;
    }
    $('ov-chain').textContent = `chain ${c.chain_id} · round ${c.round} (${c.step}) · ` +
      `${fmt(c.txs_committed)} txs committed since the node started`;
    fill($('ov-blocks').tBodies[0], f.map((b) => el('tr', { class: b.fresh ? 'fresh' : '' },
      td(link(`#/block/${b.height}`, fmt(b.height))),
      td(el('span', { class: 'mono', title: b.hash }, short(b.hash)), 'hide-sm'),
      td(fmt(b.n_txs), 'num'),
      td(link(`#/account/${b.proposer}`, short(b.proposer), b.proposer)),
      td(age(b.time), 'muted'))));
    const pb = $('ov-prov').tBodies[0];
    if (!state.providers) message(pb, 4, 'no provider registry on this node');
    else if (!state.providers.providers.length) message(pb, 4, 'no providers registered');
    else {
      const top = state.providers.providers.slice().sort((x, y) => y.earned - x.earned).slice(0, 6);
      fill(pb, top.map((p) => el('tr', { 'data-provider': p.id },
        td(link(`#/account/${p.id}`, short(p.id), p.id)),
        td(fmt(p.price), 'num hide-sm'),
        td(pct(p.reputation / 10000), 'num'),
        td(fmt(p.earned), 'num'))));
    }
    const tb = $('ov-jobs').tBodies[0];
    if (!state.jobs) message(tb, 4, 'no jobs on this node');
    else if (!state.jobs.jobs.length) message(tb, 4, 'no jobs yet (plexus job submit …)');
    else {
      fill(tb, state.jobs.jobs.slice(0, 6).map((j) => el('tr', { 'data-job': j.job },
        td(link(`#/job/${j.job}`, short(j.job), j.job)),
        td(badge(j.state)),
        td(`${j.accepted} / ${j.shards}`, 'hide-sm'),
        td(fmt(j.paid), 'num'))));
    }
  }

  async function renderBlocks() {
    const top = state.blocksTop || state.height;
    if (!top) return;
    const from = Math.max(1, top - FEED + 1);
    const page = await api(`/chain/blocks?from=${from}&limit=${top - from + 1}`);
    const rows = page.blocks.slice().reverse();
    fill($('blocks-table').tBodies[0], rows.map((b) => el('tr', null,
      td(link(`#/block/${b.height}`, fmt(b.height))),
      td(el('span', { class: 'mono', title: b.hash }, short(b.hash))),
      td(fmt(b.n_txs), 'num'),
      td(link(`#/account/${b.proposer}`, short(b.proposer), b.proposer)),
      td(new Date(b.time).toLocaleTimeString(), 'muted'))));
    $('blocks-range').textContent = `${fmt(from)} – ${fmt(top)} of ${fmt(page.height)}`;
    $('blocks-newer').disabled = !state.blocksTop;
    $('blocks-older').disabled = from <= 1;
  }

  async function renderBlock(h) {
    const b = await api(`/chain/blocks/${h}`);
    $('block-title').textContent = `Block ${fmt(b.height)}`;
    kv($('block-kv'), [
      ['Height', b.height],
      ['Hash', el('span', { class: 'mono' }, b.hash)],
      ['Previous', b.height > 1 ? link(`#/block/${b.height - 1}`, b.prev_hash) : b.prev_hash],
      ['Time', `${new Date(b.time).toLocaleString()} (${age(b.time)})`],
      ['Proposer', link(`#/account/${b.proposer}`, b.proposer)],
      ['App hash', el('span', { class: 'mono' }, b.app_hash)],
      ['Transactions', b.n_txs],
      ['Evidence', b.n_evidence],
    ]);
    $('block-prev').href = `#/block/${Math.max(1, b.height - 1)}`;
    $('block-next').href = `#/block/${b.height + 1}`;
    $('block-next').hidden = b.height >= state.height;
    const tb = $('block-txs').tBodies[0];
    if (!b.txs.length) { message(tb, 4, 'no transactions'); return; }
    const txs = await Promise.all(b.txs.slice(0, 100).map((t) => api(`/chain/tx/${t}`).catch(() => ({ hash: t }))));
    fill(tb, txs.map((t, i) => el('tr', null,
      td(fmt(t.index !== undefined ? t.index : i)),
      td(link(`#/tx/${t.hash}`, short(t.hash), t.hash)),
      td(t.result ? badge(t.result) : '–'),
      td(fmt(t.fee_paid), 'num'))));
  }

  async function renderTx(hash) {
    const t = await api(`/chain/tx/${hash}`);
    kv($('tx-kv'), [
      ['Hash', el('span', { class: 'mono' }, t.hash)],
      ['Status', badge(t.status)],
      ['Block', t.height !== undefined ? link(`#/block/${t.height}`, fmt(t.height)) : undefined],
      ['Index', t.index],
      ['Result', t.result !== undefined ? badge(t.result) : undefined],
      ['Fee paid', t.fee_paid],
    ]);
  }

  async function renderAccount(pk) {
    $('acct-input').value = pk;
    $('acct-msg').textContent = '';
    $('acct-kv').replaceChildren();
    $('acct-provider').replaceChildren();
    if (!pk) { $('acct-msg').textContent = 'Enter an account (a node or wallet public key).'; return; }
    if (!HEX64.test(pk)) { $('acct-msg').textContent = 'An account is 64 hex digits.'; return; }
    const r = await api(`/chain/accounts/${pk}`);
    const a = r.account;
    kv($('acct-kv'), [
      ['Account', el('span', { class: 'mono' }, a.pk)],
      ['Balance', a.balance],
      ['Stake', a.stake],
      ['Unbonding', a.unbonding],
      ['Nonce', a.nonce],
      ['At height', r.height],
    ]);
    const p = state.providers && state.providers.providers.find((x) => x.id === pk);
    if (p) {
      $('acct-provider').replaceChildren(el('h3', null, 'Provider'), providerKv(p));
    }
  }

  function providerKv(p) {
    const dl = el('dl', { class: 'kv' });
    kv(dl, [
      ['Address', p.addr],
      ['Price', `${fmt(p.price)} per work unit`],
      ['Speed', `${siRate(p.speed)}work units/s`],
      ['Stake', p.stake],
      ['Reputation', pct(p.reputation / 10000)],
      ['Shards completed', p.shards_completed],
      ['Audits passed / failed', `${fmt(p.audits_passed)} / ${fmt(p.audits_failed)}`],
      ['Disputes won / lost', `${fmt(p.disputes_won)} / ${fmt(p.disputes_lost)}`],
      ['Leases expired', p.leases_expired],
      ['Slashed', p.slashed],
      ['Earned', p.earned],
      ['State', badge(p.active ? 'active' : 'inactive')],
    ]);
    return dl;
  }

  function renderProviders() {
    const tb = $('prov-table').tBodies[0];
    if (!state.providers) { message(tb, 11, 'no provider registry on this node'); return; }
    const ps = state.providers.providers.slice().sort((x, y) => y.reputation - x.reputation || y.stake - x.stake);
    if (!ps.length) { message(tb, 11, 'no providers registered'); return; }
    fill(tb, ps.map((p) => el('tr', { 'data-provider': p.id },
      td(link(`#/account/${p.id}`, short(p.id), p.id)),
      td(fmt(p.price), 'num'),
      td(`${siRate(p.speed)}/s`, 'num'),
      td(fmt(p.stake), 'num'),
      td(pct(p.reputation / 10000), 'num'),
      td(fmt(p.shards_completed), 'num'),
      td(`${fmt(p.audits_passed)} / ${fmt(p.audits_failed)}`, 'num'),
      td(`${fmt(p.disputes_won)} / ${fmt(p.disputes_lost)}`, 'num'),
      td(fmt(p.slashed), 'num'),
      td(fmt(p.earned), 'num'),
      td(badge(p.active ? 'active' : 'inactive')))));
  }

  function payList(j) {
    const span = el('span');
    j.per_provider.forEach((p, i) => {
      if (i) span.append(', ');
      span.append(link(`#/account/${p.id}`, short(p.id), p.id), ` ${fmt(p.paid)}`);
    });
    if (!j.per_provider.length) span.append('–');
    return span;
  }

  function renderJobs() {
    const tb = $('jobs-table').tBodies[0];
    if (!state.jobs) { message(tb, 8, 'this node runs no requester'); return; }
    if (!state.jobs.jobs.length) { message(tb, 8, 'no jobs yet (plexus job submit …)'); return; }
    fill(tb, state.jobs.jobs.map((j) => el('tr', { 'data-job': j.job },
      td(link(`#/job/${j.job}`, short(j.job), j.job)),
      td(badge(j.state)),
      td(`${j.accepted} / ${j.shards}`),
      td(fmt(j.audits), 'num'),
      td(`${fmt(j.disputes)}${j.slashed ? ` (${j.slashed} slashed)` : ''}`, 'num'),
      td(payList(j)),
      td(fmt(j.paid), 'num'),
      td(fmt(j.escrow), 'num'))));
  }

  async function renderJob(id) {
    const j = await api(`/jobs/${id}`);
    $('job-title').textContent = `Job ${short(j.job)}`;
    kv($('job-kv'), [
      ['Job', el('span', { class: 'mono' }, j.job)],
      ['State', badge(j.state)],
      ['Shards accepted', `${fmt(j.accepted)} / ${fmt(j.shards)} (${fmt(j.running)} running)`],
      ['Samples', j.samples],
      ['Audits', j.audits],
      ['Disputes', j.disputes],
      ['Providers slashed', j.slashed],
      ['Leases expired', j.expiries],
      ['Escrow', j.escrow],
      ['Paid', j.paid],
      ['Paid on chain', j.paid_on_chain],
      ['Refund', j.refund],
    ]);
    const tb = $('job-pay').tBodies[0];
    if (!j.per_provider.length) message(tb, 4, 'no payments yet');
    else {
      fill(tb, j.per_provider.map((p) => el('tr', { 'data-provider': p.id },
        td(link(`#/account/${p.id}`, short(p.id), p.id)),
        td(fmt(p.shards), 'num'),
        td(fmt(p.audits), 'num'),
        td(fmt(p.paid), 'num'))));
    }
    const audits = j.events.filter((e) => AUDIT_EVENT.test(e));
    $('job-audits').replaceChildren(...(audits.length ? audits.map((e) => el('li', null,
      badge(/: ok$|re-checked: correct/.test(e) ? 'ok' : / vs /.test(e) ? 'dispute' : 'failed'), ' ', e))
      : [el('li', { class: 'muted' }, 'no audits yet')]));
    $('job-events').replaceChildren(...j.events.map((e) => el('li', null, e)));
  }

  function renderUpow() {
    const u = state.upow;
    const ep = state.epochs;
    if (u) {
      $('up-epoch').textContent = fmt(u.epoch);
      $('up-margin').textContent = fmt(u.margin);
      $('up-sol').textContent = fmt(u.solutions);
    }
    const chart = $('up-chart');
    const board = $('up-board').tBodies[0];
    if (!ep) {
      chart.replaceChildren();
      $('up-chart-note').textContent = 'uPoW is not running on this node';
      message(board, 5, '–');
      return;
    }
    const pts = ep.epochs.map((e) => ({ epoch: e.epoch, acc: e.score / ep.eval_n, won: e.solutions > 0, e }));
    if (pts.length) $('up-acc').textContent = pct(pts[pts.length - 1].acc);
    chart.replaceChildren(drawChart(pts));
    $('up-chart-note').textContent = pts.length
      ? `epochs ${fmt(pts[0].epoch)} – ${fmt(pts[pts.length - 1].epoch)}: score on each epoch's ` +
        `${fmt(ep.eval_n)}-image evaluation subset of Fashion-MNIST; green: a mined solution was published`
      : 'no epoch has published a model yet';
    const by = new Map();
    for (const e of ep.epochs) {
      if (!e.solutions || /^0+$/.test(e.winner)) continue;
      const m = by.get(e.winner) || { id: e.winner, won: 0, best: 0, last: 0 };
      m.won++;
      m.best = Math.max(m.best, e.score);
      m.last = Math.max(m.last, e.epoch);
      by.set(e.winner, m);
    }
    const ms = [...by.values()].sort((a, b) => b.won - a.won || b.best - a.best);
    if (!ms.length) { message(board, 5, 'no mined solutions in these epochs yet (plexus mine --home DIR)'); return; }
    fill(board, ms.map((m, i) => el('tr', null,
      td(fmt(i + 1)),
      td(link(`#/account/${m.id}`, short(m.id), m.id)),
      td(fmt(m.won), 'num'),
      td(pct(m.best / ep.eval_n), 'num'),
      td(`epoch ${fmt(m.last)}`, 'muted'))));
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function drawChart(pts) {
    const W = 800, H = 260, L = 46, R = 12, T = 12, B = 30;
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'xMidYMid meet' });
    if (!pts.length) return s;
    // a y range of whole steps of 1, 2, 5, 10, 20 or 25 points, 2..5 steps
    const amin = Math.min(...pts.map((p) => p.acc)), amax = Math.max(...pts.map((p) => p.acc));
    const step = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25].find((st) => (amax - amin + 0.02) / st <= 4) || 0.25;
    const lo = Math.max(0, Math.floor((amin - 0.01) / step) * step);
    let hi = Math.min(1, Math.ceil((amax + 0.01) / step) * step);
    if (hi - lo < 2 * step) hi = Math.min(1, lo + 2 * step);
    const nt = Math.round((hi - lo) / step);
    const x0 = pts[0].epoch, x1 = Math.max(pts[pts.length - 1].epoch, x0 + 1);
    const X = (e) => L + ((e - x0) / (x1 - x0)) * (W - L - R);
    const Y = (a) => T + (1 - (a - lo) / (hi - lo)) * (H - T - B);
    for (let i = 0; i <= nt; i++) {
      const a = lo + step * i;
      s.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: Y(a), y2: Y(a) }));
      s.append(svg('text', { x: L - 6, y: Y(a) + 4, 'text-anchor': 'end' }, pct(a, 0)));
    }
    s.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
    const ticks = Math.min(6, x1 - x0);
    for (let i = 0; i <= ticks; i++) {
      const e = Math.round(x0 + ((x1 - x0) * i) / ticks);
      s.append(svg('text', { x: X(e), y: H - B + 16, 'text-anchor': 'middle' }, `${e}`));
    }
    s.append(svg('text', { x: W - R, y: H - 2, 'text-anchor': 'end' }, 'epoch'));
    s.append(svg('polyline', { class: 'line', points: pts.map((p) => `${X(p.epoch).toFixed(1)},${Y(p.acc).toFixed(1)}`).join(' ') }));
    for (const p of pts) {
      const d = svg('circle', { class: p.won ? 'dot won' : 'dot', cx: X(p.epoch).toFixed(1), cy: Y(p.acc).toFixed(1), r: pts.length > 60 ? 2 : 3.5 });
      d.append(svg('title', {}, `epoch ${p.epoch}: ${pct(p.acc, 2)} (${p.e.score}/${state.epochs.eval_n}), ` +
        `${p.e.solutions} solution(s)`));
      s.append(d);
    }
    return s;
  }

  // ---- routing ----------------------------------------------------------------
  const VIEWS = ['overview', 'blocks', 'block', 'tx', 'accounts', 'providers', 'jobs', 'job', 'upow'];
  const NAV = { block: 'blocks', tx: 'blocks', accounts: 'accounts', job: 'jobs' };

  function parseHash() {
    const parts = location.hash.replace(/^#\/?/, '').split('/');
    let v = parts[0] || 'overview';
    let arg = parts[1] || '';
    if (v === 'account') v = 'accounts';
    if (!VIEWS.includes(v)) { v = 'overview'; arg = ''; }
    return { v, arg };
  }

  async function render(full) {
    const v = state.view, arg = state.arg;
    try {
      if (v === 'overview') renderOverview();
      else if (v === 'blocks') { if (full || !state.blocksTop) await renderBlocks(); }
      else if (v === 'block') { if (full) await renderBlock(arg); }
      else if (v === 'tx') { if (full) await renderTx(arg); }
      else if (v === 'accounts') { if (full) await renderAccount(arg); }
      else if (v === 'providers') renderProviders();
      else if (v === 'jobs') renderJobs();
      else if (v === 'job') await renderJob(arg);
      else if (v === 'upow') renderUpow();
    } catch (e) {
      if (e.status === 0) setLive(false, 'offline');
      else if (full) showError(v, e.message);
    }
  }

  function showError(v, msg) {
    const target = { block: 'block-kv', tx: 'tx-kv', accounts: 'acct-kv', job: 'job-kv' }[v];
    if (target) kv($(target), [['Error', msg]]);
  }

  async function route() {
    const { v, arg } = parseHash();
    state.view = v;
    state.arg = arg;
    for (const name of VIEWS) {
      const sec = $(`view-${name}`);
      if (sec) sec.hidden = name !== v;
    }
    const navName = NAV[v] || v;
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === navName);
    if ((v === 'upow' && !state.epochs) || (v === 'accounts' && !state.providers)) await pollSlow().catch(() => {});
    await render(true);
  }

  async function tick() {
    try {
      await pollStatus();
      if (Date.now() - state.slowAt >= SLOW_MS) {
        state.slowAt = Date.now();
        await pollSlow();
      }
      await render(false);
    } catch (e) {
      setLive(false, e.status === 0 ? 'offline: retrying' : `error: ${e.message}`);
    }
    setTimeout(tick, FAST_MS);
  }

  function init() {
    $('acct-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const pk = $('acct-input').value.trim().toLowerCase();
      location.hash = `#/account/${pk}`;
    });
    $('blocks-older').addEventListener('click', () => {
      const top = state.blocksTop || state.height;
      state.blocksTop = Math.max(1, top - FEED);
      renderBlocks().catch(() => {});
    });
    $('blocks-newer').addEventListener('click', () => {
      const top = state.blocksTop + FEED;
      state.blocksTop = top >= state.height ? 0 : top;
      renderBlocks().catch(() => {});
    });
    window.addEventListener('hashchange', () => { route(); });
    route();
    tick();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
