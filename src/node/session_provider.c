/*
 * session_provider.c — the provider side of inference sessions
 * (node/session_rt.h has the messages and the payment rule; docs/market.md
 * "Sessions").
 *
 * A gateway OPENs a session (method 25).  The provider answers at once:
 * it refuses unless it is an active registered provider, the channel is
 * open on ITS OWN chain state with itself as provider and enough deposit
 * left for the prompt and one token (else UNKNOWN_CHANNEL / NO_CREDIT, so
 * the gateway retries after the next block), the offered price per token
 * is at least its own (px_ses_price_per_token; checked at OPEN when the
 * model's config is known, else before generating), and one of its
 * registered slots is free (the slots are shared with shard leases:
 * px_prov_slot_take).  An accepted session then moves through
 *
 *   FETCH (model blob by root from the gateway, px_fetch, unless stored;
 *          one fetch per model, other sessions WAIT for it)
 *     -> STEP (a px_prov_job_t on the provider's worker threads: load the
 *          model — an idle px_llama_t of that root is reused — then
 *          px_session_gen_init teacher-forces the tokens of OPEN, then up
 *          to `allow` tokens are sampled one px_session_gen_next at a time,
 *          checking the cancel flag between tokens and returning after
 *          STEP_MS so the tokens reach the gateway while it works)
 *     -> loop thread: TOKENS (DIRECT topic 21) with the new tokens, cost
 *          booked on the channel, next STEP, or PAUSED (credit), or DONE
 *          (DIRECT topic 22, finish + signed px_session_commit_t).
 *
 * Credit: a step may produce only what the channel's unpaid amount (cost
 * delivered - best receipt) leaves under price x (prompt + credit window);
 * a RECEIPT (method 27, verified against the channel's payer on chain)
 * raises the paid amount and resumes paused sessions.  Nothing is ever
 * delivered past the channel's deposit (DONE finish CREDIT).  The gateway
 * pays for what its client was given, so what a session ran ahead of the
 * receipts (at most the credit window) is written off when it ends rather
 * than shrinking the credit of the channel's later sessions.  The best
 * receipt per channel is written atomically to
 * HOME/session-receipts/<hex channel id> before it is acknowledged, and
 * claimed on chain with CHANNEL_CLAIM when the claimable amount reaches a
 * quarter of the deposit, when the channel has been idle IDLE_CLAIM_MS,
 * or when it nears expiry (a claim that does not land is resent after
 * CLAIM_RETRY_BLOCKS).
 *
 * REPLAY (audits): px_session_replay_ex over the full sequence in one
 * step; DONE carries a REPLAY commitment of the sequence this provider
 * samples while teacher-forced (plexus/session.h): the audited tokens up
 * to the first mismatch, then its own token there (none when that is BOS),
 * nothing after; with no mismatch the audited sequence itself.  So its
 * tokens_hash differs exactly when the audited provider's does not hold
 * up.  A GENERATE commitment states n_forced = the tokens OPEN carried
 * beyond the prompt (a resumed session): this provider vouches only for
 * the tokens it sampled.
 *
 * CANCEL (method 26) stops a session within one token; no DONE follows.
 * A gateway that disconnects cancels its sessions.
 *
 * TEST ONLY faults (market.fault): stall — after 3 generated tokens the
 * session sends nothing more and stays open; perturb — the 3rd generated
 * token is replaced by another one (the commitment covers the changed
 * sequence, so an audit catches it); vanish — the process exits after 3
 * generated tokens.
 *
 * Threads: the loop thread owns every session; a worker touches a session
 * only between px_prov_run and the job's done callback (the provider's
 * mutex orders the two).  Sessions are freed only on the loop thread and
 * never while their job is queued or running.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plexus/codec.h"
#include "plexus/json.h"
#include "plexus/model.h"
#include "plexus/session.h"
#include "plexus/session_chain.h"
#include "node/session_rt.h"
#include "base/px_internal.h"

#define LOGMOD "session"
#define MAX_MODEL_BYTES (1ull << 30)
#define FETCH_TIMEOUT_MS 10000
#define STEP_MS 20                /* a step returns after this (tokens flow) */
#define STEP_MAX_TOKENS 64        /* ... or this many tokens */
#define PAUSE_TIMEOUT_MS 30000    /* paused for credit this long: dropped */
#define STALL_KEEP_MS 120000      /* TEST ONLY stall: held this long */
#define IDLE_CLAIM_MS 2000        /* channel idle this long: claim */
#define CLAIM_RETRY_BLOCKS 10     /* a claim not landed: resend */
#define CLAIM_BACKOFF_MS 1000     /* between two submission attempts */
#define EXPIRY_MARGIN 3           /* blocks before expiry we stop serving */
#define LCACHE_MAX 4              /* idle px_llama_t kept */
#define CFG_CACHE 16              /* model configs remembered */
#define FAULT_TOKENS 3            /* stall / vanish / perturb point */
#define RECEIPT_MAGIC 0x43525850u /* "PXRC" */
#define RECEIPT_LEN (4 + 1 + 32 + 32 + 8 + 64 + 8)

typedef enum {
  F_NONE = 0,
  F_STALL,
  F_PERTURB,
  F_VANISH,
} sfault_t;

typedef enum {
  S_FETCH = 0, /* model blob not here: fetch it (or wait for a fetch) */
  S_WAIT,      /* another session fetches the same model */
  S_READY,     /* blob here, next step to schedule */
  S_RUNNING,   /* job queued or on a worker */
  S_PAUSED,    /* credit used up: waits for a RECEIPT */
  S_STALLED,   /* TEST ONLY stall */
} sstate_t;

static const char *const k_state_names[] = {"fetch",   "wait",   "ready",
                                            "running", "paused", "stalled"};

typedef struct chan {
  struct chan *next;
  uint8_t id[32];
  px_session_channel_t rec; /* last read from chain */
  int known;                /* rec valid */
  uint64_t owed;            /* cost delivered (this run; >= paid at load) */
  uint64_t paid;            /* best receipt's cumulative */
  uint8_t sig[PX_SIG_LEN];  /* its signature */
  uint64_t claim_sent;      /* cumulative of the last CHANNEL_CLAIM sent */
  uint64_t claim_height;
  uint64_t claim_try_ms; /* last submission attempt (backoff) */
  uint32_t active;       /* sessions on it */
  uint64_t idle_since;
  uint64_t receipts;
} chan_t;

