/*
 * upow.c — the Useful Proof of Work contract (id 4; plexus/upow_chain.h,
 * docs/upow.md "The uPoW contract").
 *
 * State (namespace 04):
 *   04 'E'            the open epoch's record (141 bytes, below)
 *   04 'N'            the parent network's canonical encoding
 *   04 'B'            the best valid network of the open epoch (encoding)
 *   04 'L'            the open epoch's valid solutions, 89 bytes each
 *   04 'D'            u64 deposits held by those solutions (a supply term)
 *   04 'M' be64(e)    what epoch e published (112 bytes)
 *   04 'W' pk         miner stats: submitted, valid, rejected, rewards,
 *                     forfeited (5 x u64)
 *   04 'R' H(s|sol)   receipt of a judged SUBMIT: u64 height, i32 code
 * All integers little-endian.
 *
 * Why the rules are shaped this way:
 *  - The task is fixed at the epoch's first block and the evaluation seed
 *    is that block's hash, known only once it is committed, so no work can
 *    start before the task is fixed (the proposer of that block could grind
 *    its hash; it cannot know the candidates' outcomes without doing the
 *    work, and the seed covers a whole subset).
 *  - A judged SUBMIT always succeeds as a transaction, whatever the verdict:
 *    a failing procedure has its writes undone, and the burn of a forfeited
 *    deposit must stay.  The verdict is in the receipt.  What cannot be
 *    judged now (another epoch, not yet revealed, a duplicate, caps) fails
 *    and takes nothing but the fee.
 *  - The best valid network is kept as it is found, so the epoch's end needs
 *    no re-run: begin_block stays cheap.
 *  - The dataset is needed only to check a SUBMIT: a chain nobody mines on
 *    never reads it.  Loading it is deterministic (pinned hash); when it
 *    is missing or differs the check fails with PX_EIO, which stops block
 *    application on that node (loudly) rather than forking it.
 */
#include <pthread.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/model_io.h"
#include "plexus/upow.h"
#include "plexus/upow_chain.h"

#include "ledger/ledger_internal.h"

#include "base/px_internal.h"

#define LOGMOD "upow"
#define K_EPOCH 'E'
#define K_PARENT 'N'
#define K_BEST 'B'
#define K_LIST 'L'
#define K_DEPOSITS 'D'
#define K_PUBLISHED 'M'
#define K_MINER 'W'
#define K_RECEIPT 'R'
#define EPOCH_REC_LEN 141
#define PUB_REC_LEN 112
#define MINER_REC_LEN 40
#define RECEIPT_LEN 12

/* ---- the dataset (once per process) ------------------------------------- */

static pthread_once_t g_data_once = PTHREAD_ONCE_INIT;
static px_upow_data_t g_data;
static int g_data_rc;

static void data_load(void) {
  px_mnist_t m;
  int rc = px_mnist_load(PX_UPOW_DATASET_DIR, "train", &m);
  if (rc) {
    PX_LOGE(LOGMOD,
            "cannot load the uPoW dataset (Fashion-MNIST train split) from "
            "%s: %s; install the Debian package dataset-fashion-mnist",
            PX_UPOW_DATASET_DIR, px_strerror(rc));
    g_data_rc = rc == PX_ENOENT ? PX_ENOENT : rc;
    return;
  }
  px_hash_state_t st;
  uint8_t h[32], want[32];
  px_hash_init(&st);
  px_hash_update(&st, m.images.data, m.images.n);
  px_hash_update(&st, m.labels.data, m.labels.n);
  px_hash_final(&st, h);
  px_hex_decode(PX_UPOW_DATASET_HASH, want, 32);
  if (memcmp(h, want, 32) != 0) {
    char got[65];
    px_hex_encode(h, 32, got);
    PX_LOGE(LOGMOD,
            "the uPoW dataset in %s has hash %s, the chain pins %s: this "
            "node cannot check solutions (reinstall dataset-fashion-mnist)",
            PX_UPOW_DATASET_DIR, got, PX_UPOW_DATASET_HASH);
    px_mnist_release(&m);
    g_data_rc = PX_EAUTH;
    return;
  }
  g_data_rc = px_upow_data_from_mnist(&m, 0, &g_data);
  px_mnist_release(&m);
}

