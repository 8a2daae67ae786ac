// openai_net.test.mjs — the official `openai` npm client against a devnet
// gateway: the requests run as inference sessions on market providers
// (issue 7; docs/api.md "Network inference").
//
// Starts `plexus devnet up --validators 1 --providers 2 --nodes 4` (node0
// validates, node2 and node3 are registered providers), turns node1 into
// the gateway (`plexus model add` with a small seeded model, `plexus
// gateway key new`, then `plexus node --http`), and drives it with the SDK:
// list the models, get a completion with usage, a streamed chat completion
// equal token for token to the non-streamed one with the same seed (and to
// a local `plexus serve` of the same files), and the SDK's typed errors.
//
// PLEXUS_BIN names the binary (scripts/check sets it; default build/bin).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.PLEXUS_BIN || join(here, '..', '..', 'build', 'bin', 'plexus');

// ---- the model: llama2.c version 0, separate classifier (as openai.test) --
const D = 48, HID = 128, L = 2, NH = 4, HS = D / NH, SEQ = 512;
const WORDS = ['th', 'he', 'the', ' the', 'an', 'and', ' and', 'in', 'ing', ' a'];
const V = 259 + 95 + WORDS.length;

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

function writeModel(path) {
  const r = rng(4242);
  const parts = [];
  const hdr = Buffer.alloc(28);
  [D, HID, L, NH, NH, -V, SEQ].forEach((v, i) => hdr.writeInt32LE(v, 4 * i));
  parts.push(hdr);
  const floats = (n, scale, base) => {
    const b = Buffer.alloc(4 * n);
    for (let i = 0; i < n; i++) b.writeFloatLE(base + (r() * 2 - 1) * scale, 4 * i);
    return b;
  };
  parts.push(floats(V * D, 1, 0), floats(L * D, 0.2, 1));
  for (let k = 0; k < 4; k++) parts.push(floats(L * D * D, 0.3, 0));
  parts.push(floats(L * D, 0.2, 1), floats(L * HID * D, 0.3, 0),
             floats(L * D * HID, 0.2, 0), floats(L * HID * D, 0.3, 0),
             floats(D, 0.2, 1), Buffer.alloc(4 * SEQ * HS));
  for (let t = 0; t < V; t++)
    parts.push(t === 1 || (t >= 3 && t < 259) ? Buffer.alloc(4 * D) : floats(D, 1, 0));
  writeFileSync(path, Buffer.concat(parts));
}