typedef struct ses {
  px_prov_job_t job; /* first: the job is the session */
  struct ses *next;
  px_sesprov_t *sp;
  uint8_t gateway[PX_PK_LEN];
  px_ses_open_t open; /* owns its tokens */
  chan_t *ch;
  sstate_t state;
  uint64_t since;      /* entered this state (ms) */
  uint64_t ppt;        /* price per token charged: the OPEN's */
  uint64_t prov_price; /* our price per work unit at OPEN */
  int32_t *seq;        /* the sequence: OPEN's tokens + generated */
  uint32_t n, cap;
  uint32_t sent;      /* seq[0..sent) are known to the gateway */
  uint32_t generated; /* tokens this provider sampled */
  int charged;        /* the OPEN tokens were booked on the channel */
  uint64_t cost;      /* what this session booked */
  char model_path[4400];
  px_fetch_t *fetch;
  sfault_t fault;
  /* worker side (between px_prov_run and done) */
  px_llama_t *llama;
  px_session_gen_t gen;
  int gen_ready;
  uint32_t allow;
  atomic_int cancelled;
  int step_rc;
  int finish; /* px_ses_finish_t, -1 while running */
  char why[PX_SES_REASON_MAX];
  uint64_t ppt_min; /* set by the worker when the price is too low */
  int mark;         /* loop: picked for a resume pass */
} ses_t;

typedef struct {
  uint8_t root[32];
  px_llama_t *m;
  uint64_t stamp;
} lslot_t;

typedef struct {
  uint8_t root[32];
  px_llama2c_config_t cfg;
  int used;
} cfgslot_t;

struct px_sesprov {
  px_market_t *m;
  sfault_t fault;
  uint32_t credit;
  char dir[4400]; /* HOME/session-receipts */
  ses_t *sessions;
  uint32_t n_sessions;
  chan_t *chans;
  lslot_t lcache[LCACHE_MAX];
  cfgslot_t cfgs[CFG_CACHE];
  uint32_t cfg_next;
  uint64_t stamp;
  int closing;
  /* counters */
  uint64_t accepted, refused, finished, cancelled, failed, tokens_served,
      receipts, claims;
};

static uint64_t now_ms(px_sesprov_t *sp) { return uv_now(sp->m->env.loop); }

static void hex8(const uint8_t *b, char out[17]) { px_hex_encode(b, 8, out); }

static uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b) {
  unsigned __int128 v = (unsigned __int128)a * b;
  return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

/* ---- model configs and instances (loop thread) --------------------------- */

static const px_llama2c_config_t *cfg_get(px_sesprov_t *sp,
                                          const uint8_t root[32]) {
  for (int i = 0; i < CFG_CACHE; i++)
    if (sp->cfgs[i].used && !memcmp(sp->cfgs[i].root, root, 32))
      return &sp->cfgs[i].cfg;
  return NULL;
}

static void cfg_put(px_sesprov_t *sp, const uint8_t root[32],
                    const px_llama2c_config_t *cfg) {
  if (cfg_get(sp, root)) return;
  cfgslot_t *c = &sp->cfgs[sp->cfg_next++ % CFG_CACHE];
  memcpy(c->root, root, 32);
  c->cfg = *cfg;
  c->used = 1;
}

static px_llama_t *lcache_take(px_sesprov_t *sp, const uint8_t root[32]) {
  for (int i = 0; i < LCACHE_MAX; i++) {
    lslot_t *l = &sp->lcache[i];
    if (l->m && !memcmp(l->root, root, 32)) {
      px_llama_t *m = l->m;
      l->m = NULL;
      return m;
    }
  }
  return NULL;
}

static void lcache_put(px_sesprov_t *sp, const uint8_t root[32],
                       px_llama_t *m) {
  lslot_t *v = &sp->lcache[0];
  for (int i = 0; i < LCACHE_MAX; i++) {
    if (!sp->lcache[i].m) {
      v = &sp->lcache[i];
      break;
    }
    if (sp->lcache[i].stamp < v->stamp) v = &sp->lcache[i];
  }
  px_llama_free(v->m);
  memcpy(v->root, root, 32);
  v->m = m;
  v->stamp = ++sp->stamp;
}

/* ---- channels and receipts ------------------------------------------------
 */

static chan_t *chan_find(px_sesprov_t *sp, const uint8_t id[32]) {
  for (chan_t *c = sp->chans; c; c = c->next)
    if (!memcmp(c->id, id, 32)) return c;
  return NULL;
}

static chan_t *chan_get(px_sesprov_t *sp, const uint8_t id[32]) {
  chan_t *c = chan_find(sp, id);
  if (c) return c;
  c = px_calloc(1, sizeof *c);
  if (!c) return NULL;
  memcpy(c->id, id, 32);
  c->idle_since = now_ms(sp);
  c->next = sp->chans;
  sp->chans = c;
  return c;
}

/* Re-read the channel record from a state. */
static void chan_refresh(px_sesprov_t *sp, chan_t *c,
                         const px_ledger_state_t *s) {
  (void)sp;
  px_session_channel_t r;
  if (s && px_session_chain_channel(s, c->id, &r) == 0) {
    c->rec = r;
    c->known = 1;
  }
}

static void receipt_path(px_sesprov_t *sp, const uint8_t id[32], char *out,
                         size_t cap) {
  char hex[65];
  px_hex_encode(id, 32, hex);
  snprintf(out, cap, "%s/%s", sp->dir, hex);
}

/* The best receipt of a channel, atomically: magic u32, u8 version,
 * channel_id, payer, u64 cumulative, sig, u64 claim_sent. */
static int receipt_save(px_sesprov_t *sp, const chan_t *c) {
  px_buf_t b;
  px_buf_init(&b, RECEIPT_LEN);
  px_writer_t w;
  px_writer_init(&w, &b);
  px_writer_u32(&w, RECEIPT_MAGIC);
  px_writer_u8(&w, 1);
  px_writer_fixed(&w, c->id, 32);
  px_writer_fixed(&w, c->rec.payer, PX_PK_LEN);
  px_writer_u64(&w, c->paid);
  px_writer_fixed(&w, c->sig, PX_SIG_LEN);
  px_writer_u64(&w, c->claim_sent);
  int rc = px_writer_finish(&w);
  char path[4600];
  receipt_path(sp, c->id, path, sizeof path);
  if (!rc) rc = px_file_write_atomic(path, b.data, b.len, 0600);
  px_buf_release(&b);
  if (rc)
    PX_LOGE(LOGMOD, "cannot write the receipt file %s: %s", path,
            px_strerror(rc));
  return rc;
}

/* Load HOME/session-receipts/ (each receipt checked against its payer). */
static void receipts_load(px_sesprov_t *sp) {
  DIR *d = opendir(sp->dir);
  if (!d) return;
  const px_ledger_state_t *s = px_chain_state(sp->m->env.chain);
  const char *chain_id = s ? px_ledger_chain_id(s) : "";
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    uint8_t id[32];
    if (strlen(e->d_name) != 64 || px_hex_decode(e->d_name, id, 32)) continue;
    char path[4600];
    receipt_path(sp, id, path, sizeof path);
    uint8_t *data = NULL;
    size_t len = 0;
    if (px_file_read_all(path, 4096, &data, &len)) continue;
    px_reader_t r;
    px_reader_init(&r, data, len);
    uint8_t fid[32], payer[PX_PK_LEN], sig[PX_SIG_LEN];
    if (px_reader_u32(&r) != RECEIPT_MAGIC || px_reader_u8(&r) != 1)
      px_reader_fail(&r, PX_EDECODE);
    px_reader_fixed(&r, fid, 32);
    px_reader_fixed(&r, payer, PX_PK_LEN);
    uint64_t cum = px_reader_u64(&r);
    px_reader_fixed(&r, sig, PX_SIG_LEN);
    uint64_t sent = px_reader_u64(&r);
    int rc = px_reader_finish(&r);
    px_free(data);
    if (!rc && memcmp(fid, id, 32)) rc = PX_EDECODE;
    if (!rc) rc = px_session_receipt_verify(payer, chain_id, id, cum, sig);
    if (rc) {
      PX_LOGW(LOGMOD, "ignoring the receipt file %s: %s", path,
              px_strerror(rc));
      continue;
    }
    chan_t *c = chan_get(sp, id);
    if (!c) break;
    memcpy(c->rec.payer, payer, PX_PK_LEN);
    c->paid = cum;
    c->owed = cum;
    memcpy(c->sig, sig, PX_SIG_LEN);
    c->claim_sent = sent;
    chan_refresh(sp, c, s);
  }
  closedir(d);
}

