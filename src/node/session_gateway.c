/*
 * session_gateway.c — the network inference backend of a gateway node
 * (`plexus node --http` with models registered in HOME/models.json):
 * OpenAI requests run as inference sessions on market providers
 * (node/session_rt.h, docs/api.md "Network inference").
 *
 * Threads.  generate() runs on a libmicrohttpd connection thread and never
 * touches node state: it tokenizes the prompt (the gateway holds each
 * model's tokenizer), puts a request in the inbox and wakes the loop with
 * px_node_call, then waits on the request's condition variable for token
 * ids.  Everything else — choosing providers, channels, OPEN, TOKENS,
 * DONE, receipts, stalls, audits, disputes — runs on the node's loop
 * thread, which appends token ids to the request under the gateway mutex
 * and signals; the connection thread decodes them into text and calls the
 * API's callback.  A callback that says stop (client gone, stop string)
 * sets want_cancel; the loop sends CANCEL.  One mutex (gw->mu) guards the
 * fields both sides touch (marked "shared"); the rest of a request is the
 * loop's.  tokens[i] is written before n_have passes i and never again, so
 * the connection thread reads tokens[0..n_have) without the lock.
 *
 * A request's life on the loop:
 *   NEW -> pick a provider (active on chain, price <= api.max_price, not
 *     tried by this request, not stalled recently; cheapest, then best
 *     reputation, round-robin among equals) -> a payment channel to it
 *     with headroom (else CHANNEL_OPEN from the wallet, then wait for the
 *     block that holds it) -> OPEN (prompt + tokens so far) -> STREAMING
 *     (TOKENS; a receipt every RECEIPT_EVERY tokens) -> DONE: final
 *     receipt; with probability api.audit an audit request replays the
 *     sequence on another provider (REPLAY) and a different tokens_hash
 *     sends SESSION_DISPUTE with the model bytes from the blob store.
 *   A provider that sends nothing for api.stall_ms (plus the model fetch
 *   allowance before the first token) is cancelled, paid for what it
 *   delivered, avoided for STALL_PENALTY_MS, and the request goes back to
 *   NEW with the tokens so far: the next provider teacher-forces them and
 *   continues, so the client sees one unbroken stream.
 *
 * Payment (the rule of session_rt.h): an attempt costs price_per_token x
 * (tokens in its OPEN + tokens it delivered); the prompt part is owed once
 * the first token arrives.  Per channel the gateway keeps `owed` (sum over
 * its sessions) and signs cumulative receipts; the cumulative is written
 * to HOME/channels/<id>.json (atomically) BEFORE the signature leaves, so
 * after a restart the gateway never signs less than it did.  Live sessions
 * reserve price_per_token x max_total of a channel's deposit so concurrent
 * sessions never promise more than it holds.
 *
 * The wallet that pays is HOME/wallet.key (else the node key): the one
 * `plexus gateway key new` maps every key of this home to.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "plexus/api.h"
#include "plexus/json.h"
#include "plexus/market.h"
#include "plexus/market_chain.h"
#include "plexus/models.h"
#include "plexus/session.h"
#include "plexus/session_chain.h"
#include "node/session_rt.h"
#include "base/px_internal.h"

#define LOGMOD "gateway"
#define RECEIPT_EVERY 16u
#define STALL_PENALTY_MS 300000u
#define CHANNEL_EXPIRY_BLOCKS 100000u
#define CHANNEL_WAIT_MS 60000u /* a CHANNEL_OPEN must land by then */
#define START_MS 60000u        /* a request finds a provider by then */
#define RETRY_MS 500u          /* all providers busy: try again */
#define OPEN_TIMEOUT_MS 15000u /* OPEN_REPLY */
#define AUDIT_MS 120000u       /* a replay must be done by then */
#define MAX_ATTEMPTS 16
#define MAX_UNKNOWN_CHANNEL 20   /* OPEN refused, provider behind: blocks */
#define FETCH_BYTES_PER_MS 2048u /* first-token allowance: model fetch */
#define SIDE_REQS 64             /* receipts/cancels awaiting a reply */
#define WAIT_SLICE_MS 100

/* ---- state ------------------------------------------------------------ */

enum { CH_PENDING = 0, CH_OPEN = 1, CH_DEAD = 2 };

typedef struct channel {
  uint8_t id[32], provider[32], salt[32];
  uint64_t deposit, expiry;
  uint64_t owed;     /* cost of everything delivered on it */
  uint64_t signed_;  /* highest cumulative signed */
  uint64_t mark;     /* persisted: nothing above it was ever signed */
  uint64_t reserved; /* headroom held by live sessions */
  int state;
  uint8_t tx[32];    /* CHANNEL_OPEN hash (PENDING) */
  uint64_t since_ms; /* PENDING: when submitted */
  struct channel *next;
} channel_t;

typedef struct {
  char name[PX_MODEL_NAME_MAX];
  uint8_t root[32], tok_root[32];
  uint64_t size;
  px_llama2c_config_t cfg;
  px_tokenizer_t *tok;
  px_api_template_t tpl;
} model_t;

enum {
  ST_NEW = 0,    /* pick a provider */
  ST_RETRY,      /* none free now: ST_NEW at retry_ms */
  ST_CHANNEL,    /* waiting for ch to be on chain */
  ST_OPENING,    /* OPEN sent (req_id) */
  ST_WAIT_BLOCK, /* refused UNKNOWN_CHANNEL: OPEN again next block */
  ST_STREAMING,  /* accepted; tokens flow */
  ST_FINISHED,   /* the loop's part is over */
};

typedef struct gwreq {
  struct px_sesgw *gw;
  const model_t *model;
  px_session_params_t params;
  int32_t *tokens; /* max_total slots */
  uint32_t n_prompt, max_total;
  uint8_t mode; /* GENERATE, or REPLAY for an audit */
  /* shared (gw->mu) */
  uint32_t n_have;
  int done, err;
  uint8_t finish;  /* px_ses_finish_t of the last session */
  uint32_t n_used; /* tokens the client has been given */
  int want_cancel, conn_released;
  pthread_cond_t cv;
  /* loop only */
  int state;
  int in_loop; /* taken from the inbox */
  uint64_t created_ms, retry_ms, deadline_ms, busy_since_ms;
  /* the current attempt */
  uint8_t sid[32];
  uint8_t provider[32];
  channel_t *ch;
  uint64_t ppt, reserve, req_id;
  uint32_t n_open, n_recv, n_paid, since_receipt, unknown_retries;
  int prompt_paid;
  uint64_t last_ms, first_deadline_ms;
  uint8_t tried[MAX_ATTEMPTS][32];
  int n_tried, attempts;
  /* the finished session's commitment (GENERATE) */
  px_session_commit_t commit;
  int have_commit;
  /* audit: the session it checks */
  px_session_commit_t audited;
  struct gwreq *next;
} gwreq_t;

typedef struct {
  uint8_t tx[32];
  uint8_t session_id[32], provider[32];
  int used;
} dispute_t;

struct px_sesgw {
  px_api_backend_t be; /* first: the handle the API gets */
  px_market_t *m;
  px_node_t *node;
  char home[4096];
  px_keypair_t payer;
  model_t *models;
  size_t n_models;
  double audit;
  uint64_t stall_ms, max_price, deposit;
  pthread_mutex_t mu;
  atomic_int closing;
  gwreq_t *inbox; /* shared: new requests */
  /* loop only */
  gwreq_t *reqs;
  channel_t *channels;
  struct {
    uint8_t pk[32];
    uint64_t until_ms;
  } stalled[32];
  uint64_t rr, rr_audit; /* round-robin among equals (sessions, audits) */
  uint64_t side[SIDE_REQS];
  size_t side_at;
  dispute_t disputes[16];
  /* counters (shared: read by status from the loop, written on the loop) */
  uint64_t n_sessions, n_tokens, n_stalls, n_audits, n_audits_failed,
      n_disputes, n_disputes_won, n_failed, n_channels;
};

