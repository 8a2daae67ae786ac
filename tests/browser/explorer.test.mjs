// explorer.test.mjs — the web explorer (web/, served at / by
// `plexus node --http`) in headless Debian chromium, driven by playwright-core.
//
// A real devnet: `plexus devnet up --validators 1 --providers 2` (3 node
// processes, both providers staked and registered on chain), then node0 — the
// validator, which is also the requester — is restarted with the gateway
// role (`--http 127.0.0.1:0`) and starts mining uPoW.  The page is opened
// from that gateway and checked against the same node's JSON API:
//  - the static files: content types, ETag / 304, no-cache, HEAD, 405 and
//    404 for anything not in the embedded table (path traversal included);
//  - no console error, page error or failed request during the whole run
//    (the page loads nothing from any other host: the CSP forbids it);
//  - the live height shown increases, the feed follows the chain, a block
//    clicked in the feed shows the chain's hash for it;
//  - a job submitted during the test with `plexus job submit infer` shows up
//    on the overview and in the jobs view, settles, and its page lists every
//    provider the node paid with the amounts /jobs/{id} reports (paid > 0);
//    its transaction is found by hash and links to its block;
//  - a provider looked up in the accounts view shows its on-chain balance;
//  - the providers table shows each provider's price, stake and reputation;
//  - the uPoW view charts each published epoch's accuracy and, once node0's
//    mining publishes a solution, ranks node0 on the leaderboard;
//  - on a phone-sized viewport nothing overflows sideways.
// Screenshots go to $PLEXUS_ARTIFACTS (default build/artifacts):
// explorer.png (overview), explorer-job.png, explorer-upow.png,
// explorer-phone.png.
//
// PLEXUS_BIN: the plexus binary (default build/bin/plexus); CHROMIUM: the
// browser (default /usr/bin/chromium).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '..', '..');
const BIN = process.env.PLEXUS_BIN || join(ROOT, 'build', 'bin', 'plexus');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ART = process.env.PLEXUS_ARTIFACTS || join(ROOT, 'build', 'artifacts');

const fmt = (n) => n.toLocaleString('en-US');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let dir, net, node0, gw, base, browser, page, job, nodeId;
const problems = []; // console errors, page errors, failed requests

function plexus(...args) {
  return execFileSync(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 }).toString();
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function until(what, fn, ms = 30000, every = 250) {
  const t0 = Date.now();
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
    await sleep(every);
  }
}

async function getJSON(path) {
  const r = await fetch(base + path);
  assert.equal(r.status, 200, `${path}: HTTP ${r.status}`);
  return r.json();
}