static void maybe_claim(px_sesprov_t *sp, chan_t *c, uint64_t height,
                        uint64_t now) {
  if (!c->known || c->rec.state != PX_CHANNEL_OPEN || c->paid == 0) return;
  uint64_t payable = PX_MIN(c->paid, c->rec.deposit);
  if (payable <= c->rec.claimed) return;
  uint64_t claimable = payable - c->rec.claimed;
  int pending = c->claim_sent >= c->paid && c->claim_sent > c->rec.claimed &&
                height < c->claim_height + CLAIM_RETRY_BLOCKS;
  if (pending) return;
  int idle = c->active == 0 && now >= c->idle_since + IDLE_CLAIM_MS;
  int near_expiry = height + 2 * EXPIRY_MARGIN >= c->rec.expiry_height;
  int big = sat_mul(claimable, 4) >= c->rec.deposit;
  if (!(idle || near_expiry || big)) return;
  if (c->claim_try_ms && now < c->claim_try_ms + CLAIM_BACKOFF_MS) return;
  c->claim_try_ms = now;
  px_session_claim_t cl;
  memcpy(cl.channel_id, c->id, 32);
  cl.cumulative = c->paid;
  memcpy(cl.payer_sig, c->sig, PX_SIG_LEN);
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_session_payload_claim(&b, &cl);
  uint8_t h[PX_HASH_LEN];
  if (!rc) rc = px_market_submit(sp->m, PX_TX_CHANNEL_CLAIM, b.data, b.len, h);
  px_buf_release(&b);
  char ch[17];
  hex8(c->id, ch);
  if (rc) {
    PX_LOGW(LOGMOD, "channel %s: CHANNEL_CLAIM of %llu not submitted: %s", ch,
            (unsigned long long)c->paid, px_strerror(rc));
    return;
  }
  c->claim_sent = c->paid;
  c->claim_height = height;
  sp->claims++;
  receipt_save(sp, c);
  PX_LOGI(LOGMOD, "channel %s: claiming cumulative %llu (%llu new)", ch,
          (unsigned long long)c->paid, (unsigned long long)claimable);
}

/* ---- sending --------------------------------------------------------------
 */

static void send_tokens(px_sesprov_t *sp, ses_t *s) {
  px_ses_tokens_t *t = px_malloc(sizeof *t);
  if (!t) return;
  px_buf_t b;
  px_buf_init(&b, 0);
  while (s->sent < s->n) {
    memcpy(t->session_id, s->open.session_id, 32);
    t->first = s->sent;
    t->n = PX_MIN(s->n - s->sent, PX_SES_TOKENS_MAX);
    memcpy(t->tokens, s->seq + s->sent, (size_t)t->n * sizeof(int32_t));
    px_buf_reset(&b);
    int rc = px_ses_tokens_encode(t, &b);
    if (!rc)
      rc = px_p2p_send(sp->m->env.p2p, s->gateway, PX_SES_TOPIC_TOKENS, b.data,
                       b.len);
    if (rc) {
      char id[17];
      hex8(s->open.session_id, id);
      PX_LOGW(LOGMOD, "session %s: cannot send tokens: %s", id,
              px_strerror(rc));
    }
    sp->tokens_served += t->n;
    s->sent += t->n;
  }
  px_buf_release(&b);
  px_free(t);
}

static void send_done(px_sesprov_t *sp, ses_t *s, uint8_t finish,
                      const char *why) {
  px_ses_done_t *d = px_calloc(1, sizeof *d);
  if (!d) return;
  memcpy(d->session_id, s->open.session_id, 32);
  d->finish = finish;
  d->cost = s->cost;
  int rc = 0;
  if (finish == PX_SES_FINISH_ERROR) {
    snprintf(d->message, sizeof d->message, "%s", why ? why : "failed");
    for (char *c = d->message; *c; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) *c = '?';
  } else {
    px_session_commit_t *c = &d->commit;
    memcpy(c->session_id, s->open.session_id, 32);
    memcpy(c->channel_id, s->open.channel_id, 32);
    memcpy(c->model, s->open.model, 32);
    c->model_size = s->open.model_size;
    c->params = s->open.params;
    c->n_prompt = s->open.n_prompt;
    c->n_tokens = s->n;
    c->n_forced = s->open.mode == PX_SESSION_GENERATE
                      ? s->open.n_tokens - s->open.n_prompt
                      : 0;
    px_session_tokens_hash(s->seq, s->n, c->tokens_hash);
    c->mode = s->open.mode;
    rc = px_session_commit_sign(c, &sp->m->key);
  }
  px_buf_t b;
  px_buf_init(&b, 0);
  if (!rc) rc = px_ses_done_encode(d, &b);
  if (!rc)
    rc = px_p2p_send(sp->m->env.p2p, s->gateway, PX_SES_TOPIC_DONE, b.data,
                     b.len);
  char id[17];
  hex8(s->open.session_id, id);
  if (rc)
    PX_LOGW(LOGMOD, "session %s: cannot send DONE: %s", id, px_strerror(rc));
  else if (finish == PX_SES_FINISH_ERROR)
    PX_LOGW(LOGMOD, "session %s failed: %s", id, d->message);
  else
    PX_LOGI(LOGMOD, "session %s done (%s): %u tokens, %u generated, cost %llu",
            id, px_ses_finish_name(finish), s->n, s->generated,
            (unsigned long long)s->cost);
  px_buf_release(&b);
  px_free(d);
}

/* ---- session lifetime ------------------------------------------------------
 */