static void req_advance(px_sesgw_t *gw, gwreq_t *r, uint64_t now);

static void flush(px_sesgw_t *gw) {
  if (gw->m->env.flush) gw->m->env.flush(gw->m->env.ud);
}

static const px_ledger_state_t *state(px_sesgw_t *gw) {
  return px_chain_state(gw->m->env.chain);
}

static void hex8(const uint8_t *p, char out[17]) { px_hex_encode(p, 8, out); }

static void cond_init_mono(pthread_cond_t *cv) {
  pthread_condattr_t at;
  pthread_condattr_init(&at);
  pthread_condattr_setclock(&at, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &at);
  pthread_condattr_destroy(&at);
}

/* ---- channels (HOME/channels/<id>.json) --------------------------------- */

static int channel_path(px_sesgw_t *gw, const channel_t *c, char *out,
                        size_t cap) {
  char hex[65];
  px_hex_encode(c->id, 32, hex);
  int k = snprintf(out, cap, "%s/channels/%s.json", gw->home, hex);
  return k < 0 || (size_t)k >= cap ? PX_ETOOBIG : 0;
}

static int channel_save(px_sesgw_t *gw, const channel_t *c,
                        uint64_t cumulative) {
  char path[4300], hid[65], hp[65], hs[65], pay[65];
  px_hex_encode(c->id, 32, hid);
  px_hex_encode(c->provider, 32, hp);
  px_hex_encode(c->salt, 32, hs);
  px_hex_encode(gw->payer.pk, 32, pay);
  px_buf_t b;
  px_buf_init(&b, 0);
  px_buf_printf(&b,
                "{\"id\":\"%s\",\"payer\":\"%s\",\"provider\":\"%s\","
                "\"salt\":\"%s\",\"deposit\":%llu,\"expiry\":%llu,"
                "\"cumulative\":%llu}\n",
                hid, pay, hp, hs, (unsigned long long)c->deposit,
                (unsigned long long)c->expiry, (unsigned long long)cumulative);
  int rc = channel_path(gw, c, path, sizeof path);
  if (!rc) rc = px_file_write_atomic(path, b.data, b.len, 0600);
  px_buf_release(&b);
  if (rc)
    PX_LOGE(LOGMOD, "cannot write %s: %s (no receipt is signed)", path,
            px_strerror(rc));
  return rc;
}

static int get_hex32(const px_json_t *o, const char *k, uint8_t out[32]) {
  const char *s;
  return px_json_get_str(o, k, &s) || strlen(s) != 64 ||
                 px_hex_decode(s, out, 32)
             ? PX_EDECODE
             : 0;
}

/* Channels this wallet opened before (state from the chain when used). */
static int channels_load(px_sesgw_t *gw, char *errmsg, size_t errcap) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/channels", gw->home);
  int rc = px_mkdir_p(dir, 0700);
  if (rc) {
    snprintf(errmsg, errcap, "cannot create %s: %s", dir, px_strerror(rc));
    return rc;
  }
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t nl = strlen(de->d_name);
    if (nl != 64 + 5 || strcmp(de->d_name + 64, ".json")) continue;
    char path[4480];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    uint8_t *p = NULL;
    size_t n = 0;
    px_arena_t arena;
    px_arena_init(&arena, 4096, 1 << 20);
    px_json_t *root;
    channel_t *c = px_calloc(1, sizeof *c);
    uint8_t payer[32];
    rc = c ? px_file_read_all(path, 1 << 16, &p, &n) : PX_ENOMEM;
    if (!rc) rc = px_json_parse(&arena, p, n, NULL, &root, NULL);
    if (!rc &&
        (get_hex32(root, "id", c->id) || get_hex32(root, "payer", payer) ||
         get_hex32(root, "provider", c->provider) ||
         get_hex32(root, "salt", c->salt) ||
         px_json_get_u64(root, "deposit", &c->deposit) ||
         px_json_get_u64(root, "expiry", &c->expiry) ||
         px_json_get_u64(root, "cumulative", &c->signed_)))
      rc = PX_EDECODE;
    px_free(p);
    px_arena_release(&arena);
    if (rc) {
      px_free(c);
      snprintf(errmsg, errcap,
               "%s is damaged (%s): it holds what this gateway signed to a "
               "provider; restore it or move it away",
               path, px_strerror(rc));
      closedir(d);
      return rc;
    }
    if (memcmp(payer, gw->payer.pk, 32)) { /* another wallet's */
      px_free(c);
      continue;
    }
    /* anything up to the mark may have been signed before a crash */
    c->owed = c->mark = c->signed_;
    c->state = CH_OPEN; /* checked on chain whenever it is chosen */
    c->next = gw->channels;
    gw->channels = c;
  }
  closedir(d);
  return 0;
}

/* Sign and send a receipt for everything owed on c.  Write-ahead: the
 * file holds a mark at or above every amount signed, raised ahead by
 * RECEIPT_AHEAD tokens' worth (ppt each) so that a disk write is needed
 * only every few receipts, not for each; after a restart signing resumes
 * at the mark, so it never signs less than before (a crash can cost at
 * most that allowance). */
#define RECEIPT_AHEAD 256u
static void channel_sign(px_sesgw_t *gw, channel_t *c, uint64_t ppt) {
  if (c->owed <= c->signed_) return;
  if (c->owed > c->mark) {
    uint64_t ahead =
        ppt > UINT64_MAX / RECEIPT_AHEAD ? UINT64_MAX : ppt * RECEIPT_AHEAD;
    uint64_t mark = c->owed > UINT64_MAX - ahead ? UINT64_MAX : c->owed + ahead;
    if (mark > c->deposit) mark = PX_MAX(c->deposit, c->owed);
    if (channel_save(gw, c, mark)) return;
    c->mark = mark;
  }
  px_ses_receipt_t rc;
  memcpy(rc.channel_id, c->id, 32);
  rc.cumulative = c->owed;
  const char *chain_id = px_ledger_chain_id(state(gw));
  if (px_session_receipt_sign(&gw->payer, chain_id, c->id, c->owed, rc.sig))
    return;
  c->signed_ = c->owed;
  px_buf_t b;
  px_buf_init(&b, 0);
  uint64_t id = 0;
  if (!px_ses_receipt_encode(&rc, &b) &&
      !px_p2p_request(gw->m->env.p2p, c->provider, PX_SES_METHOD_RECEIPT,
                      b.data, b.len, 0, px_node_now(gw->node), &id)) {
    gw->side[gw->side_at++ % SIDE_REQS] = id;
  }
  px_buf_release(&b);
}

/* Build, sign and submit a tx from the paying wallet (px_market_submit's
 * rule for nonce and fee, with the wallet key). */