int px_upow_chain_dataset(const px_upow_data_t **out) {
  pthread_once(&g_data_once, data_load);
  *out = g_data_rc ? NULL : &g_data;
  return g_data_rc;
}

void px_upow_chain_dims(px_upow_dims_t *d) { px_upow_dims_default(d); }
void px_upow_chain_params(px_upow_params_t *p) { px_upow_params_default(p); }

/* ---- record encodings -----------------------------------------------------
 */

static void epoch_encode(const px_upow_chain_epoch_t *e, uint8_t *b) {
  px_put_u64le(b, e->epoch);
  px_put_u64le(b + 8, e->start_height);
  b[16] = e->revealed;
  memcpy(b + 17, e->epoch_seed, 32);
  memcpy(b + 49, e->eval_seed, 32);
  px_put_u32le(b + 81, e->margin);
  memcpy(b + 85, e->parent_hash, 32);
  px_put_u32le(b + 117, e->parent_score);
  px_put_u32le(b + 121, e->n_solutions);
  px_put_u32le(b + 125, e->best_score);
  px_put_u64le(b + 129, e->checks_height);
  px_put_u32le(b + 137, e->checks_in_block);
}

static int epoch_decode(const uint8_t *b, size_t n, px_upow_chain_epoch_t *e) {
  if (n != EPOCH_REC_LEN || b[16] > 1) return PX_EIO;
  e->epoch = px_get_u64le(b);
  e->start_height = px_get_u64le(b + 8);
  e->revealed = b[16];
  memcpy(e->epoch_seed, b + 17, 32);
  memcpy(e->eval_seed, b + 49, 32);
  e->margin = px_get_u32le(b + 81);
  memcpy(e->parent_hash, b + 85, 32);
  e->parent_score = px_get_u32le(b + 117);
  e->n_solutions = px_get_u32le(b + 121);
  e->best_score = px_get_u32le(b + 125);
  e->checks_height = px_get_u64le(b + 129);
  e->checks_in_block = px_get_u32le(b + 137);
  return 0;
}

static void pub_encode(const px_upow_chain_published_t *p, uint8_t *b) {
  px_put_u64le(b, p->epoch);
  px_put_u64le(b + 8, p->height);
  memcpy(b + 16, p->net_hash, 32);
  px_put_u32le(b + 48, p->score);
  px_put_u32le(b + 52, p->parent_score);
  px_put_u32le(b + 56, p->margin);
  px_put_u32le(b + 60, p->n_solutions);
  memcpy(b + 64, p->winner, 32);
  px_put_u64le(b + 96, p->nonce);
  px_put_u64le(b + 104, p->reward);
}

static int pub_decode(const uint8_t *b, size_t n,
                      px_upow_chain_published_t *p) {
  if (n != PUB_REC_LEN) return PX_EIO;
  p->epoch = px_get_u64le(b);
  p->height = px_get_u64le(b + 8);
  memcpy(p->net_hash, b + 16, 32);
  p->score = px_get_u32le(b + 48);
  p->parent_score = px_get_u32le(b + 52);
  p->margin = px_get_u32le(b + 56);
  p->n_solutions = px_get_u32le(b + 60);
  memcpy(p->winner, b + 64, 32);
  p->nonce = px_get_u64le(b + 96);
  p->reward = px_get_u64le(b + 104);
  return 0;
}

static void miner_encode(const px_upow_chain_miner_t *m, uint8_t *b) {
  px_put_u64le(b, m->submitted);
  px_put_u64le(b + 8, m->valid);
  px_put_u64le(b + 16, m->rejected);
  px_put_u64le(b + 24, m->rewards);
  px_put_u64le(b + 32, m->forfeited);
}

static int miner_decode(const uint8_t *b, size_t n, px_upow_chain_miner_t *m) {
  if (n != MINER_REC_LEN) return PX_EIO;
  m->submitted = px_get_u64le(b);
  m->valid = px_get_u64le(b + 8);
  m->rejected = px_get_u64le(b + 16);
  m->rewards = px_get_u64le(b + 24);
  m->forfeited = px_get_u64le(b + 32);
  return 0;
}

/* ---- keys ------------------------------------------------------------------
 */

static size_t key1(uint8_t kind, uint8_t *k) {
  k[0] = PX_CONTRACT_UPOW;
  k[1] = kind;
  return 2;
}