static void ses_free(px_sesprov_t *sp, ses_t *s) {
  for (ses_t **pp = &sp->sessions; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      sp->n_sessions--;
      break;
    }
  chan_t *c = s->ch;
  if (c && !sp->closing) {
    /* The gateway pays what its client was given; what this session ran
     * ahead of that (at most the credit window) is written off so it does
     * not shrink the credit of the channel's later sessions.  A receipt
     * that pays it after all simply raises `paid`. */
    uint64_t paid = PX_MAX(c->paid, c->known ? c->rec.claimed : 0);
    uint64_t unpaid = c->owed > paid ? c->owed - paid : 0;
    c->owed -= PX_MIN(unpaid, s->cost);
  }
  if (c && c->active > 0 && --c->active == 0) c->idle_since = now_ms(sp);
  px_session_gen_release(&s->gen);
  if (s->llama) {
    if (sp->closing)
      px_llama_free(s->llama);
    else
      lcache_put(sp, s->open.model, s->llama);
  }
  px_fetch_free(s->fetch);
  px_free(s->seq);
  px_ses_open_release(&s->open);
  if (!sp->closing) px_prov_slot_give(sp->m->prov);
  px_free(s);
}

/* End a session now (not while its job is out). */
static void ses_end(px_sesprov_t *sp, ses_t *s, int finish, const char *why) {
  if (finish >= 0) send_done(sp, s, (uint8_t)finish, why);
  if (finish == PX_SES_FINISH_ERROR)
    sp->failed++;
  else if (finish >= 0)
    sp->finished++;
  ses_free(sp, s);
}

static ses_t *ses_find(px_sesprov_t *sp, const uint8_t id[32]) {
  for (ses_t *s = sp->sessions; s; s = s->next)
    if (!memcmp(s->open.session_id, id, 32)) return s;
  return NULL;
}

static void set_state(px_sesprov_t *sp, ses_t *s, sstate_t st) {
  s->state = st;
  s->since = now_ms(sp);
}

/* ---- the worker's step -----------------------------------------------------
 */

static int32_t perturbed(int32_t tok, int vocab) {
  int32_t t = tok;
  do
    t = (int32_t)((t + 1) % vocab);
  while ((t == PX_SESSION_BOS || t == tok) && vocab > 2);
  return t;
}

int px_ses_replay_seq(px_llama_t *m, px_compute_t *c,
                      const px_session_params_t *p, const int32_t *tokens,
                      uint32_t n_prompt, uint32_t n_tokens, int32_t *out,
                      uint32_t *n_out, int *mismatch) {
  *n_out = 0;
  *mismatch = 0;
  uint32_t fm = 0;
  int32_t expected = 0;
  int rc =
      px_session_replay_ex(m, c, p, tokens, n_prompt, n_tokens, &fm, &expected);
  if (rc && rc != PX_EAUTH) return rc;
  if (rc == PX_EAUTH && fm >= n_tokens) return PX_EINVAL; /* cannot be */
  uint32_t n = rc == PX_EAUTH ? fm : n_tokens;
  if (out != tokens) memmove(out, tokens, (size_t)n * sizeof(int32_t));
  if (rc == PX_EAUTH) {
    *mismatch = 1;
    /* our own sequence ends with what we sample at the first mismatch
     * (nothing when that is BOS: the sequence should have ended there);
     * the audited tokens after it are not ours to commit to */
    if (expected != PX_SESSION_BOS) out[n++] = expected;
  }
  *n_out = n;
  return 0;
}

static void step_replay(ses_t *s, px_compute_t *c) {
  int mismatch = 0;
  int rc =
      px_ses_replay_seq(s->llama, c, &s->open.params, s->seq, s->open.n_prompt,
                        s->open.n_tokens, s->seq, &s->n, &mismatch);
  if (rc) {
    s->step_rc = rc;
    snprintf(s->why, sizeof s->why, "replay failed: %s", px_strerror(rc));
    return;
  }
  s->finish = PX_SES_FINISH_REPLAY;
}

static void ses_run(px_prov_job_t *j, px_compute_t *c) {
  ses_t *s = (ses_t *)j;
  if (atomic_load(&s->cancelled)) return;
  int rc;
  if (!s->llama) {
    px_llama2c_t *ck = NULL;
    rc = px_llama2c_open(s->model_path, &ck);
    if (!rc) rc = px_llama_new(ck, &s->llama);
    px_llama2c_free(ck);
    if (rc) {
      s->step_rc = rc;
      snprintf(s->why, sizeof s->why,
               "the model blob is not a llama2.c model this node can run: %s",
               px_strerror(rc));
      return;
    }
  }
  if (!s->gen_ready) {
    const px_llama2c_config_t *cfg = px_llama_config(s->llama);
    uint64_t min = 0;
    rc = px_ses_price_per_token(s->prov_price, cfg, &min);
    if (rc || s->ppt < min) {
      s->step_rc = PX_EFUNDS;
      s->ppt_min = min;
      snprintf(s->why, sizeof s->why,
               "price per token %llu is below this provider's %llu",
               (unsigned long long)s->ppt, (unsigned long long)min);
      return;
    }
    if (s->open.n_tokens > (uint32_t)cfg->seq_len + 1) {
      s->step_rc = PX_ELIMIT;
      snprintf(s->why, sizeof s->why,
               "%u tokens do not fit the model's context of %d",
               s->open.n_tokens, cfg->seq_len);
      return;
    }
    if (s->open.mode == PX_SESSION_REPLAY) {
      step_replay(s, c);
      s->gen_ready = 1;
      return;
    }
    rc = px_session_gen_init(&s->gen, s->llama, c, &s->open.params, s->seq,
                             s->open.n_prompt, s->open.n_tokens);
    if (rc) {
      s->step_rc = rc;
      snprintf(s->why, sizeof s->why, "cannot start generating: %s%s",
               px_strerror(rc),
               rc == PX_ERANGE ? " (a token outside the model's vocabulary)"
                               : "");
      return;
    }
    s->gen_ready = 1;
  }
  s->gen.c = c; /* this worker's context for this step */
  uint64_t t0 = px_time_mono_ms();
  for (uint32_t k = 0; k < s->allow && !atomic_load(&s->cancelled); k++) {
    if (s->fault == F_VANISH && s->generated >= FAULT_TOKENS) {
      PX_LOGW(LOGMOD, "TEST ONLY fault 'vanish': exiting mid-session");
      _exit(3);
    }
    int32_t tok = 0;
    rc = px_session_gen_next(&s->gen, &tok);
    if (rc == PX_ECLOSED) {
      s->finish = PX_SES_FINISH_STOP;
      break;
    }
    if (rc == PX_ELIMIT) {
      s->finish = PX_SES_FINISH_LENGTH;
      break;
    }
    if (rc) {
      s->step_rc = rc;
      snprintf(s->why, sizeof s->why, "generation failed: %s", px_strerror(rc));
      break;
    }
    if (s->fault == F_PERTURB && s->generated == FAULT_TOKENS - 1)
      tok = perturbed(tok, s->gen.vocab);
    s->seq[s->n++] = tok;
    s->generated++;
    if (s->n >= s->open.max_total) {
      s->finish = PX_SES_FINISH_MAX;
      break;
    }
    if (px_time_mono_ms() - t0 >= STEP_MS) break;
  }
}