static int gw_submit(px_sesgw_t *gw, uint16_t type, const void *payload,
                     size_t n, uint8_t hash[PX_HASH_LEN]) {
  const px_ledger_state_t *s = state(gw);
  const px_ledger_params_t *pp = px_ledger_params(s);
  uint64_t nonce = px_chain_next_nonce(gw->m->env.chain, gw->payer.pk);
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_tx_make(px_ledger_chain_id(s), &gw->payer, nonce, pp->fee_base,
                      type, payload, n, &b);
  uint64_t fee = 0;
  if (!rc) {
    unsigned __int128 f =
        (unsigned __int128)pp->fee_per_byte * b.len + pp->fee_base;
    if (f > UINT64_MAX) rc = PX_ERANGE;
    fee = (uint64_t)f;
  }
  if (!rc) {
    px_buf_reset(&b);
    rc = px_tx_make(px_ledger_chain_id(s), &gw->payer, nonce, fee, type,
                    payload, n, &b);
  }
  if (!rc) rc = px_chain_submit(gw->m->env.chain, b.data, b.len, hash);
  if (rc)
    PX_LOGW(LOGMOD, "%s transaction (%zu bytes) rejected: %s",
            px_tx_type_name(type), b.len, px_strerror(rc));
  px_buf_release(&b);
  return rc;
}

/* A channel to `provider` able to pay `need` more, or a new one (PENDING);
 * NULL with *err when the wallet cannot open one. */
static channel_t *channel_for(px_sesgw_t *gw, const uint8_t provider[32],
                              uint64_t need, int *err) {
  const px_ledger_state_t *s = state(gw);
  uint64_t h = px_ledger_height(s);
  for (channel_t *c = gw->channels; c; c = c->next) {
    if (c->state == CH_DEAD || memcmp(c->provider, provider, 32)) continue;
    if (c->owed + c->reserved > c->deposit ||
        c->deposit - c->owed - c->reserved < need)
      continue;
    if (c->state == CH_PENDING) return c;
    px_session_channel_t rec;
    if (px_session_chain_channel(s, c->id, &rec) ||
        rec.state != PX_CHANNEL_OPEN || memcmp(rec.payer, gw->payer.pk, 32) ||
        h + 10 >= rec.expiry_height)
      continue;
    return c;
  }
  channel_t *c = px_calloc(1, sizeof *c);
  if (!c) {
    *err = PX_ENOMEM;
    return NULL;
  }
  memcpy(c->provider, provider, 32);
  randombytes_buf(c->salt, 32);
  px_session_channel_id(gw->payer.pk, provider, c->salt, c->id);
  c->deposit = PX_MAX(gw->deposit, need);
  c->expiry = h + CHANNEL_EXPIRY_BLOCKS;
  px_account_t acct;
  const px_ledger_params_t *pp = px_ledger_params(s);
  if (px_ledger_account(s, gw->payer.pk, &acct) ||
      acct.balance < c->deposit + pp->fee_base + pp->fee_per_byte * 512) {
    PX_LOGW(LOGMOD,
            "the wallet cannot fund a channel of %llu (balance %llu): fund "
            "the gateway's wallet or lower api.channel_deposit",
            (unsigned long long)c->deposit, (unsigned long long)acct.balance);
    px_free(c);
    *err = PX_EFUNDS;
    return NULL;
  }
  px_session_open_t o;
  memcpy(o.provider, provider, 32);
  o.deposit = c->deposit;
  o.expiry_height = c->expiry;
  memcpy(o.salt, c->salt, 32);
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = channel_save(gw, c, 0); /* before the money moves */
  if (!rc) rc = px_session_payload_open(&b, &o);
  if (!rc) rc = gw_submit(gw, PX_TX_CHANNEL_OPEN, b.data, b.len, c->tx);
  px_buf_release(&b);
  if (rc) {
    char path[4300];
    if (!channel_path(gw, c, path, sizeof path)) unlink(path);
    px_free(c);
    *err = rc;
    return NULL;
  }
  char hp[17];
  hex8(provider, hp);
  PX_LOGI(LOGMOD, "opening a payment channel to provider %s (deposit %llu)", hp,
          (unsigned long long)c->deposit);
  c->state = CH_PENDING;
  c->since_ms = px_node_now(gw->node);
  c->next = gw->channels;
  gw->channels = c;
  gw->n_channels++;
  return c;
}

/* ---- requests: shared side ---------------------------------------------- */

/* Under gw->mu. */
static void req_finish_locked(gwreq_t *r, int err) {
  if (r->done) return;
  r->done = 1;
  r->err = err;
  pthread_cond_broadcast(&r->cv);
}

static void req_finish(px_sesgw_t *gw, gwreq_t *r, int err) {
  pthread_mutex_lock(&gw->mu);
  req_finish_locked(r, err);
  pthread_mutex_unlock(&gw->mu);
  r->state = ST_FINISHED;
  if (err && err != PX_ECLOSED && r->mode == PX_SESSION_GENERATE)
    gw->n_failed++;
}

static void req_free(gwreq_t *r) {
  if (!r) return;
  pthread_cond_destroy(&r->cv);
  px_free(r->tokens);
  px_free(r);
}

/* ---- requests: the loop side -------------------------------------------- */

static int stalled(px_sesgw_t *gw, const uint8_t pk[32], uint64_t now) {
  for (size_t i = 0; i < PX_ARRAY_LEN(gw->stalled); i++)
    if (gw->stalled[i].until_ms > now && !memcmp(gw->stalled[i].pk, pk, 32))
      return 1;
  return 0;
}

static void mark_stalled(px_sesgw_t *gw, const uint8_t pk[32], uint64_t now) {
  size_t best = 0;
  for (size_t i = 0; i < PX_ARRAY_LEN(gw->stalled); i++) {
    if (!memcmp(gw->stalled[i].pk, pk, 32)) {
      best = i;
      break;
    }
    if (gw->stalled[i].until_ms < gw->stalled[best].until_ms) best = i;
  }
  memcpy(gw->stalled[best].pk, pk, 32);
  gw->stalled[best].until_ms = now + STALL_PENALTY_MS;
}

static int tried(const gwreq_t *r, const uint8_t pk[32]) {
  for (int i = 0; i < r->n_tried && i < MAX_ATTEMPTS; i++)
    if (!memcmp(r->tried[i], pk, 32)) return 1;
  return 0;
}

static void add_tried(gwreq_t *r, const uint8_t pk[32]) {
  if (tried(r, pk)) return;
  memcpy(r->tried[r->n_tried % MAX_ATTEMPTS], pk, 32);
  r->n_tried++;
}

static int cmp_prov(const void *a, const void *b) {
  const px_provider_rec_t *x = a, *y = b;
  if (x->reg.price != y->reg.price) return x->reg.price < y->reg.price ? -1 : 1;
  uint32_t rx = px_provider_reputation(x), ry = px_provider_reputation(y);
  if (rx != ry) return rx > ry ? -1 : 1;
  return memcmp(x->pk, y->pk, 32);
}

/* The provider for r's next attempt: 0 and *out, PX_EBUSY when none is
 * free now. */
static int pick(px_sesgw_t *gw, gwreq_t *r, uint64_t now,
                px_provider_rec_t *out) {
  px_provider_rec_t *list = NULL;
  size_t n = 0, k = 0;
  int rc = px_market_providers(state(gw), &list, &n);
  if (rc) return rc == PX_ENOTFOUND ? PX_EBUSY : rc;
  for (size_t i = 0; i < n; i++) {
    const px_provider_rec_t *p = &list[i];
    if (!p->active || p->reg.price > gw->max_price ||
        !memcmp(p->pk, gw->m->key.pk, 32) || tried(r, p->pk) ||
        stalled(gw, p->pk, now) ||
        (r->mode == PX_SESSION_REPLAY &&
         !memcmp(p->pk, r->audited.provider, 32)))
      continue;
    list[k++] = *p;
  }
  if (!k) {
    px_free(list);
    return PX_EBUSY;
  }
  qsort(list, k, sizeof *list, cmp_prov);
  size_t tier = 1;
  while (tier < k && list[tier].reg.price == list[0].reg.price &&
         px_provider_reputation(&list[tier]) ==
             px_provider_reputation(&list[0]))
    tier++;
  uint64_t *rr = r->mode == PX_SESSION_REPLAY ? &gw->rr_audit : &gw->rr;
  *out = list[(*rr)++ % tier];
  px_free(list);
  return 0;
}