static size_t key_pub(uint64_t epoch, uint8_t *k) {
  key1(K_PUBLISHED, k);
  for (int i = 0; i < 8; i++)
    k[2 + i] = (uint8_t)(epoch >> (56 - 8 * i));
  return 10;
}

static size_t key_miner(const uint8_t pk[32], uint8_t *k) {
  key1(K_MINER, k);
  memcpy(k + 2, pk, 32);
  return 34;
}

static size_t key_receipt(const uint8_t sender[32],
                          const px_upow_solution_t *sol, uint8_t *k) {
  px_buf_t b;
  px_buf_init(&b, 0);
  uint8_t enc[PX_UPOW_SOLUTION_LEN];
  memset(enc, 0, sizeof enc);
  if (px_upow_solution_encode(sol, &b) == 0 && b.len == sizeof enc)
    memcpy(enc, b.data, sizeof enc);
  px_buf_release(&b);
  px_hash_state_t st;
  px_hash_init(&st);
  px_hash_update(&st, sender, 32);
  px_hash_update(&st, enc, sizeof enc);
  key1(K_RECEIPT, k);
  px_hash_final(&st, k + 2);
  return 34;
}

/* ---- readers (public) -------------------------------------------------------
 */

static int get(const px_ledger_state_t *s, const uint8_t *k, size_t kl,
               const uint8_t **v, size_t *n) {
  return px_ledger_get(s, k, kl, v, n);
}

int px_upow_chain_epoch(const px_ledger_state_t *s,
                        px_upow_chain_epoch_t *out) {
  uint8_t k[2];
  const uint8_t *v;
  size_t n;
  memset(out, 0, sizeof *out);
  int rc = get(s, k, key1(K_EPOCH, k), &v, &n);
  return rc ? rc : epoch_decode(v, n, out);
}

void px_upow_chain_task_epoch(const px_upow_chain_epoch_t *e,
                              px_upow_epoch_t *out) {
  memset(out, 0, sizeof *out);
  out->epoch = e->epoch;
  memcpy(out->epoch_seed, e->epoch_seed, 32);
  memcpy(out->eval_seed, e->eval_seed, 32);
  out->margin = e->margin;
  px_upow_chain_params(&out->params);
}

static int net_get(const px_ledger_state_t *s, uint8_t kind,
                   px_upow_net_t *out) {
  uint8_t k[2];
  const uint8_t *v;
  size_t n;
  memset(out, 0, sizeof *out);
  int rc = get(s, k, key1(kind, k), &v, &n);
  if (rc) return rc;
  return px_upow_net_decode(v, n, out) ? PX_EIO : 0;
}

int px_upow_chain_parent(const px_ledger_state_t *s, px_upow_net_t *out) {
  return net_get(s, K_PARENT, out);
}

int px_upow_chain_published(const px_ledger_state_t *s, uint64_t epoch,
                            px_upow_chain_published_t *out) {
  uint8_t k[10];
  const uint8_t *v;
  size_t n;
  memset(out, 0, sizeof *out);
  int rc = get(s, k, key_pub(epoch, k), &v, &n);
  return rc ? rc : pub_decode(v, n, out);
}

int px_upow_chain_miner(const px_ledger_state_t *s, const uint8_t pk[32],
                        px_upow_chain_miner_t *out) {
  uint8_t k[34];
  const uint8_t *v;
  size_t n;
  memset(out, 0, sizeof *out);
  int rc = get(s, k, key_miner(pk, k), &v, &n);
  if (rc == PX_ENOTFOUND) return 0;
  return rc ? rc : miner_decode(v, n, out);
}

int px_upow_chain_receipt(const px_ledger_state_t *s, const uint8_t sender[32],
                          const px_upow_solution_t *sol,
                          px_upow_chain_receipt_t *out) {
  uint8_t k[34];
  const uint8_t *v;
  size_t n;
  memset(out, 0, sizeof *out);
  int rc = get(s, k, key_receipt(sender, sol, k), &v, &n);
  if (rc) return rc;
  if (n != RECEIPT_LEN) return PX_EIO;
  out->height = px_get_u64le(v);
  out->code = (int32_t)px_get_u32le(v + 8);
  return 0;
}