// A raw request: the path exactly as given (fetch would normalise "..").
function raw(method, path, headers = {}) {
  const u = new URL(base);
  return new Promise((res, rej) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', rej);
    req.end();
  });
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-deps (Debian's chromium)`);
  mkdirSync(ART, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'plexus-explorer-'));
  net = join(dir, 'net');
  node0 = join(net, 'node0');
  // the job's model and input: a small MLP trained for one pass over 64
  // Fashion-MNIST images, and 64 seeded samples of 784 floats
  plexus('train', '--model', 'mlp', '--data', 'fashion-mnist', '--epochs', '1', '--limit', '64',
         '--out', join(dir, 'mlp.safetensors'));
  const x = Buffer.alloc(64 * 784 * 4);
  let s = 20261123;
  for (let i = 0; i < 64 * 784; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x.writeFloatLE((s >>> 8) / 16777216, 4 * i);
  }
  writeFileSync(join(dir, 'input.f32'), x);
  plexus('devnet', 'up', '--validators', '1', '--providers', '2', '--home', net);
  // node0 again, with the gateway role on a port of its choosing
  const pid = Number(readFileSync(join(node0, 'node.pid'), 'utf8'));
  plexus('stop', '--home', node0);
  await until('node0 to stop', () => !alive(pid), 15000, 100);
  gw = spawn(BIN, ['node', '--home', node0, '--http', '127.0.0.1:0'],
             { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
  let log = '';
  base = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`the gateway did not start:\n${log}`)), 30000);
    gw.stderr.on('data', (d) => {
      log = (log + d).slice(-20000);
      const m = log.match(/HTTP API on (http:\/\/[0-9.]+:[0-9]+)/);
      if (m) { clearTimeout(timer); res(m[1]); }
    });
    gw.on('exit', (c) => rej(new Error(`plexus node exited ${c}:\n${log}`)));
  });
  nodeId = (await getJSON('/health')).node_id;
  plexus('mine', '--home', node0);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // a poll cut short by a navigation is not a failure of the page
    if (r.failure() && r.failure().errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${r.url()} ${r.failure().errorText}`);
  });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (gw && gw.exitCode === null) {
    gw.kill('SIGTERM');
    await until('the gateway to stop', () => gw.exitCode !== null, 10000, 100).catch(() => gw.kill('SIGKILL'));
  }
  if (net) { try { plexus('devnet', 'down', '--home', net); } catch { /* already down */ } }
  if (dir && !process.env.PX_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
});

test('static files: types, ETag, no traversal', async () => {
  const idx = await raw('GET', '/');
  assert.equal(idx.status, 200);
  assert.match(idx.headers['content-type'], /^text\/html; charset=utf-8/);
  assert.match(idx.headers['cache-control'], /no-cache/);
  assert.match(idx.headers['content-security-policy'], /default-src 'none'/);
  assert.match(idx.body, /<title>Plexus explorer<\/title>/);
  const etag = idx.headers.etag;
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  assert.equal((await raw('GET', '/', { 'If-None-Match': etag })).status, 304);
  assert.equal((await raw('GET', '/index.html', { 'If-None-Match': '"0000000000000000"' })).status, 200);
  for (const [p, t] of [['/app.js', /^text\/javascript/], ['/style.css', /^text\/css/], ['/favicon.svg', /^image\/svg\+xml/]]) {
    const r = await raw('GET', p);
    assert.equal(r.status, 200, p);
    assert.match(r.headers['content-type'], t, p);
  }
  const head = await raw('HEAD', '/app.js');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal((await raw('POST', '/')).status, 405);
  for (const p of ['/../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '//etc/passwd', '/web/app.js', '/app.js/',
                   '/./app.js', '/..%2fapp.js', '/nothing.html', '/jobs/xyz']) {
    const r = await raw('GET', p);
    assert.equal(r.status, 404, p);
    assert.match(r.body, /"code":"unknown_route"/, p);
  }
  assert.equal((await raw('GET', '/jobs?bogus=1')).status, 400);
  assert.equal((await raw('GET', '/upow/epochs?limit=0')).status, 400);
});

test('overview: live height, block feed, click through to a block', async () => {
  await page.goto(base + '/');
  const shown = async () => Number((await page.textContent('#ov-height')).replace(/,/g, '')) || 0;
  const h1 = await until('a height on the page', shown, 15000);
  const st = await getJSON('/chain/status');
  assert.ok(Math.abs(st.chain.height - h1) < 50, `page ${h1} vs node ${st.chain.height}`);
  const h2 = await until('the height to increase', async () => { const h = await shown(); return h > h1 ? h : 0; }, 20000);
  assert.ok(h2 > h1);
  assert.equal(await page.textContent('#ov-validators'), '1');
  await until('2 providers on the overview', async () => (await page.textContent('#ov-providers')) === '2', 15000);
  assert.match(await page.textContent('#live'), /live · height/);
  // the feed: newest first, consecutive heights
  const feed = await page.$$eval('#ov-blocks tbody tr td:first-child', (tds) => tds.map((t) => Number(t.textContent.replace(/,/g, ''))));
  assert.ok(feed.length >= 2, `feed ${feed}`);
  for (let i = 1; i < feed.length; i++) assert.equal(feed[i], feed[i - 1] - 1);
  const hb = feed[1];
  await page.click(`#ov-blocks tbody tr:nth-child(2) a[href="#/block/${hb}"]`);
  await page.waitForSelector('#view-block:not([hidden])');
  const blk = await getJSON(`/chain/blocks/${hb}`);
  await until('the block page', async () => (await page.textContent('#block-kv')).includes(blk.hash), 10000);
  assert.equal(await page.textContent('#block-title'), `Block ${fmt(hb)}`);
  // the blocks view pages back through the chain
  await page.click('#nav a[data-view="blocks"]');
  await until('a page of blocks', async () => (await page.$$('#blocks-table tbody tr')).length === Math.min(20, h2), 10000);
  const top = Number((await page.textContent('#blocks-table tbody tr:first-child td:first-child')).replace(/,/g, ''));
  if (top > 20) {
    await page.click('#blocks-older');
    await until('the older page', async () => Number((await page.textContent('#blocks-table tbody tr:first-child td:first-child')).replace(/,/g, '')) === top - 20, 10000);
    await page.click('#blocks-newer');
    await until('back to the newest', async () => !(await page.isEnabled('#blocks-newer')), 10000);
  } else {
    assert.equal(await page.isEnabled('#blocks-older'), false);
  }
});