static void ses_step_done(px_prov_job_t *j);

/* Decide what a session does next (loop thread, job not out). */
static void schedule(px_sesprov_t *sp, ses_t *s) {
  chan_t *c = s->ch;
  if (s->open.mode == PX_SESSION_GENERATE && s->n >= s->open.max_total &&
      s->gen_ready) {
    ses_end(sp, s, PX_SES_FINISH_MAX, NULL);
    return;
  }
  uint32_t allow = 0;
  if (s->open.mode == PX_SESSION_GENERATE && s->gen_ready) {
    uint64_t deposit = c->known ? c->rec.deposit : 0;
    uint64_t used = PX_MAX(c->owed, PX_MAX(c->paid, c->rec.claimed));
    uint64_t left = deposit > used ? (deposit - used) / s->ppt : 0;
    if (left == 0) {
      ses_end(sp, s, PX_SES_FINISH_CREDIT, NULL);
      return;
    }
    /* what the chain paid out counts as paid even when the receipt that
     * claimed it is not ours (e.g. lost with a crash before it was kept) */
    uint64_t paid = PX_MAX(c->paid, c->known ? c->rec.claimed : 0);
    uint64_t unpaid = c->owed > paid ? c->owed - paid : 0;
    uint64_t limit =
        sat_mul(s->ppt, sat_add(s->open.n_tokens, (uint64_t)sp->credit));
    uint64_t credit = unpaid >= limit ? 0 : (limit - unpaid) / s->ppt;
    if (credit == 0) {
      if (s->state != S_PAUSED) {
        char id[17];
        hex8(s->open.session_id, id);
        PX_LOGI(LOGMOD,
                "session %s: paused at %u tokens (unpaid %llu, waiting for "
                "a receipt)",
                id, s->n, (unsigned long long)unpaid);
        set_state(sp, s, S_PAUSED);
      }
      return;
    }
    uint64_t a = PX_MIN(credit, left);
    a = PX_MIN(a, (uint64_t)(s->open.max_total - s->n));
    a = PX_MIN(a, (uint64_t)STEP_MAX_TOKENS);
    if (s->fault == F_STALL)
      a = PX_MIN(a, (uint64_t)(s->generated < FAULT_TOKENS
                                   ? FAULT_TOKENS - s->generated
                                   : 0));
    allow = (uint32_t)a;
    if (allow == 0) { /* TEST ONLY stall: keep the session, send nothing */
      if (s->state != S_STALLED) {
        PX_LOGW(LOGMOD, "TEST ONLY fault 'stall': session stops sending");
        set_state(sp, s, S_STALLED);
      }
      return;
    }
  }
  s->allow = allow;
  s->finish = -1;
  s->step_rc = 0;
  s->job.run = ses_run;
  s->job.done = ses_step_done;
  int rc = px_prov_run(sp->m->prov, &s->job);
  if (rc) {
    char why[96];
    snprintf(why, sizeof why, "cannot run on the provider's workers: %s",
             px_strerror(rc));
    ses_end(sp, s, PX_SES_FINISH_ERROR, why);
    return;
  }
  set_state(sp, s, S_RUNNING);
}

static void ses_step_done(px_prov_job_t *j) {
  ses_t *s = (ses_t *)j;
  px_sesprov_t *sp = s->sp;
  set_state(sp, s, S_READY);
  if (atomic_load(&s->cancelled)) {
    sp->cancelled++;
    ses_end(sp, s, -1, NULL);
    return;
  }
  if (s->llama) cfg_put(sp, s->open.model, px_llama_config(s->llama));
  chan_t *c = s->ch;
  if (s->gen_ready && !s->charged) {
    /* the OPEN's tokens are paid once they were fed */
    uint64_t v = sat_mul(s->ppt, s->open.n_tokens);
    c->owed = sat_add(c->owed, v);
    s->cost = sat_add(s->cost, v);
    s->charged = 1;
    if (s->open.mode == PX_SESSION_GENERATE) s->sent = s->open.n_tokens;
  }
  if (s->step_rc) {
    ses_end(sp, s, PX_SES_FINISH_ERROR, s->why);
    return;
  }
  if (s->finish == PX_SES_FINISH_REPLAY) {
    ses_end(sp, s, PX_SES_FINISH_REPLAY, NULL);
    return;
  }
  if (s->n > s->sent) {
    uint64_t v = sat_mul(s->ppt, s->n - s->sent);
    c->owed = sat_add(c->owed, v);
    s->cost = sat_add(s->cost, v);
    send_tokens(sp, s);
  }
  if (s->finish >= 0) {
    ses_end(sp, s, s->finish, NULL);
    return;
  }
  schedule(sp, s);
}

/* ---- fetching
 * ---------------------------------------------------------------- */

static int fetch_in_flight(px_sesprov_t *sp, const ses_t *self) {
  for (ses_t *s = sp->sessions; s; s = s->next)
    if (s != self && s->state == S_FETCH && s->fetch &&
        !memcmp(s->open.model, self->open.model, 32))
      return 1;
  return 0;
}

/* Move sessions waiting for their model on. */
static void pump(px_sesprov_t *sp) {
  uint64_t now = now_ms(sp);
  int again = 1;
  while (again) {
    again = 0;
    for (ses_t *s = sp->sessions, *next; s; s = next) {
      next = s->next;
      if (s->state != S_FETCH && s->state != S_WAIT) continue;
      if (s->fetch) {
        int st = px_fetch_status(s->fetch);
        if (st == 0) continue;
        if (st < 0) {
          char why[128];
          snprintf(why, sizeof why,
                   "fetching the model from the gateway failed: %s",
                   px_strerror(st));
          px_fetch_free(s->fetch);
          s->fetch = NULL;
          ses_end(sp, s, PX_SES_FINISH_ERROR, why);
          again = 1;
          break;
        }
        size_t len;
        const uint8_t *d = px_fetch_data(s->fetch, &len);
        uint8_t root[PX_HASH_LEN];
        int rc = px_blobstore_put(sp->m->blobs, d, len, root);
        px_fetch_free(s->fetch);
        s->fetch = NULL;
        if (rc || memcmp(root, s->open.model, 32)) {
          ses_end(sp, s, PX_SES_FINISH_ERROR, "cannot store the model blob");
          again = 1;
          break;
        }
        again = 1;
      }
      if (px_blobstore_has(sp->m->blobs, s->open.model, s->open.model_size)) {
        px_blobstore_path(sp->m->blobs, s->open.model, s->model_path,
                          sizeof s->model_path);
        s->llama = lcache_take(sp, s->open.model);
        set_state(sp, s, S_READY);
        schedule(sp, s);
        again = 1;
        break; /* the list may have changed */
      }
      if (fetch_in_flight(sp, s)) {
        if (s->state != S_WAIT) set_state(sp, s, S_WAIT);
        continue;
      }
      set_state(sp, s, S_FETCH);
      int rc = px_fetch_new(sp->m->env.p2p, s->gateway, s->open.model,
                            s->open.model_size, 0,
                            px_blob_chunk_count(s->open.model_size),
                            FETCH_TIMEOUT_MS, now, &s->fetch);
      if (rc) {
        ses_end(sp, s, PX_SES_FINISH_ERROR, "cannot start fetching the model");
        again = 1;
        break;
      }
      char id[17];
      hex8(s->open.model, id);
      PX_LOGI(LOGMOD, "fetching model %s (%llu bytes) from the gateway", id,
              (unsigned long long)s->open.model_size);
    }
  }
}