uint64_t px_upow_chain_deposits(const px_ledger_state_t *s) {
  uint8_t k[2];
  const uint8_t *v;
  size_t n;
  if (get(s, k, key1(K_DEPOSITS, k), &v, &n) || n != 8) return 0;
  return px_get_u64le(v);
}

int px_upow_payload_submit(px_buf_t *out, const px_upow_solution_t *sol) {
  return px_upow_solution_encode(sol, out);
}

int px_upow_payload_submit_decode(const uint8_t *p, size_t n,
                                  px_upow_solution_t *out) {
  return px_upow_solution_decode(p, n, out);
}

/* ---- writers (contract only) ----------------------------------------------
 */

static int epoch_put(px_ledger_ctx_t *ctx, const px_upow_chain_epoch_t *e) {
  uint8_t k[2], b[EPOCH_REC_LEN];
  epoch_encode(e, b);
  return ctx_put(ctx, k, key1(K_EPOCH, k), b, sizeof b);
}

static int net_put(px_ledger_ctx_t *ctx, uint8_t kind, const px_upow_net_t *n) {
  px_buf_t b;
  px_buf_init(&b, 0);
  uint8_t k[2];
  int rc = px_upow_net_encode(n, &b);
  if (!rc) rc = ctx_put(ctx, k, key1(kind, k), b.data, b.len);
  px_buf_release(&b);
  return rc;
}

static int deposits_put(px_ledger_ctx_t *ctx, uint64_t v) {
  uint8_t k[2], b[8];
  px_put_u64le(b, v);
  return ctx_put(ctx, k, key1(K_DEPOSITS, k), b, 8);
}

static int miner_put(px_ledger_ctx_t *ctx, const uint8_t pk[32],
                     const px_upow_chain_miner_t *m) {
  uint8_t k[34], b[MINER_REC_LEN];
  miner_encode(m, b);
  return ctx_put(ctx, k, key_miner(pk, k), b, sizeof b);
}

static void epoch_seed(uint64_t epoch, const uint8_t prev[32],
                       uint8_t out[32]) {
  px_hash_state_t st;
  uint8_t e8[8];
  px_put_u64le(e8, epoch);
  px_hash_init(&st);
  px_hash_update(&st, "plexus/upow/epoch/v1", 20);
  px_hash_update(&st, e8, 8);
  px_hash_update(&st, prev, 32);
  px_hash_final(&st, out);
}

/* Open epoch `epoch` at header h: the parent is 04 'N'. */
static int epoch_open(px_ledger_ctx_t *ctx, uint64_t epoch, uint32_t margin,
                      const uint8_t parent_hash[32]) {
  px_upow_chain_epoch_t e;
  memset(&e, 0, sizeof e);
  e.epoch = epoch;
  e.start_height = ctx->header->height;
  epoch_seed(epoch, ctx->header->prev_hash, e.epoch_seed);
  e.margin = margin;
  memcpy(e.parent_hash, parent_hash, 32);
  return epoch_put(ctx, &e);
}

static int genesis(px_ledger_ctx_t *ctx, uint64_t epoch) {
  px_upow_dims_t d;
  px_upow_net_t n;
  uint8_t h[32];
  px_upow_chain_dims(&d);
  int rc = px_upow_net_random(&d, PX_UPOW_GENESIS_SEED, &n);
  if (rc) return rc;
  rc = px_upow_net_hash(&n, h);
  if (!rc) rc = net_put(ctx, K_PARENT, &n);
  px_upow_net_release(&n);
  if (!rc) rc = deposits_put(ctx, 0);
  if (!rc) rc = epoch_open(ctx, epoch, PX_UPOW_INITIAL_MARGIN, h);
  return rc;
}