test('a job submitted now appears with its providers and payments', async () => {
  const out = plexus('job', 'submit', 'infer', '--home', node0, '--model', join(dir, 'mlp.safetensors'),
                     '--input', join(dir, 'input.f32'), '--policy', 'audit:0.5', '--max-price', '1',
                     '--shard-size', '16', '--json');
  job = JSON.parse(out);
  assert.equal(job.ok, true);
  assert.match(job.job, /^[0-9a-f]{64}$/);
  await page.goto(base + '/#/');
  await page.waitForSelector(`#ov-jobs tr[data-job="${job.job}"]`, { timeout: 20000 });
  await page.click('#nav a[data-view="jobs"]');
  const row = `#jobs-table tr[data-job="${job.job}"]`;
  await page.waitForSelector(row, { timeout: 10000 });
  await until('the job to settle on the page', async () => (await page.textContent(row)).includes('settled'), 60000, 500);
  const st = await getJSON(`/jobs/${job.job}`);
  assert.equal(st.state, 'settled');
  assert.ok(st.paid > 0);
  assert.ok(st.per_provider.length >= 1);
  const rowText = await page.textContent(row);
  assert.ok(rowText.includes(fmt(st.paid)), `${rowText} lacks paid ${st.paid}`);
  for (const p of st.per_provider) assert.ok(rowText.includes(p.id.slice(0, 8)), `${rowText} lacks provider ${p.id}`);
  // the job's page: every provider the node paid, with the amount
  await page.click(`${row} a[href="#/job/${job.job}"]`);
  await page.waitForSelector('#view-job:not([hidden])');
  let sum = 0;
  for (const p of st.per_provider) {
    assert.ok(p.paid > 0);
    sum += p.paid;
    const pr = `#job-pay tr[data-provider="${p.id}"]`;
    await page.waitForSelector(pr, { timeout: 10000 });
    const cells = await page.$$eval(`${pr} td`, (tds) => tds.map((t) => t.textContent));
    assert.deepEqual(cells.slice(1), [fmt(p.shards), fmt(p.audits), fmt(p.paid)]);
  }
  assert.equal(sum, st.paid);
  assert.match(await page.textContent('#job-kv'), /settled/);
  const events = await page.$$eval('#job-events li', (li) => li.map((l) => l.textContent));
  assert.deepEqual(events, st.events);
  const audits = st.events.filter((e) => /audited by|dispute shard|equivocated|was caught|re-checked/.test(e));
  const shownAudits = await page.$$eval('#job-audits li', (li) => li.map((l) => l.textContent));
  if (audits.length) {
    assert.equal(shownAudits.length, audits.length);
    audits.forEach((a, i) => assert.ok(shownAudits[i].endsWith(a), `${shownAudits[i]} vs ${a}`));
  } else assert.deepEqual(shownAudits, ['no audits yet']);
  await page.screenshot({ path: join(ART, 'explorer-job.png'), fullPage: true });
  // the job's opening transaction, by hash, links to its block
  await page.goto(`${base}/#/tx/${job.tx}`);
  const tx = await getJSON(`/chain/tx/${job.tx}`);
  assert.equal(tx.status, 'committed');
  await until('the transaction page', async () => (await page.textContent('#tx-kv')).includes('committed'), 10000);
  await page.click(`#tx-kv a[href="#/block/${tx.height}"]`);
  await until('its block listing it', async () => (await page.$(`#block-txs a[href="#/tx/${job.tx}"]`)) !== null, 10000);
});