/* ---- requests
 * ---------------------------------------------------------------- */

static void open_reply(px_sesprov_t *sp, const px_p2p_fx_t *fx,
                       const uint8_t session_id[32], uint8_t reason,
                       uint64_t ppt, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void open_reply(px_sesprov_t *sp, const px_p2p_fx_t *fx,
                       const uint8_t session_id[32], uint8_t reason,
                       uint64_t ppt, const char *fmt, ...) {
  px_ses_open_reply_t r;
  memset(&r, 0, sizeof r);
  memcpy(r.session_id, session_id, 32);
  r.reason = reason;
  r.price_per_token = ppt;
  r.credit_tokens = reason == PX_SES_OK ? sp->credit : 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r.message, sizeof r.message, fmt, ap);
  va_end(ap);
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_ses_open_reply_encode(&r, &b);
  px_p2p_respond(sp->m->env.p2p, fx->node_pk, fx->req_id, rc,
                 rc ? NULL : b.data, rc ? 0 : b.len);
  px_buf_release(&b);
  char id[17];
  hex8(session_id, id);
  if (reason == PX_SES_OK) {
    sp->accepted++;
  } else {
    sp->refused++;
    PX_LOGI(LOGMOD, "session %s refused (%s): %s", id,
            px_ses_reason_name(reason), r.message);
  }
}

static void on_open(px_sesprov_t *sp, const px_p2p_fx_t *fx) {
  px_market_t *m = sp->m;
  ses_t *s = px_calloc(1, sizeof *s);
  if (!s) {
    px_p2p_respond(m->env.p2p, fx->node_pk, fx->req_id, PX_ENOMEM, NULL, 0);
    return;
  }
  px_ses_open_t *o = &s->open;
  int rc = px_ses_open_decode(fx->data.data, fx->data.len, o);
  if (rc) {
    px_p2p_respond(m->env.p2p, fx->node_pk, fx->req_id, rc, NULL, 0);
    px_free(s);
    return;
  }
  const px_ledger_state_t *st = px_chain_state(m->env.chain);
  uint64_t height = px_ledger_height(st);
  uint64_t price = 0, ppt = 0;
  const px_llama2c_config_t *cfg = cfg_get(sp, o->model);
  px_session_channel_t ch;
  int have_ch = px_session_chain_channel(st, o->channel_id, &ch) == 0;
  chan_t *known = chan_find(sp, o->channel_id);
  uint64_t owed = known ? PX_MAX(known->owed, known->paid) : 0;
  uint64_t need = sat_mul(o->price_per_token,
                          o->n_tokens + (o->mode == PX_SESSION_GENERATE));
  if (!px_prov_is_active(m->prov, &price)) {
    open_reply(sp, fx, o->session_id, PX_SES_NOT_PROVIDER, 0,
               "not an active provider on chain");
  } else if (cfg && px_ses_price_per_token(price, cfg, &ppt)) {
    open_reply(sp, fx, o->session_id, PX_SES_BAD_MODEL, 0,
               "cannot price this model");
  } else if (cfg && o->price_per_token < ppt) {
    open_reply(sp, fx, o->session_id, PX_SES_PRICE, ppt,
               "price per token %llu is below %llu",
               (unsigned long long)o->price_per_token, (unsigned long long)ppt);
  } else if (o->price_per_token == 0) {
    open_reply(sp, fx, o->session_id, PX_SES_PRICE, ppt,
               "price per token 0 is below this provider's price");
  } else if (cfg && o->n_tokens > (uint32_t)cfg->seq_len + 1) {
    open_reply(sp, fx, o->session_id, PX_SES_TOO_LONG, ppt,
               "%u tokens do not fit the model's context of %d", o->n_tokens,
               cfg->seq_len);
  } else if (o->model_size > MAX_MODEL_BYTES) {
    open_reply(sp, fx, o->session_id, PX_SES_BAD_MODEL, ppt,
               "model of %llu bytes is too large",
               (unsigned long long)o->model_size);
  } else if (!have_ch) {
    open_reply(sp, fx, o->session_id, PX_SES_UNKNOWN_CHANNEL, ppt,
               "channel not on chain at height %llu (retry after the next "
               "block)",
               (unsigned long long)height);
  } else if (memcmp(ch.provider, m->key.pk, PX_PK_LEN)) {
    open_reply(sp, fx, o->session_id, PX_SES_UNKNOWN_CHANNEL, ppt,
               "the channel pays another provider");
  } else if (ch.state != PX_CHANNEL_OPEN) {
    open_reply(sp, fx, o->session_id, PX_SES_UNKNOWN_CHANNEL, ppt,
               "the channel is closed");
  } else if (height + EXPIRY_MARGIN >= ch.expiry_height) {
    open_reply(sp, fx, o->session_id, PX_SES_NO_CREDIT, ppt,
               "the channel expires at height %llu (now %llu)",
               (unsigned long long)ch.expiry_height,
               (unsigned long long)height);
  } else if (PX_MAX(owed, ch.claimed) >= ch.deposit ||
             ch.deposit - PX_MAX(owed, ch.claimed) < need) {
    open_reply(sp, fx, o->session_id, PX_SES_NO_CREDIT, ppt,
               "the channel's deposit %llu cannot pay %llu more (%llu used)",
               (unsigned long long)ch.deposit, (unsigned long long)need,
               (unsigned long long)PX_MAX(owed, ch.claimed));
  } else if (ses_find(sp, o->session_id)) {
    open_reply(sp, fx, o->session_id, PX_SES_BAD_REQUEST, ppt,
               "session id already in use");
  } else if ((rc = px_prov_slot_take(m->prov)) != 0) {
    if (rc == PX_EBUSY)
      open_reply(sp, fx, o->session_id, PX_SES_BUSY, ppt,
                 "all slots are taken");
    else
      open_reply(sp, fx, o->session_id, PX_SES_NOT_PROVIDER, ppt,
                 "not serving now: %s", px_strerror(rc));
  } else {
    chan_t *c = chan_get(sp, o->channel_id);
    s->cap = o->mode == PX_SESSION_REPLAY ? o->n_tokens : o->max_total;
    s->seq = px_malloc((size_t)s->cap * sizeof(int32_t));
    if (!c || !s->seq) {
      px_prov_slot_give(m->prov);
      open_reply(sp, fx, o->session_id, PX_SES_INTERNAL, ppt, "out of memory");
      goto refused;
    }
    c->rec = ch;
    c->known = 1;
    if (c->owed < ch.claimed) c->owed = ch.claimed;
    c->active++;
    memcpy(s->seq, o->tokens, (size_t)o->n_tokens * sizeof(int32_t));
    s->n = o->n_tokens;
    s->sp = sp;
    s->ch = c;
    s->ppt = o->price_per_token;
    s->prov_price = price;
    s->fault = sp->fault;
    s->finish = -1;
    memcpy(s->gateway, fx->node_pk, PX_PK_LEN);
    atomic_init(&s->cancelled, 0);
    set_state(sp, s, S_FETCH);
    s->next = sp->sessions;
    sp->sessions = s;
    sp->n_sessions++;
    open_reply(sp, fx, o->session_id, PX_SES_OK, ppt, "accepted");
    char id[17], chh[17];
    hex8(o->session_id, id);
    hex8(o->channel_id, chh);
    PX_LOGI(LOGMOD,
            "session %s accepted (%s, channel %s, %u tokens, max %u, %llu "
            "per token)",
            id, o->mode == PX_SESSION_REPLAY ? "replay" : "generate", chh,
            o->n_tokens, o->max_total, (unsigned long long)s->ppt);
    pump(sp);
    return;
  }
refused:
  px_free(s->seq);
  px_ses_open_release(o);
  px_free(s);
}