static void send_cancel(px_sesgw_t *gw, gwreq_t *r) {
  px_ses_cancel_t c;
  memcpy(c.session_id, r->sid, 32);
  px_buf_t b;
  px_buf_init(&b, 0);
  uint64_t id;
  if (!px_ses_cancel_encode(&c, &b) &&
      !px_p2p_request(gw->m->env.p2p, r->provider, PX_SES_METHOD_CANCEL, b.data,
                      b.len, 0, px_node_now(gw->node), &id))
    gw->side[gw->side_at++ % SIDE_REQS] = id;
  px_buf_release(&b);
}

/* Owe the provider for n more tokens of this attempt (the OPEN's tokens
 * with the first). */
static void owe(px_sesgw_t *gw, gwreq_t *r, uint32_t n) {
  uint64_t units = (uint64_t)n + (r->prompt_paid ? 0 : r->n_open);
  uint64_t cost;
  if (px_ses_cost(r->ppt, units, &cost)) cost = UINT64_MAX;
  r->prompt_paid = 1;
  channel_t *c = r->ch;
  c->owed = c->owed > UINT64_MAX - cost ? UINT64_MAX : c->owed + cost;
  r->n_paid += n;
  r->since_receipt += n;
  if (r->since_receipt >= RECEIPT_EVERY) {
    r->since_receipt = 0;
    channel_sign(gw, c, r->ppt);
  }
}

/* Pay the attempt's tokens below sequence index upto.  A stream pays what
 * its client has been given (n_used), so a provider runs at most its
 * credit window ahead of the client and one whose client hangs up is paid
 * for what was delivered. */
static void pay_upto(px_sesgw_t *gw, gwreq_t *r, uint32_t upto) {
  if (!r->ch || upto <= r->n_open) return;
  uint32_t n = upto - r->n_open;
  if (n > r->n_paid) owe(gw, r, n - r->n_paid);
}

/* End the current attempt: pay up to index upto, sign, free the
 * reservation. */
static void attempt_end(px_sesgw_t *gw, gwreq_t *r, uint32_t upto) {
  if (r->ch) {
    pay_upto(gw, r, upto);
    r->ch->reserved -= PX_MIN(r->ch->reserved, r->reserve);
    channel_sign(gw, r->ch, r->ppt);
  }
  r->ch = NULL;
  r->reserve = 0;
  r->req_id = 0;
}

static void send_open(px_sesgw_t *gw, gwreq_t *r, uint64_t now) {
  px_ses_open_t o;
  memset(&o, 0, sizeof o);
  memcpy(o.session_id, r->sid, 32);
  memcpy(o.channel_id, r->ch->id, 32);
  memcpy(o.model, r->model->root, 32);
  o.model_size = r->model->size;
  o.params = r->params;
  o.n_prompt = r->n_prompt;
  o.n_tokens = r->n_open;
  o.tokens = r->tokens;
  o.max_total = r->mode == PX_SESSION_REPLAY ? r->n_open : r->max_total;
  o.price_per_token = r->ppt;
  o.mode = r->mode;
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_ses_open_encode(&o, &b);
  if (!rc)
    rc = px_p2p_request(gw->m->env.p2p, r->provider, PX_SES_METHOD_OPEN, b.data,
                        b.len, OPEN_TIMEOUT_MS, now, &r->req_id);
  px_buf_release(&b);
  if (rc) {
    char hp[17];
    hex8(r->provider, hp);
    PX_LOGW(LOGMOD, "cannot send OPEN to provider %s: %s", hp, px_strerror(rc));
    attempt_end(gw, r, 0);
    r->state = ST_NEW;
    return;
  }
  r->state = ST_OPENING;
}

/* Start an attempt on a fresh provider. */
static void req_start_attempt(px_sesgw_t *gw, gwreq_t *r, uint64_t now) {
  if (r->attempts >= MAX_ATTEMPTS) {
    PX_LOGW(LOGMOD, "a request gave up after %d providers", r->attempts);
    req_finish(gw, r, PX_EBUSY);
    return;
  }
  px_provider_rec_t p;
  int rc = pick(gw, r, now, &p);
  if (rc == PX_EBUSY) {
    if (!r->busy_since_ms) r->busy_since_ms = now;
    if (now - r->busy_since_ms < START_MS &&
        (r->mode != PX_SESSION_REPLAY || now < r->deadline_ms)) {
      r->n_tried = 0; /* every one tried: try them again */
      r->state = ST_RETRY;
      r->retry_ms = now + RETRY_MS;
      return;
    }
  }
  r->busy_since_ms = 0;
  if (rc) {
    PX_LOGW(LOGMOD, "no provider can serve model %s: %s", r->model->name,
            px_strerror(rc));
    req_finish(gw, r, rc);
    return;
  }
  uint64_t ppt, need;
  if ((rc = px_ses_price_per_token(p.reg.price, &r->model->cfg, &ppt)) ||
      (rc = px_ses_cost(ppt,
                        r->mode == PX_SESSION_REPLAY ? r->n_have : r->max_total,
                        &need))) {
    add_tried(r, p.pk);
    r->state = ST_NEW;
    return;
  }
  int err = 0;
  channel_t *c = channel_for(gw, p.pk, need, &err);
  if (!c) {
    req_finish(gw, r, err);
    return;
  }
  r->attempts++;
  add_tried(r, p.pk);
  memcpy(r->provider, p.pk, 32);
  randombytes_buf(r->sid, 32);
  r->ch = c;
  r->ppt = ppt;
  r->reserve = need;
  c->reserved += need;
  pthread_mutex_lock(&gw->mu);
  r->n_open = r->n_have;
  pthread_mutex_unlock(&gw->mu);
  r->n_recv = r->n_paid = r->since_receipt = r->unknown_retries = 0;
  r->prompt_paid = 0;
  if (c->state == CH_PENDING) {
    r->state = ST_CHANNEL;
    return;
  }
  send_open(gw, r, now);
}

static void req_advance(px_sesgw_t *gw, gwreq_t *r, uint64_t now) {
  if (r->state == ST_NEW) req_start_attempt(gw, r, now);
}

/* The attempt failed: this provider is done for r; try another. */
static void attempt_failed(px_sesgw_t *gw, gwreq_t *r, uint64_t now) {
  attempt_end(gw, r, r->n_have); /* what it sent reaches the client */
  r->state = ST_NEW;
  req_advance(gw, r, now);
}

