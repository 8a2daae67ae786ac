// openai.test.mjs — the official `openai` npm client against `plexus serve`.
//
// Writes a small seeded llama2.c model and tokenizer, makes an API key with
// `plexus gateway key new`, starts `plexus serve` on a free port, and drives
// it with the OpenAI SDK exactly as an application would: list the models,
// get a completion, get a chat completion streamed and not streamed with
// the same seed (they must agree token for token), and see the SDK raise
// its typed errors for a wrong key and an unknown model.
//
// PLEXUS_BIN names the binary (scripts/check sets it; default build/bin).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.PLEXUS_BIN || join(here, '..', '..', 'build', 'bin', 'plexus');

// ---- the model: llama2.c version 0, separate classifier -------------------
const D = 48, HID = 128, L = 2, NH = 4, HS = D / NH, SEQ = 512;
const WORDS = ['th', 'he', 'the', ' the', 'an', 'and', ' and', 'in', 'ing', ' a'];
const V = 259 + 95 + WORDS.length;

function rng(seed) { // xorshift32, deterministic
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
  for (let k = 0; k < 4; k++) parts.push(floats(L * D * D, 0.3, 0)); // wq wk wv wo
  parts.push(floats(L * D, 0.2, 1), floats(L * HID * D, 0.3, 0),
             floats(L * D * HID, 0.2, 0), floats(L * HID * D, 0.3, 0),
             floats(D, 0.2, 1), Buffer.alloc(4 * SEQ * HS));
  for (let t = 0; t < V; t++) // BOS and byte tokens never win at temperature 0
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

// ---- the server -----------------------------------------------------------
let dir, server, client, key;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'plexus-openai-'));
  const model = join(dir, 'tiny.bin');
  writeModel(model);
  writeTokenizer(join(dir, 'tokenizer.bin'));
  const home = join(dir, 'home');
  execFileSync(BIN, ['wallet', 'new', '--home', home], { stdio: 'ignore' });
  key = execFileSync(BIN, ['gateway', 'key', 'new', '--home', home],
                     { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  assert.match(key, /^pxk-[0-9a-f]{64}$/);
  server = spawn(BIN, ['serve', '--model', model, '--name', 'tiny', '--http',
                       '127.0.0.1:0', '--home', home],
                 { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('plexus serve did not start')), 30000);
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    server.on('exit', (c) => reject(new Error(`plexus serve exited ${c}`)));
  });
  client = new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 });
});

after(() => {
  if (server) server.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('lists the model', async () => {
  const list = await client.models.list();
  const ids = [];
  for await (const m of list) ids.push(m.id);
  assert.deepEqual(ids, ['tiny']);
});

test('completion with usage', async () => {
  const c = await client.completions.create({
    model: 'tiny', prompt: 'the tale and', max_tokens: 20, temperature: 0.8, seed: 5,
  });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.choices.length, 1);
  assert.ok(c.choices[0].text.length > 0);
  assert.equal(c.usage.completion_tokens, 20);
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + 20);
  assert.equal(c.choices[0].finish_reason, 'length');
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
  assert.equal(whole.choices[0].message.role, 'assistant');
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
  // a different seed gives a different sample
  const other = await client.chat.completions.create({ ...req, seed: 99 });
  assert.notEqual(other.choices[0].message.content, text);
});

test('typed errors: wrong key, unknown model, unsupported field', async () => {
  const bad = new OpenAI({ apiKey: 'pxk-wrong', baseURL: client.baseURL, maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError &&
                                                 e.status === 401);
  await assert.rejects(
    client.completions.create({ model: 'gpt-nope', prompt: 'x' }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(
    client.completions.create({ model: 'tiny', prompt: 'x', logprobs: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && /logprobs/.test(e.message));
});