test('providers and accounts', async () => {
  const pr = await getJSON('/providers');
  await page.goto(base + '/#/providers');
  for (const p of pr.providers) {
    const sel = `#prov-table tr[data-provider="${p.id}"]`;
    await page.waitForSelector(sel, { timeout: 10000 });
    const cells = await page.$$eval(`${sel} td`, (tds) => tds.map((t) => t.textContent));
    assert.equal(cells[1], fmt(p.price));
    assert.equal(cells[3], fmt(p.stake));
    assert.equal(cells[4], `${(p.reputation / 100).toFixed(1)}%`);
  }
  const id = pr.providers[0].id;
  await page.click('#nav a[data-view="accounts"]');
  await page.fill('#acct-input', id);
  await page.click('#acct-form button');
  const acct = await getJSON(`/chain/accounts/${id}`);
  await until('the account', async () => (await page.textContent('#acct-kv')).includes(id), 10000);
  const kvText = await page.textContent('#acct-kv');
  // the balance moves while the provider earns: the page shows one the
  // node reported at or after the request above
  const bal = Number(kvText.match(/Balance([0-9,]+)/)[1].replace(/,/g, ''));
  assert.ok(bal >= acct.account.balance, `${bal} < ${acct.account.balance}`);
  assert.ok(kvText.includes(`Stake${fmt(acct.account.stake)}`));
  await page.waitForSelector('#acct-provider dl', { timeout: 10000 });
});

test('uPoW: accuracy chart and leaderboard', async () => {
  // node0 mines from the start of the run; wait for a published solution
  const ep = await until('an epoch with a mined solution', async () => {
    const e = await getJSON('/upow/epochs?limit=100');
    return e.epochs.some((x) => x.solutions > 0 && x.winner === nodeId) ? e : null;
  }, 60000, 1000);
  await page.goto(base + '/#/upow');
  await page.waitForSelector('#up-chart svg circle', { timeout: 15000 });
  const dots = await page.$$eval('#up-chart svg circle', (c) => c.length);
  assert.ok(dots >= Math.min(ep.epochs.length, 2), `${dots} points`);
  await page.waitForSelector('#up-chart svg circle.won', { timeout: 10000 });
  const titles = await page.$$eval('#up-chart svg circle.won title', (t) => t.map((x) => x.textContent));
  const won = ep.epochs.find((x) => x.solutions > 0);
  const acc = `${((won.score / ep.eval_n) * 100).toFixed(2)}%`;
  assert.ok(titles.some((t) => t.startsWith(`epoch ${won.epoch}: ${acc}`)), `${titles[0]} vs ${acc}`);
  await until('node0 on the leaderboard', async () => (await page.$(`#up-board a[href="#/account/${nodeId}"]`)) !== null, 10000);
  await page.screenshot({ path: join(ART, 'explorer-upow.png'), fullPage: true });
});

test('overview screenshot, phone layout, no errors', async () => {
  await page.goto(base + '/#/');
  await page.waitForSelector(`#ov-jobs tr[data-job="${job.job}"]`, { timeout: 10000 });
  await sleep(1500); // a few live updates
  await page.screenshot({ path: join(ART, 'explorer.png'), fullPage: true });
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  phone.on('console', (m) => { if (m.type() === 'error') problems.push(`phone console: ${m.text()}`); });
  phone.on('pageerror', (e) => problems.push(`phone page error: ${e.message}`));
  await phone.goto(base + '/#/');
  await phone.waitForSelector('#ov-blocks tbody tr', { timeout: 10000 });
  await phone.waitForSelector(`#ov-jobs tr[data-job="${job.job}"]`, { timeout: 10000 });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await phone.screenshot({ path: join(ART, 'explorer-phone.png'), fullPage: true });
  await phone.close();
  assert.deepEqual(problems, []);
});