static void start_audit(px_sesgw_t *gw, const gwreq_t *r, uint64_t now) {
  gwreq_t *a = px_calloc(1, sizeof *a);
  if (!a || !(a->tokens = px_malloc(r->n_have * sizeof *a->tokens))) {
    px_free(a);
    return;
  }
  a->gw = gw;
  a->model = r->model;
  a->params = r->params;
  memcpy(a->tokens, r->tokens, r->n_have * sizeof *a->tokens);
  a->n_prompt = r->n_prompt;
  a->n_have = a->max_total = r->n_have;
  a->mode = PX_SESSION_REPLAY;
  a->audited = r->commit;
  a->conn_released = 1; /* nobody waits for it */
  a->in_loop = 1;
  a->created_ms = now;
  a->deadline_ms = now + AUDIT_MS;
  cond_init_mono(&a->cv);
  a->next = gw->reqs;
  gw->reqs = a;
  gw->n_audits++;
  char hp[17];
  hex8(r->commit.provider, hp);
  PX_LOGI(LOGMOD, "auditing a session of provider %s (%u tokens) by replay", hp,
          r->n_have);
  req_advance(gw, a, now);
}

static void submit_dispute(px_sesgw_t *gw, const gwreq_t *a) {
  uint8_t *model = NULL;
  size_t mlen = 0;
  int rc = px_blobstore_read(gw->m->blobs, a->audited.model, &model, &mlen);
  px_buf_t b;
  px_buf_init(&b, 0);
  if (!rc) {
    px_session_dispute_t d;
    memset(&d, 0, sizeof d);
    d.commit = a->audited;
    d.tokens = a->tokens;
    d.model = model;
    rc = px_session_payload_dispute(&b, &d);
  }
  dispute_t *slot = NULL;
  for (size_t i = 0; i < PX_ARRAY_LEN(gw->disputes) && !slot; i++)
    if (!gw->disputes[i].used) slot = &gw->disputes[i];
  uint8_t tx[32];
  if (!rc) rc = gw_submit(gw, PX_TX_SESSION_DISPUTE, b.data, b.len, tx);
  char hp[17];
  hex8(a->audited.provider, hp);
  if (rc) {
    PX_LOGE(LOGMOD, "cannot dispute the session of provider %s: %s", hp,
            px_strerror(rc));
  } else {
    gw->n_disputes++;
    PX_LOGW(LOGMOD,
            "audit failed: provider %s's session differs from the replay; "
            "SESSION_DISPUTE submitted",
            hp);
    if (slot) {
      memcpy(slot->tx, tx, 32);
      memcpy(slot->session_id, a->audited.session_id, 32);
      memcpy(slot->provider, a->audited.provider, 32);
      slot->used = 1;
    }
  }
  px_buf_release(&b);
  px_free(model);
}

/* ---- messages from providers -------------------------------------------- */

static gwreq_t *find_session(px_sesgw_t *gw, const uint8_t sid[32],
                             const uint8_t peer[32]) {
  for (gwreq_t *r = gw->reqs; r; r = r->next)
    if ((r->state == ST_STREAMING || r->state == ST_OPENING) &&
        !memcmp(r->sid, sid, 32) && !memcmp(r->provider, peer, 32))
      return r;
  return NULL;
}

int px_sesgw_on_tokens(px_market_t *m, const uint8_t peer[PX_PK_LEN],
                       const px_ses_tokens_t *t) {
  px_sesgw_t *gw = m ? m->sesgw : NULL;
  if (!gw) return 0;
  gwreq_t *r = find_session(gw, t->session_id, peer);
  if (!r) return 1; /* a cancelled or replaced session: dropped */
  if (r->mode != PX_SESSION_GENERATE) return 1;
  uint32_t have = r->n_have; /* only the loop writes it */
  if (t->first > have || (uint64_t)t->first + t->n <= have) return 1;
  uint32_t from = have - t->first, add = 0;
  for (uint32_t i = from; i < t->n && have + add < r->max_total; i++) {
    int32_t tok = t->tokens[i];
    if (tok < 0 || tok >= r->model->cfg.vocab_size || tok == PX_SESSION_BOS) {
      char hp[17];
      hex8(peer, hp);
      PX_LOGW(LOGMOD, "provider %s sent token %d, not a generated token", hp,
              tok);
      break;
    }
    r->tokens[have + add++] = tok;
  }
  if (!add) return 1;
  r->state = ST_STREAMING;
  r->last_ms = px_node_now(gw->node);
  pthread_mutex_lock(&gw->mu);
  r->n_have = have + add;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&gw->mu);
  gw->n_tokens += add;
  r->n_recv += add;
  flush(gw);
  return 1;
}

static int commit_ok(const gwreq_t *r, const px_session_commit_t *c,
                     const uint8_t peer[32], uint8_t mode) {
  if (px_session_commit_verify(c) || memcmp(c->provider, peer, 32) ||
      memcmp(c->session_id, r->sid, 32) ||
      memcmp(c->channel_id, r->ch->id, 32) ||
      memcmp(c->model, r->model->root, 32) || c->model_size != r->model->size ||
      c->mode != mode || c->n_prompt != r->n_prompt ||
      c->params.seed != r->params.seed ||
      memcmp(&c->params.temperature, &r->params.temperature, 4) ||
      memcmp(&c->params.top_p, &r->params.top_p, 4))
    return 0;
  /* a replay commits to the audited tokens up to its first mismatch and
   * its own token there (session_provider.c), so it may be shorter */
  if (mode == PX_SESSION_REPLAY)
    return c->n_forced == 0 && c->n_tokens >= r->n_prompt &&
           c->n_tokens <= r->n_have;
  /* a resumed session vouches for the tokens it sampled, after n_forced */
  if (c->n_tokens != r->n_have || c->n_forced != r->n_open - r->n_prompt)
    return 0;
  uint8_t h[32];
  px_session_tokens_hash(r->tokens, r->n_have, h);
  return !memcmp(h, c->tokens_hash, 32);
}

int px_sesgw_on_done(px_market_t *m, const uint8_t peer[PX_PK_LEN],
                     const px_ses_done_t *d) {
  px_sesgw_t *gw = m ? m->sesgw : NULL;
  if (!gw) return 0;
  gwreq_t *r = find_session(gw, d->session_id, peer);
  if (!r) return 1;
  uint64_t now = px_node_now(gw->node);
  char hp[17];
  hex8(peer, hp);
  if (d->finish == PX_SES_FINISH_ERROR || d->finish == PX_SES_FINISH_CREDIT) {
    PX_LOGW(LOGMOD, "provider %s ended a session early (%s%s%s)", hp,
            px_ses_finish_name(d->finish), d->message[0] ? ": " : "",
            d->message);
    if (d->finish == PX_SES_FINISH_CREDIT && r->ch) r->ch->state = CH_DEAD;
    attempt_failed(gw, r, now);
    flush(gw);
    return 1;
  }
  if (r->mode == PX_SESSION_REPLAY) {
    int ok = d->finish == PX_SES_FINISH_REPLAY &&
             commit_ok(r, &d->commit, peer, PX_SESSION_REPLAY);
    if (!ok) {
      PX_LOGW(LOGMOD, "auditor %s sent a bad replay commitment", hp);
      attempt_failed(gw, r, now);
      flush(gw);
      return 1;
    }
    owe(gw, r, 0); /* the replay: n_open tokens */
    attempt_end(gw, r, 0);
    if (memcmp(d->commit.tokens_hash, r->audited.tokens_hash, 32)) {
      gw->n_audits_failed++;
      submit_dispute(gw, r);
    } else {
      PX_LOGI(LOGMOD, "audit passed (replayed by %s)", hp);
    }
    req_finish(gw, r, 0);
    flush(gw);
    return 1;
  }
  if (!commit_ok(r, &d->commit, peer, PX_SESSION_GENERATE)) {
    PX_LOGW(LOGMOD,
            "provider %s's commitment does not match the %u tokens it sent; "
            "the session is not audited",
            hp, r->n_have);
  } else {
    r->commit = d->commit;
    r->have_commit = 1;
  }
  pay_upto(gw, r, r->n_have);         /* the client gets them all */
  if (!r->prompt_paid) owe(gw, r, 0); /* BOS at once: the prompt only */
  attempt_end(gw, r, r->n_have);
  pthread_mutex_lock(&gw->mu);
  r->finish = d->finish;
  req_finish_locked(r, 0);
  pthread_mutex_unlock(&gw->mu);
  r->state = ST_FINISHED;
  gw->n_sessions++;
  if (r->have_commit && gw->audit > 0 &&
      (gw->audit >= 1 ||
       randombytes_uniform(1000000) < (uint32_t)(gw->audit * 1e6)))
    start_audit(gw, r, now);
  flush(gw);
  return 1;
}