static void on_cancel(px_sesprov_t *sp, const px_p2p_fx_t *fx) {
  px_ses_cancel_t q;
  int rc = px_ses_cancel_decode(fx->data.data, fx->data.len, &q);
  ses_t *s = rc ? NULL : ses_find(sp, q.session_id);
  if (s && memcmp(s->gateway, fx->node_pk, PX_PK_LEN)) s = NULL;
  if (s) {
    char id[17];
    hex8(q.session_id, id);
    PX_LOGI(LOGMOD, "session %s cancelled by the gateway at %u tokens", id,
            s->n);
    if (s->state == S_RUNNING) {
      atomic_store(&s->cancelled, 1); /* freed when the step returns */
    } else {
      sp->cancelled++;
      ses_end(sp, s, -1, NULL);
    }
  }
  px_p2p_respond(sp->m->env.p2p, fx->node_pk, fx->req_id, rc, NULL, 0);
}

static void on_receipt(px_sesprov_t *sp, const px_p2p_fx_t *fx) {
  px_ses_receipt_t r;
  int rc = px_ses_receipt_decode(fx->data.data, fx->data.len, &r);
  const px_ledger_state_t *st = px_chain_state(sp->m->env.chain);
  px_session_channel_t ch;
  if (!rc && px_session_chain_channel(st, r.channel_id, &ch)) rc = PX_ENOTFOUND;
  if (!rc && memcmp(ch.provider, sp->m->key.pk, PX_PK_LEN)) rc = PX_ENOTFOUND;
  if (!rc)
    rc = px_session_receipt_verify(ch.payer, px_ledger_chain_id(st),
                                   r.channel_id, r.cumulative, r.sig);
  chan_t *c = rc ? NULL : chan_get(sp, r.channel_id);
  if (!rc && !c) rc = PX_ENOMEM;
  if (!rc) {
    c->rec = ch;
    c->known = 1;
    if (r.cumulative > c->paid) {
      uint64_t old = c->paid;
      uint8_t old_sig[PX_SIG_LEN];
      memcpy(old_sig, c->sig, PX_SIG_LEN);
      c->paid = r.cumulative;
      memcpy(c->sig, r.sig, PX_SIG_LEN);
      rc = receipt_save(sp, c);
      if (rc) { /* not kept: not acknowledged */
        c->paid = old;
        memcpy(c->sig, old_sig, PX_SIG_LEN);
      } else {
        c->receipts++;
        sp->receipts++;
      }
    }
  }
  px_p2p_respond(sp->m->env.p2p, fx->node_pk, fx->req_id, rc, NULL, 0);
  if (rc) {
    char chh[17];
    hex8(r.channel_id, chh);
    PX_LOGW(LOGMOD, "receipt for channel %s refused: %s", chh, px_strerror(rc));
    return;
  }
  /* resume what waited for it (each once: it may pause again) */
  for (ses_t *s = sp->sessions; s; s = s->next)
    s->mark = s->ch == c && s->state == S_PAUSED;
  for (int again = 1; again;) {
    again = 0;
    for (ses_t *s = sp->sessions; s; s = s->next)
      if (s->mark) {
        s->mark = 0;
        schedule(sp, s); /* may end (and free) s */
        again = 1;
        break;
      }
  }
  maybe_claim(sp, c, px_ledger_height(st), now_ms(sp));
}

int px_sesprov_on_request(px_sesprov_t *sp, const px_p2p_fx_t *fx) {
  if (!sp) return 0;
  switch (fx->method) {
  case PX_SES_METHOD_OPEN:
    on_open(sp, fx);
    return 1;
  case PX_SES_METHOD_CANCEL:
    on_cancel(sp, fx);
    return 1;
  case PX_SES_METHOD_RECEIPT:
    on_receipt(sp, fx);
    return 1;
  default:
    return 0;
  }
}

int px_sesprov_on_response(px_sesprov_t *sp, const px_p2p_fx_t *fx) {
  if (!sp) return 0;
  for (ses_t *s = sp->sessions; s; s = s->next)
    if (s->fetch && px_fetch_on_response(s->fetch, fx, now_ms(sp))) {
      pump(sp);
      return 1;
    }
  return 0;
}

void px_sesprov_on_peer(px_sesprov_t *sp, const px_p2p_fx_t *fx) {
  if (!sp || fx->kind != PX_P2P_FX_PEER_DOWN) return;
  for (int again = 1; again;) {
    again = 0;
    for (ses_t *s = sp->sessions; s; s = s->next) {
      if (memcmp(s->gateway, fx->node_pk, PX_PK_LEN) ||
          atomic_load(&s->cancelled))
        continue;
      char id[17];
      hex8(s->open.session_id, id);
      PX_LOGI(LOGMOD, "session %s: the gateway left; stopping", id);
      if (s->state == S_RUNNING) {
        atomic_store(&s->cancelled, 1);
        continue;
      }
      sp->cancelled++;
      ses_end(sp, s, -1, NULL);
      again = 1;
      break;
    }
  }
}