function writeTokenizer(path) {
  const parts = [];
  const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32LE(v); return b; };
  const tok = (score, s) => {
    const bytes = Buffer.from(s, 'latin1');
    const b = Buffer.alloc(8);
    b.writeFloatLE(score, 0);
    b.writeInt32LE(bytes.length, 4);
    parts.push(b, bytes);
  };
  parts.push(i32(16));
  tok(0, '<unk>'); tok(0, '\n<s>\n'); tok(0, '\n</s>\n');
  for (let b = 0; b < 256; b++) tok(0, `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let c = 0x20; c < 0x7f; c++) tok(-1, String.fromCharCode(c));
  WORDS.forEach((w, i) => tok(i, w));
  writeFileSync(path, Buffer.concat(parts));
}

// ---- processes ------------------------------------------------------------
const plexus = (args, timeout = 60000) =>
  execFileSync(BIN, args, { timeout, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  s.on('error', reject);
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, ms) {
  const t0 = Date.now();
  for (;;) {
    try { if (await fn()) return; } catch { /* not yet */ }
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

let dir, net, gw, serve, client, local, key;

function pidOf(home) {
  const p = join(home, 'node.pid');
  return existsSync(p) ? Number(readFileSync(p, 'utf8').trim()) : 0;
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'plexus-openai-net-'));
  const model = join(dir, 'tiny.bin'), tokenizer = join(dir, 'tokenizer.bin');
  writeModel(model);
  writeTokenizer(tokenizer);
  net = join(dir, 'net');
  plexus(['devnet', 'up', '--validators', '1', '--providers', '2', '--nodes', '4',
          '--home', net], 240000);
  const home = join(net, 'node1');
  // node1 becomes the gateway
  const pid = pidOf(home);
  process.kill(pid, 'SIGTERM');
  await waitFor('node1 to stop', () => !alive(pid), 20000);
  plexus(['model', 'add', '--home', home, '--name', 'tiny', '--model', model,
          '--tokenizer', tokenizer]);
  key = plexus(['gateway', 'key', 'new', '--home', home]).trim();
  assert.match(key, /^pxk-[0-9a-f]{64}$/);
  const port = await freePort();
  const gwLog = openSync(join(home, 'gateway.log'), 'a');
  gw = spawn(BIN, ['node', '--home', home, '--http', `127.0.0.1:${port}`],
             { stdio: ['ignore', gwLog, gwLog] });
  client = new OpenAI({ apiKey: key, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
  await waitFor('the gateway', async () => {
    const st = JSON.parse(plexus(['status', '--home', home, '--json'], 5000));
    return st.peer_count >= 3 && (await client.models.list()).data.length === 1;
  }, 60000);
  // the reference: a local server of the same files
  serve = spawn(BIN, ['serve', '--model', model, '--name', 'tiny', '--http', '127.0.0.1:0'],
                { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('plexus serve did not start')), 30000);
    serve.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  local = new OpenAI({ apiKey: 'none', baseURL: `${url}/v1`, maxRetries: 0 });
});

after(async () => {
  if (gw) gw.kill('SIGTERM');
  if (serve) serve.kill('SIGTERM');
  if (net) {
    try { plexus(['devnet', 'down', '--home', net], 30000); } catch { /* already down */ }
    for (let i = 0; i < 4; i++) {
      const pid = pidOf(join(net, `node${i}`));
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    }
  }
  if (gw) await new Promise((r) => (gw.exitCode !== null ? r() : gw.on('exit', r)));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('lists the registered model', async () => {
  const ids = [];
  for await (const m of await client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['tiny']);
});

test('completion served by a provider, with usage', async () => {
  const req = { model: 'tiny', prompt: 'the tale and', max_tokens: 20, temperature: 0.8, seed: 5 };
  const c = await client.completions.create(req);
  assert.equal(c.object, 'text_completion');
  assert.ok(c.choices[0].text.length > 0);
  assert.equal(c.usage.completion_tokens, 20);
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + 20);
  assert.equal(c.choices[0].finish_reason, 'length');
  const ref = await local.completions.create(req);
  assert.equal(c.choices[0].text, ref.choices[0].text);
});

test('streamed and non-streamed chat agree for a seed', async () => {
  const req = {
    model: 'tiny',
    messages: [{ role: 'system', content: 'be brief' },
               { role: 'user', content: 'tell the tale' }],
    max_tokens: 40, temperature: 1.0, top_p: 0.9, seed: 1234,
  };
  const whole = await client.chat.completions.create(req);
  assert.equal(whole.object, 'chat.completion');
  const stream = await client.chat.completions.create({
    ...req, stream: true, stream_options: { include_usage: true },
  });
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    const ch = chunk.choices[0];
    if (!ch) continue;
    chunks++;
    text += ch.delta.content ?? '';
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.ok(chunks > 2);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual(usage, whole.usage);
  const ref = await local.chat.completions.create(req);
  assert.equal(text, ref.choices[0].message.content);
});

test('typed errors: wrong key, unknown model, unsupported field', async () => {
  const bad = new OpenAI({ apiKey: 'pxk-wrong', baseURL: client.baseURL, maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  await assert.rejects(
    client.completions.create({ model: 'gpt-nope', prompt: 'x' }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(
    client.completions.create({ model: 'tiny', prompt: 'x', logprobs: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && /logprobs/.test(e.message));
});