int px_sesgw_on_response(px_market_t *m, const px_p2p_fx_t *fx) {
  px_sesgw_t *gw = m ? m->sesgw : NULL;
  if (!gw) return 0;
  for (size_t i = 0; i < SIDE_REQS; i++)
    if (gw->side[i] && gw->side[i] == fx->req_id) {
      gw->side[i] = 0;
      if (fx->err)
        PX_LOGD(LOGMOD, "a receipt or cancel was refused: %s",
                px_strerror(fx->err));
      return 1;
    }
  gwreq_t *r = gw->reqs;
  while (r && !((r->state == ST_OPENING || r->state == ST_STREAMING) &&
                r->req_id && r->req_id == fx->req_id))
    r = r->next;
  if (!r) return 0;
  if (r->state == ST_STREAMING && !fx->err) return 1; /* tokens came first */
  uint64_t now = px_node_now(gw->node);
  char hp[17];
  hex8(r->provider, hp);
  px_ses_open_reply_t rep;
  int rc = fx->err
               ? fx->err
               : px_ses_open_reply_decode(fx->data.data, fx->data.len, &rep);
  if (rc) {
    PX_LOGW(LOGMOD, "OPEN to provider %s failed: %s", hp, px_strerror(rc));
    attempt_failed(gw, r, now);
    flush(gw);
    return 1;
  }
  if (rep.reason == PX_SES_OK) {
    r->state = ST_STREAMING;
    r->last_ms = now;
    r->first_deadline_ms = now + gw->stall_ms +
                           r->model->size / FETCH_BYTES_PER_MS +
                           (r->mode == PX_SESSION_REPLAY ? AUDIT_MS : 0);
    return 1;
  }
  if (rep.reason == PX_SES_UNKNOWN_CHANNEL &&
      r->unknown_retries++ < MAX_UNKNOWN_CHANNEL) {
    r->state = ST_WAIT_BLOCK; /* its chain is behind ours */
    return 1;
  }
  PX_LOGI(LOGMOD, "provider %s refused a session: %s (%s)", hp,
          px_ses_reason_name(rep.reason), rep.message);
  if (rep.reason == PX_SES_BUSY) r->attempts--; /* full, not failing */
  attempt_failed(gw, r, now);
  flush(gw);
  return 1;
}

/* ---- loop events --------------------------------------------------------- */

/* New requests and the connection threads' flags. */
static void on_kick(px_node_t *n, px_p2p_t *p2p, void *ud) {
  (void)n;
  (void)p2p;
  px_sesgw_t *gw = ud;
  uint64_t now = px_node_now(gw->node);
  pthread_mutex_lock(&gw->mu);
  gwreq_t *in = gw->inbox;
  gw->inbox = NULL;
  pthread_mutex_unlock(&gw->mu);
  while (in) {
    gwreq_t *next = in->next;
    in->in_loop = 1;
    in->created_ms = now;
    in->deadline_ms = now + START_MS;
    in->next = gw->reqs;
    gw->reqs = in;
    req_advance(gw, in, now);
    in = next;
  }
  px_sesgw_tick(gw, now);
}

static void kick(px_sesgw_t *gw) {
  if (px_node_call(gw->node, on_kick, gw))
    PX_LOGW(LOGMOD, "cannot reach the node loop (out of memory)");
}

void px_sesgw_tick(px_sesgw_t *gw, uint64_t now) {
  if (!gw || atomic_load(&gw->closing)) return;
  for (gwreq_t **pp = &gw->reqs; *pp;) {
    gwreq_t *r = *pp;
    pthread_mutex_lock(&gw->mu);
    int cancel = r->want_cancel, released = r->conn_released;
    uint32_t used = PX_MIN(r->n_used, r->n_have);
    pthread_mutex_unlock(&gw->mu);
    if (r->mode == PX_SESSION_GENERATE && r->state == ST_STREAMING) {
      pay_upto(gw, r, used);
      if (r->n_have - used >= RECEIPT_EVERY)
        r->last_ms = now; /* the client is the slow one, not the provider */
    }
    if (cancel && r->state != ST_FINISHED) {
      if (r->state == ST_STREAMING || r->state == ST_OPENING)
        send_cancel(gw, r);
      attempt_end(gw, r, used);
      req_finish(gw, r, PX_ECLOSED); /* the client's choice */
    }
    switch (r->state) {
    case ST_RETRY:
      if (now >= r->retry_ms) {
        r->state = ST_NEW;
        req_advance(gw, r, now);
      }
      break;
    case ST_CHANNEL:
      if (r->ch->state == CH_DEAD || now > r->ch->since_ms + CHANNEL_WAIT_MS) {
        r->ch->state = CH_DEAD;
        attempt_end(gw, r, 0);
        req_finish(gw, r, PX_ETIMEOUT);
      }
      break;
    case ST_STREAMING: {
      uint64_t due =
          r->n_recv ? r->last_ms + gw->stall_ms
                    : PX_MAX(r->first_deadline_ms, r->last_ms + gw->stall_ms);
      if (now > due) {
        char hp[17];
        hex8(r->provider, hp);
        PX_LOGW(LOGMOD,
                "provider %s stalled (nothing for %llu ms after %u tokens): "
                "replacing it",
                hp, (unsigned long long)(now - r->last_ms), r->n_recv);
        send_cancel(gw, r);
        mark_stalled(gw, r->provider, now);
        gw->n_stalls++;
        attempt_failed(gw, r, now);
      }
      break;
    }
    default:
      break;
    }
    if (r->state != ST_FINISHED && r->mode == PX_SESSION_REPLAY &&
        now > r->deadline_ms) {
      attempt_end(gw, r, 0);
      req_finish(gw, r, PX_ETIMEOUT);
    }
    if (r->state == ST_FINISHED && released) {
      *pp = r->next;
      req_free(r);
      continue;
    }
    pp = &r->next;
  }
}