/* Close epoch e: rewards and refunds, publish, new parent. */
static int epoch_close(px_ledger_ctx_t *ctx, const px_upow_chain_epoch_t *e) {
  px_ledger_state_t *s = ctx->s;
  uint8_t k[2];
  const uint8_t *v;
  size_t n = 0;
  px_upow_solution_t *sols = NULL;
  size_t ns = 0;
  int rc = 0;
  if (get(s, k, key1(K_LIST, k), &v, &n) == 0) {
    if (n % PX_UPOW_SOLUTION_LEN) return PX_EIO;
    ns = n / PX_UPOW_SOLUTION_LEN;
    sols = px_calloc(ns ? ns : 1, sizeof *sols);
    if (!sols) return PX_ENOMEM;
    for (size_t i = 0; !rc && i < ns; i++)
      rc = px_upow_solution_decode(v + i * PX_UPOW_SOLUTION_LEN,
                                   PX_UPOW_SOLUTION_LEN, &sols[i]);
    if (rc) rc = PX_EIO;
  }
  px_upow_chain_published_t pub;
  memset(&pub, 0, sizeof pub);
  pub.epoch = e->epoch;
  pub.height = ctx->header->height;
  memcpy(pub.net_hash, e->parent_hash, 32);
  pub.score = e->parent_score;
  pub.parent_score = e->parent_score;
  pub.margin = e->margin;
  pub.n_solutions = (uint32_t)ns;
  uint64_t held = px_upow_chain_deposits(s);
  if (!rc && ns) {
    size_t best = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < ns; i++) {
      total += sols[i].score;
      if (px_upow_solution_cmp(&sols[i], &sols[best]) < 0) best = i;
    }
    memcpy(pub.net_hash, sols[best].net_hash, 32);
    pub.score = sols[best].score;
    memcpy(pub.winner, sols[best].miner_pk, 32);
    pub.nonce = sols[best].nonce;
    /* Mint only while the supply stays representable (as block emission). */
    ledger_supply_t sup;
    uint64_t t = 0, t2, e2;
    rc = ledger_supply_get(s, &sup);
    int mint = !rc && total && !u64_add(sup.genesis, sup.emitted, &t) &&
               t >= sup.burned &&
               !u64_add(t - sup.burned, PX_UPOW_EPOCH_REWARD, &t2) &&
               !u64_add(sup.emitted, PX_UPOW_EPOCH_REWARD, &e2);
    uint64_t minted = 0;
    for (size_t i = 0; !rc && i < ns; i++) {
      uint64_t r =
          mint ? (uint64_t)PX_UPOW_EPOCH_REWARD * sols[i].score / total : 0;
      px_upow_chain_miner_t m;
      if (held < PX_UPOW_DEPOSIT) rc = PX_EIO;
      if (!rc) rc = token_credit(s, sols[i].miner_pk, PX_UPOW_DEPOSIT + r);
      held -= PX_UPOW_DEPOSIT;
      if (!rc) rc = px_upow_chain_miner(s, sols[i].miner_pk, &m);
      m.rewards += r;
      if (!rc) rc = miner_put(ctx, sols[i].miner_pk, &m);
      minted += r;
    }
    if (!rc && minted) {
      sup.emitted += minted; /* <= PX_UPOW_EPOCH_REWARD, checked above */
      rc = ledger_supply_put(s, &sup);
    }
    pub.reward = minted;
    /* The best network becomes the parent. */
    px_upow_net_t best_net;
    uint8_t bh[32];
    if (!rc) rc = net_get(s, K_BEST, &best_net);
    if (!rc) {
      rc = px_upow_net_hash(&best_net, bh);
      if (!rc && memcmp(bh, pub.net_hash, 32)) rc = PX_EIO;
      if (!rc) rc = net_put(ctx, K_PARENT, &best_net);
      px_upow_net_release(&best_net);
    }
  }
  px_free(sols);
  if (!rc && held) rc = PX_EIO; /* every held deposit belongs to the list */
  if (!rc) rc = deposits_put(ctx, 0);
  if (!rc) rc = ctx_del(ctx, k, key1(K_LIST, k));
  if (!rc) rc = ctx_del(ctx, k, key1(K_BEST, k));
  uint8_t pk_[10], pb[PUB_REC_LEN];
  pub_encode(&pub, pb);
  if (!rc) rc = ctx_put(ctx, pk_, key_pub(e->epoch, pk_), pb, sizeof pb);
  return rc;
}