void px_sesprov_tick(px_sesprov_t *sp, uint64_t now) {
  if (!sp) return;
  for (ses_t *s = sp->sessions; s; s = s->next)
    px_fetch_tick(s->fetch, now);
  for (int again = 1; again;) {
    again = 0;
    for (ses_t *s = sp->sessions; s; s = s->next) {
      if (s->state == S_PAUSED && now >= s->since + PAUSE_TIMEOUT_MS) {
        ses_end(sp, s, PX_SES_FINISH_ERROR,
                "no payment receipt within 30 s; session dropped");
        again = 1;
        break;
      }
      if (s->state == S_STALLED && now >= s->since + STALL_KEEP_MS) {
        ses_end(sp, s, -1, NULL);
        again = 1;
        break;
      }
    }
  }
  pump(sp);
  const px_ledger_state_t *st = px_chain_state(sp->m->env.chain);
  uint64_t h = st ? px_ledger_height(st) : 0;
  for (chan_t *c = sp->chans; c; c = c->next)
    maybe_claim(sp, c, h, now);
}

void px_sesprov_on_block(px_sesprov_t *sp, const px_ledger_state_t *s,
                         const px_block_t *b, const px_tx_result_t *res) {
  (void)b;
  (void)res;
  if (!sp) return;
  uint64_t h = px_ledger_height(s);
  for (chan_t **pp = &sp->chans; *pp;) {
    chan_t *c = *pp;
    chan_refresh(sp, c, s);
    /* a closed channel with nothing running is forgotten (its file stays
     * as the record of what was paid) */
    if (c->known && c->rec.state == PX_CHANNEL_CLOSED && c->active == 0) {
      *pp = c->next;
      px_free(c);
      continue;
    }
    maybe_claim(sp, c, h, now_ms(sp));
    pp = &c->next;
  }
}

/* ---- commands
 * ------------------------------------------------------------------ */

void px_sesprov_status_json(px_sesprov_t *sp, px_buf_t *out) {
  if (!sp) {
    px_buf_printf(out, "null");
    return;
  }
  static const char *const fnames[] = {"none", "stall", "perturb", "vanish"};
  px_buf_printf(
      out,
      "{\"fault\":\"%s\",\"credit_tokens\":%u,\"accepted\":%llu,"
      "\"refused\":%llu,\"finished\":%llu,\"cancelled\":%llu,"
      "\"failed\":%llu,\"tokens_served\":%llu,\"receipts\":%llu,"
      "\"claims\":%llu,\"active\":[",
      fnames[sp->fault], sp->credit, (unsigned long long)sp->accepted,
      (unsigned long long)sp->refused, (unsigned long long)sp->finished,
      (unsigned long long)sp->cancelled, (unsigned long long)sp->failed,
      (unsigned long long)sp->tokens_served, (unsigned long long)sp->receipts,
      (unsigned long long)sp->claims);
  for (ses_t *s = sp->sessions; s; s = s->next) {
    char id[65], ch[65], gw[65];
    px_hex_encode(s->open.session_id, 32, id);
    px_hex_encode(s->open.channel_id, 32, ch);
    px_hex_encode(s->gateway, PX_PK_LEN, gw);
    px_buf_printf(out,
                  "%s{\"id\":\"%s\",\"channel\":\"%s\",\"gateway\":\"%s\","
                  "\"mode\":\"%s\",\"state\":\"%s\",\"tokens\":%u,"
                  "\"generated\":%u,\"max_total\":%u,\"price_per_token\":%llu,"
                  "\"cost\":%llu}",
                  s == sp->sessions ? "" : ",", id, ch, gw,
                  s->open.mode == PX_SESSION_REPLAY ? "replay" : "generate",
                  k_state_names[s->state], s->n, s->generated,
                  s->open.max_total, (unsigned long long)s->ppt,
                  (unsigned long long)s->cost);
  }
  px_buf_printf(out, "],\"channels\":[");
  for (chan_t *c = sp->chans; c; c = c->next) {
    char id[65], payer[65];
    px_hex_encode(c->id, 32, id);
    px_hex_encode(c->rec.payer, PX_PK_LEN, payer);
    px_buf_printf(
        out,
        "%s{\"id\":\"%s\",\"payer\":\"%s\",\"state\":\"%s\",\"deposit\":%llu,"
        "\"claimed\":%llu,\"paid\":%llu,\"owed\":%llu,\"claim_sent\":%llu,"
        "\"receipts\":%llu,\"sessions\":%u}",
        c == sp->chans ? "" : ",", id, payer,
        !c->known                         ? "unknown"
        : c->rec.state == PX_CHANNEL_OPEN ? "open"
                                          : "closed",
        (unsigned long long)c->rec.deposit, (unsigned long long)c->rec.claimed,
        (unsigned long long)c->paid, (unsigned long long)c->owed,
        (unsigned long long)c->claim_sent, (unsigned long long)c->receipts,
        c->active);
  }
  px_buf_printf(out, "]}");
}

int px_sesprov_command(px_sesprov_t *sp, const char *cmd, const char *arg,
                       px_buf_t *out) {
  (void)arg;
  if (!sp || strcmp(cmd, "sessions")) return 0;
  px_buf_printf(out, "{\"ok\":true,\"sessions\":");
  px_sesprov_status_json(sp, out);
  px_buf_printf(out, "}");
  return 1;
}

/* ---- lifecycle
 * --------------------------------------------------------------- */

int px_sesprov_open(px_market_t *m, px_sesprov_t **out) {
  *out = NULL;
  px_sesprov_t *sp = px_calloc(1, sizeof *sp);
  if (!sp) return PX_ENOMEM;
  sp->m = m;
  sp->credit = PX_SES_DEFAULT_CREDIT;
  const char *f = px_config_get_str(m->env.cfg, "market.fault", "none");
  sp->fault = !strcmp(f, "stall")     ? F_STALL
              : !strcmp(f, "perturb") ? F_PERTURB
              : !strcmp(f, "vanish")  ? F_VANISH
                                      : F_NONE;
  snprintf(sp->dir, sizeof sp->dir, "%s/session-receipts", m->home);
  int rc = px_mkdir_p(sp->dir, 0700);
  if (rc) {
    PX_LOGE(LOGMOD, "cannot create %s: %s", sp->dir, px_strerror(rc));
    px_free(sp);
    return rc;
  }
  receipts_load(sp);
  *out = sp;
  return 0;
}

void px_sesprov_close(px_sesprov_t *sp) {
  if (!sp) return;
  for (ses_t *s = sp->sessions; s; s = s->next)
    atomic_store(&s->cancelled, 1);
}

void px_sesprov_free(px_sesprov_t *sp) {
  if (!sp) return;
  /* the provider's workers are joined by now (market.c closes it first) */
  sp->closing = 1;
  while (sp->sessions)
    ses_free(sp, sp->sessions);
  for (int i = 0; i < LCACHE_MAX; i++)
    px_llama_free(sp->lcache[i].m);
  while (sp->chans) {
    chan_t *c = sp->chans;
    sp->chans = c->next;
    px_free(c);
  }
  px_free(sp);
}