void px_sesgw_on_block(px_sesgw_t *gw, const px_ledger_state_t *s,
                       const px_block_t *b, const px_tx_result_t *res) {
  if (!gw || atomic_load(&gw->closing)) return;
  uint64_t now = px_node_now(gw->node);
  for (channel_t *c = gw->channels; c; c = c->next) {
    if (c->state != CH_PENDING) continue;
    px_session_channel_t rec;
    if (!px_session_chain_channel(s, c->id, &rec)) {
      c->state = CH_OPEN;
      continue;
    }
    for (size_t i = 0; i < b->n_txs; i++)
      if (!memcmp(res[i].tx_hash, c->tx, 32) && res[i].code) {
        PX_LOGW(LOGMOD, "CHANNEL_OPEN failed on chain: %s",
                px_strerror(res[i].code));
        c->state = CH_DEAD;
      }
  }
  for (size_t d = 0; d < PX_ARRAY_LEN(gw->disputes); d++) {
    dispute_t *x = &gw->disputes[d];
    if (!x->used) continue;
    for (size_t i = 0; i < b->n_txs; i++) {
      if (memcmp(res[i].tx_hash, x->tx, 32)) continue;
      char hp[17];
      hex8(x->provider, hp);
      if (res[i].code) {
        PX_LOGW(LOGMOD, "SESSION_DISPUTE against %s refused: %s", hp,
                px_strerror(res[i].code));
      } else {
        gw->n_disputes_won++;
        PX_LOGW(LOGMOD, "SESSION_DISPUTE against %s upheld: it was slashed",
                hp);
      }
      x->used = 0;
    }
  }
  for (gwreq_t *r = gw->reqs; r; r = r->next) {
    if (r->state == ST_CHANNEL && r->ch->state == CH_OPEN)
      send_open(gw, r, now);
    else if (r->state == ST_WAIT_BLOCK)
      send_open(gw, r, now);
    else if (r->state == ST_CHANNEL && r->ch->state == CH_DEAD) {
      attempt_end(gw, r, 0);
      req_finish(gw, r, PX_EFUNDS);
    }
  }
  flush(gw);
}

void px_sesgw_status_json(px_sesgw_t *gw, px_buf_t *out) {
  if (!gw) {
    px_buf_printf(out, "null");
    return;
  }
  size_t active = 0;
  for (gwreq_t *r = gw->reqs; r; r = r->next)
    active += r->state != ST_FINISHED;
  uint64_t signed_sum = 0, claimed = 0;
  const px_ledger_state_t *s = state(gw);
  for (channel_t *c = gw->channels; c; c = c->next) {
    px_session_channel_t rec;
    signed_sum += c->signed_;
    if (!px_session_chain_channel(s, c->id, &rec)) claimed += rec.claimed;
  }
  px_buf_printf(
      out,
      "{\"models\":%zu,\"active\":%zu,\"sessions\":%llu,"
      "\"tokens\":%llu,\"stalls_replaced\":%llu,\"audits\":%llu,"
      "\"audits_failed\":%llu,\"disputes\":%llu,"
      "\"disputes_upheld\":%llu,\"failed\":%llu,\"channels\":%llu,"
      "\"signed\":%llu,\"claimed\":%llu}",
      gw->n_models, active, (unsigned long long)gw->n_sessions,
      (unsigned long long)gw->n_tokens, (unsigned long long)gw->n_stalls,
      (unsigned long long)gw->n_audits, (unsigned long long)gw->n_audits_failed,
      (unsigned long long)gw->n_disputes,
      (unsigned long long)gw->n_disputes_won, (unsigned long long)gw->n_failed,
      (unsigned long long)gw->n_channels, (unsigned long long)signed_sum,
      (unsigned long long)claimed);
}

/* ---- the backend (connection threads) ----------------------------------- */

static size_t g_n_models(void *ud) { return ((px_sesgw_t *)ud)->n_models; }

static const char *g_model_name(void *ud, size_t i) {
  px_sesgw_t *gw = ud;
  return i < gw->n_models ? gw->models[i].name : NULL;
}

static const model_t *find_model(px_sesgw_t *gw, const char *name) {
  for (size_t i = 0; i < gw->n_models; i++)
    if (!strcmp(gw->models[i].name, name)) return &gw->models[i];
  return NULL;
}

static int g_render(void *ud, const px_api_request_t *req, px_buf_t *out) {
  const model_t *m = find_model(ud, req->model);
  if (!m) return PX_ENOTFOUND;
  return px_api_template_render(&m->tpl, req, out);
}

static int g_generate(void *ud, const char *model, const char *prompt,
                      const px_api_gen_opts_t *o, px_api_piece_fn cb,
                      void *cbud, int *n_prompt, int *n_gen,
                      const char **finish) {
  px_sesgw_t *gw = ud;
  *n_prompt = *n_gen = 0;
  *finish = "length";
  const model_t *m = find_model(gw, model);
  if (!m) return PX_ENOTFOUND;
  if (atomic_load(&gw->closing)) return PX_ECLOSED;
  px_session_params_t params = {o->temperature, o->top_p, o->seed};
  int rc = px_session_params_check(&params);
  if (rc) return rc;
  size_t plen = strlen(prompt), n = 0;
  int *ptoks = px_malloc((plen + 3) * sizeof(int));
  if (!ptoks) return PX_ENOMEM;
  rc = px_tokenizer_encode(m->tok, prompt, plen, 1, 0, ptoks, plen + 3, &n);
  if (rc) {
    px_free(ptoks);
    return rc;
  }
  *n_prompt = (int)n;
  if ((int)n >= m->cfg.seq_len || n >= PX_SES_MAX_TOKENS) {
    px_free(ptoks);
    return PX_ETOOBIG;
  }
  /* as local.c: positions n-1 .. seq_len-1 sample, max_tokens at most */
  uint32_t room = (uint32_t)(m->cfg.seq_len - (int)n + 1);
  uint32_t max = o->max_tokens > 0 && (uint32_t)o->max_tokens < room
                     ? (uint32_t)o->max_tokens
                     : room;
  uint32_t max_total = (uint32_t)PX_MIN((uint64_t)n + max, PX_SES_MAX_TOKENS);
  gwreq_t *r = px_calloc(1, sizeof *r);
  if (!r || !(r->tokens = px_malloc(max_total * sizeof *r->tokens))) {
    px_free(r);
    px_free(ptoks);
    return PX_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    r->tokens[i] = ptoks[i];
  px_free(ptoks);
  r->gw = gw;
  r->model = m;
  r->params = params;
  r->n_prompt = r->n_have = (uint32_t)n;
  r->max_total = max_total;
  r->mode = PX_SESSION_GENERATE;
  cond_init_mono(&r->cv);
  pthread_mutex_lock(&gw->mu);
  r->next = gw->inbox;
  gw->inbox = r;
  pthread_mutex_unlock(&gw->mu);
  kick(gw);

  uint32_t used = (uint32_t)n, kicked = (uint32_t)n;
  int stopped = 0;
  rc = 0;
  pthread_mutex_lock(&gw->mu);
  for (;;) {
    while (r->n_have == used && !r->done && !atomic_load(&gw->closing)) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_nsec += WAIT_SLICE_MS * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&r->cv, &gw->mu, &ts);
    }
    if (r->n_have > used) {
      uint32_t upto = r->n_have;
      pthread_mutex_unlock(&gw->mu);
      for (; used < upto && !stopped; used++) {
        const char *s;
        size_t len;
        if (px_api_token_text(m->tok, r->tokens[used - 1], r->tokens[used], &s,
                              &len) &&
            cb(cbud, s, len))
          stopped = 1;
      }
      pthread_mutex_lock(&gw->mu);
      r->n_used = used;
      if (stopped) break;
      if (used - kicked >= RECEIPT_EVERY) { /* time for a receipt */
        kicked = used;
        pthread_mutex_unlock(&gw->mu);
        kick(gw);
        pthread_mutex_lock(&gw->mu);
      }
      continue;
    }
    if (r->done) {
      rc = r->err;
      break;
    }
    rc = PX_ECLOSED; /* the node is stopping */
    break;
  }
  if (!r->done) r->want_cancel = 1;
  uint8_t fin = r->finish;
  int done = r->done;
  r->conn_released = 1;
  pthread_mutex_unlock(&gw->mu);
  if (!atomic_load(&gw->closing)) kick(gw);
  *n_gen = (int)(used - n);
  if (stopped || (done && !rc && fin == PX_SES_FINISH_STOP)) *finish = "stop";
  return stopped ? 0 : rc;
}