static int upow_begin_block(px_ledger_ctx_t *ctx) {
  uint64_t h = ctx->header->height;
  if (h == 0) return 0;
  uint64_t epoch = (h - 1) / PX_UPOW_EPOCH_BLOCKS;
  px_upow_chain_epoch_t e;
  int rc = px_upow_chain_epoch(ctx->s, &e);
  if (rc == PX_ENOTFOUND) return genesis(ctx, epoch);
  if (rc) return rc;
  if (e.epoch < epoch) {
    if ((rc = epoch_close(ctx, &e))) return rc;
    uint32_t margin = px_upow_next_margin(
        e.margin, e.n_solutions, PX_UPOW_TARGET_SOLUTIONS, PX_UPOW_MAX_MARGIN);
    px_upow_chain_published_t pub;
    if ((rc = px_upow_chain_published(ctx->s, e.epoch, &pub))) return rc;
    return epoch_open(ctx, epoch, margin, pub.net_hash);
  }
  if (!e.revealed && h > e.start_height) {
    /* prev_hash of the second block is the first block's hash. */
    e.revealed = 1;
    memcpy(e.eval_seed, ctx->header->prev_hash, 32);
    return epoch_put(ctx, &e);
  }
  return 0;
}

/* ---- SUBMIT -------------------------------------------------------------- */

static int upow_check(const px_tx_t *tx) {
  px_upow_solution_t sol;
  if (tx->type != PX_TX_UPOW_SUBMIT) return PX_EDECODE;
  return px_upow_payload_submit_decode(tx->payload, tx->payload_len, &sol);
}

/* Re-run the candidate: 0 valid (net filled), > 0 never, < 0 a verdict
 * code (PX_EAUTH, PX_ERANGE, ...) or, for *fatal, an error to return. */
static int judge(px_ledger_ctx_t *ctx, px_upow_chain_epoch_t *e,
                 const px_tx_t *tx, const px_upow_solution_t *sol,
                 px_upow_net_t *net, int *fatal) {
  *fatal = 0;
  if (memcmp(tx->sender, sol->miner_pk, 32) != 0) return PX_EPERM;
  const px_upow_data_t *data;
  int rc = px_upow_chain_dataset(&data);
  if (rc) {
    *fatal = 1;
    return PX_EIO;
  }
  px_upow_net_t parent;
  if ((rc = net_get(ctx->s, K_PARENT, &parent))) {
    *fatal = 1;
    return rc == PX_ENOTFOUND ? PX_EIO : rc;
  }
  px_upow_epoch_t ep;
  px_upow_chain_task_epoch(e, &ep);
  px_upow_task_t *t;
  if ((rc = px_upow_task_new(&ep, &parent, data, &t))) {
    px_upow_net_release(&parent);
    *fatal = 1;
    return rc == PX_ENOMEM ? rc : PX_EIO;
  }
  e->parent_score = px_upow_task_parent_score(t);
  rc = px_upow_check(t, e->epoch, sol, PX_UPOW_MAX_CHECK_OPS, net);
  px_upow_task_free(t);
  px_upow_net_release(&parent);
  if (rc == PX_ENOMEM || rc == PX_ELIMIT || rc == PX_EINVAL) *fatal = 1;
  return rc;
}