/* ---- lifecycle ----------------------------------------------------------- */

static int cfg_check(px_sesgw_t *gw, const px_config_t *cfg, char *errmsg,
                     size_t errcap) {
  const char *a = px_config_get_str(cfg, "api.audit", "0.05");
  char *end;
  double v = strtod(a, &end);
  if (!*a || *end || !(v >= 0 && v <= 1)) {
    snprintf(errmsg, errcap,
             "config: api.audit must be a probability from 0 to 1 (e.g. "
             "0.05)");
    return PX_ECONFIG;
  }
  gw->audit = v;
  if (px_config_get_u64(cfg, "api.stall_ms", 3000, &gw->stall_ms) ||
      gw->stall_ms < 50 || gw->stall_ms > 600000) {
    snprintf(errmsg, errcap,
             "config: api.stall_ms must be a whole number of ms from 50 to "
             "600000");
    return PX_ECONFIG;
  }
  if (px_config_get_u64(cfg, "api.max_price", UINT64_MAX, &gw->max_price)) {
    snprintf(errmsg, errcap,
             "config: api.max_price must be a whole number (price per work "
             "unit)");
    return PX_ECONFIG;
  }
  if (px_config_get_u64(cfg, "api.channel_deposit", 100000000000ull,
                        &gw->deposit) ||
      !gw->deposit) {
    snprintf(errmsg, errcap,
             "config: api.channel_deposit must be a positive whole number");
    return PX_ECONFIG;
  }
  return 0;
}

static int model_load(px_sesgw_t *gw, const px_model_entry_t *e, model_t *m,
                      char *errmsg, size_t errcap) {
  snprintf(m->name, sizeof m->name, "%s", e->name);
  memcpy(m->root, e->model, 32);
  memcpy(m->tok_root, e->tokenizer, 32);
  m->size = e->model_size;
  int rc = px_api_template_set(&m->tpl, e->tpl.prefix, e->tpl.message,
                               e->tpl.suffix);
  if (rc) return rc;
  px_blobstore_t *bs = gw->m->blobs;
  if (!px_blobstore_has(bs, e->model, e->model_size) ||
      !px_blobstore_has(bs, e->tokenizer, e->tokenizer_size)) {
    snprintf(errmsg, errcap,
             "model '%s' is registered but its files are not in %s/blobs: "
             "run `plexus model add` again",
             e->name, gw->home);
    return PX_ENOENT;
  }
  char path[4400];
  px_llama2c_t *ck = NULL;
  rc = px_blobstore_path(bs, e->model, path, sizeof path);
  if (!rc) rc = px_llama2c_open(path, &ck);
  if (!rc) m->cfg = ck->cfg;
  px_llama2c_free(ck);
  uint8_t *tp = NULL;
  size_t tn = 0;
  if (!rc) rc = px_blobstore_read(bs, e->tokenizer, &tp, &tn);
  if (!rc) rc = px_tokenizer_load_mem(tp, tn, m->cfg.vocab_size, &m->tok);
  px_free(tp);
  if (rc)
    snprintf(errmsg, errcap,
             "model '%s': cannot load it from the blob store: %s", e->name,
             px_strerror(rc));
  return rc;
}

int px_sesgw_open(px_market_t *m, struct px_node *node, const px_config_t *cfg,
                  px_sesgw_t **out, char *errmsg, size_t errcap) {
  *out = NULL;
  errmsg[0] = 0;
  px_sesgw_t *gw = px_calloc(1, sizeof *gw);
  if (!gw) return PX_ENOMEM;
  gw->m = m;
  gw->node = node;
  snprintf(gw->home, sizeof gw->home, "%s", m->home);
  pthread_mutex_init(&gw->mu, NULL);
  atomic_init(&gw->closing, 0);
  px_models_t reg = {0};
  int rc = cfg_check(gw, cfg, errmsg, errcap);
  if (rc) goto fail;
  char path[4200];
  snprintf(path, sizeof path, "%s/wallet.key", gw->home);
  rc = px_keyfile_read(path, &gw->payer);
  if (rc == PX_ENOENT) {
    gw->payer = m->key;
    rc = 0;
  } else if (rc) {
    snprintf(errmsg, errcap, "cannot read the gateway's wallet %s: %s", path,
             px_strerror(rc));
    goto fail;
  }
  if ((rc = px_models_load(gw->home, &reg, errmsg, errcap))) goto fail;
  if (!reg.n) {
    snprintf(errmsg, errcap,
             "%s/%s lists no models: add one with `plexus model add`", gw->home,
             PX_MODELS_FILE);
    rc = PX_EINVAL;
    goto fail;
  }
  if (!(gw->models = px_calloc(reg.n, sizeof *gw->models))) {
    rc = PX_ENOMEM;
    goto fail;
  }
  gw->n_models = reg.n;
  for (size_t i = 0; i < reg.n; i++)
    if ((rc = model_load(gw, &reg.e[i], &gw->models[i], errmsg, errcap)))
      goto fail;
  if ((rc = channels_load(gw, errmsg, errcap))) goto fail;
  px_models_release(&reg);
  gw->be.ud = gw;
  gw->be.n_models = g_n_models;
  gw->be.model_name = g_model_name;
  gw->be.render_prompt = g_render;
  gw->be.generate = g_generate;
  m->sesgw = gw;
  char hp[65];
  px_hex_encode(gw->payer.pk, 32, hp);
  PX_LOGI(LOGMOD,
          "network inference: %zu model%s, paid by wallet %.16s, audit %g, "
          "stall %llu ms",
          gw->n_models, gw->n_models == 1 ? "" : "s", hp, gw->audit,
          (unsigned long long)gw->stall_ms);
  *out = gw;
  return 0;
fail:
  px_models_release(&reg);
  px_sesgw_free(gw);
  return rc;
}

px_api_backend_t *px_sesgw_backend(px_sesgw_t *gw) {
  return gw ? &gw->be : NULL;
}

void px_sesgw_close(px_sesgw_t *gw) {
  if (!gw) return;
  atomic_store(&gw->closing, 1);
  pthread_mutex_lock(&gw->mu);
  for (gwreq_t *r = gw->reqs; r; r = r->next)
    req_finish_locked(r, PX_ECLOSED);
  for (gwreq_t *r = gw->inbox; r; r = r->next)
    req_finish_locked(r, PX_ECLOSED);
  pthread_mutex_unlock(&gw->mu);
}

void px_sesgw_free(px_sesgw_t *gw) {
  if (!gw) return;
  if (gw->m && gw->m->sesgw == gw) gw->m->sesgw = NULL;
  for (gwreq_t *lists[2] = {gw->reqs, gw->inbox}, **l = lists; l < lists + 2;
       l++)
    for (gwreq_t *r = *l; r;) {
      gwreq_t *next = r->next;
      req_free(r);
      r = next;
    }
  for (channel_t *c = gw->channels; c;) {
    channel_t *next = c->next;
    px_free(c);
    c = next;
  }
  for (size_t i = 0; i < gw->n_models; i++) {
    px_tokenizer_free(gw->models[i].tok);
    px_api_template_release(&gw->models[i].tpl);
  }
  px_free(gw->models);
  pthread_mutex_destroy(&gw->mu);
  sodium_memzero(&gw->payer, sizeof gw->payer);
  px_free(gw);
}