static int upow_execute(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  px_ledger_state_t *s = ctx->s;
  px_upow_solution_t sol;
  int rc = px_upow_payload_submit_decode(tx->payload, tx->payload_len, &sol);
  if (rc) return rc;
  px_upow_chain_epoch_t e;
  if ((rc = px_upow_chain_epoch(s, &e)))
    return rc == PX_ENOTFOUND ? PX_ESTATE : rc;
  /* Not judgeable now: fail, take nothing. */
  if (sol.epoch != e.epoch || !e.revealed) return PX_ESTATE;
  uint8_t rk[34];
  const uint8_t *v;
  size_t n;
  key_receipt(tx->sender, &sol, rk);
  if (get(s, rk, sizeof rk, &v, &n) == 0) return PX_EDUP;
  if (e.n_solutions >= PX_UPOW_MAX_SOLUTIONS) return PX_ELIMIT;
  uint64_t h = ctx->header->height;
  if (e.checks_height != h) {
    e.checks_height = h;
    e.checks_in_block = 0;
  }
  if (e.checks_in_block >= PX_UPOW_MAX_CHECKS_PER_BLOCK) return PX_EBUSY;
  e.checks_in_block++;
  if ((rc = token_debit(s, tx->sender, PX_UPOW_DEPOSIT))) return rc;

  px_upow_net_t net;
  int fatal;
  memset(&net, 0, sizeof net);
  int verdict = judge(ctx, &e, tx, &sol, &net, &fatal);
  if (fatal) {
    px_upow_net_release(&net);
    return verdict;
  }
  px_upow_chain_miner_t m;
  if ((rc = px_upow_chain_miner(s, tx->sender, &m))) goto out;
  m.submitted++;
  if (verdict == 0) {
    m.valid++;
    uint64_t held;
    if ((rc = u64_add(px_upow_chain_deposits(s), PX_UPOW_DEPOSIT, &held)) ||
        (rc = deposits_put(ctx, held)))
      goto out;
    /* Append to the list; keep the best network. */
    uint8_t lk[2];
    px_buf_t b;
    px_buf_init(&b, 0);
    int best = 1;
    if (get(s, lk, key1(K_LIST, lk), &v, &n) == 0) {
      for (size_t i = 0; i + PX_UPOW_SOLUTION_LEN <= n;
           i += PX_UPOW_SOLUTION_LEN) {
        px_upow_solution_t o;
        if (px_upow_solution_decode(v + i, PX_UPOW_SOLUTION_LEN, &o) == 0 &&
            px_upow_solution_cmp(&o, &sol) < 0)
          best = 0;
      }
      rc = px_buf_append(&b, v, n);
    }
    if (!rc) rc = px_upow_solution_encode(&sol, &b);
    if (!rc) rc = ctx_put(ctx, lk, 2, b.data, b.len);
    px_buf_release(&b);
    if (!rc && best) rc = net_put(ctx, K_BEST, &net);
    e.n_solutions++;
    if (sol.score > e.best_score) e.best_score = sol.score;
  } else {
    /* Forfeit: the deposit is burned (the tx itself succeeds). */
    ledger_supply_t sup;
    m.rejected++;
    m.forfeited += PX_UPOW_DEPOSIT;
    if ((rc = ledger_supply_get(s, &sup))) goto out;
    if ((rc = u64_add(sup.burned, PX_UPOW_DEPOSIT, &sup.burned))) goto out;
    if ((rc = ledger_supply_put(s, &sup))) goto out;
  }
  if ((rc = miner_put(ctx, tx->sender, &m))) goto out;
  uint8_t rb[RECEIPT_LEN];
  px_put_u64le(rb, h);
  px_put_u32le(rb + 8, (uint32_t)verdict);
  if ((rc = ctx_put(ctx, rk, sizeof rk, rb, sizeof rb))) goto out;
  rc = epoch_put(ctx, &e);
out:
  px_upow_net_release(&net);
  return rc;
}

/* Queries: 1 epoch record, 2 published(u64 epoch), 3 miner(pk),
 * 4 receipt(sender[32] | solution[89]), 5 parent network encoding.  Raw
 * record bytes as documented at the top of this file. */
static int upow_query(const px_ledger_state_t *s, uint8_t method,
                      const uint8_t *args, size_t n, px_buf_t *out) {
  uint8_t k[34];
  size_t kl;
  const uint8_t *v;
  size_t vn;
  px_upow_solution_t sol;
  switch (method) {
  case 1:
    if (n) return PX_EINVAL;
    kl = key1(K_EPOCH, k);
    break;
  case 2:
    if (n != 8) return PX_EINVAL;
    kl = key_pub(px_get_u64le(args), k);
    break;
  case 3:
    if (n != 32) return PX_EINVAL;
    kl = key_miner(args, k);
    break;
  case 4:
    if (n != 32 + PX_UPOW_SOLUTION_LEN ||
        px_upow_solution_decode(args + 32, PX_UPOW_SOLUTION_LEN, &sol))
      return PX_EINVAL;
    kl = key_receipt(args, &sol, k);
    break;
  case 5:
    if (n) return PX_EINVAL;
    kl = key1(K_PARENT, k);
    break;
  default:
    return PX_ENOTFOUND;
  }
  int rc = get(s, k, kl, &v, &vn);
  return rc ? rc : px_buf_append(out, v, vn);
}

const px_contract_t px_contract_upow = {
    .name = "upow",
    .id = PX_CONTRACT_UPOW,
    .check = upow_check,
    .execute = upow_execute,
    .query = upow_query,
    .begin_block = upow_begin_block,
};
