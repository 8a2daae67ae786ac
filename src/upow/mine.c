/*
 * mine.c — uPoW epochs, candidates, checking, solutions and difficulty
 * (docs/upow.md).
 *
 * A candidate is a pure function of (task, miner pk, nonce):
 *
 *   seed  = BLAKE2b("plexus/upow/cand/v1" | epoch | epoch_seed | eval_seed |
 *                   parent hash | miner pk | nonce)
 *   rng   = xoshiro256** with its 256-bit state set to seed
 *   net   = parent; window = `window` training indices drawn from rng;
 *   repeat `steps` times: apply one rng-chosen mutation, keep it if the
 *           count correct on the window does not fall, else undo it
 *   score = count correct on the task's evaluation subset
 *
 * eval_seed goes into the seed so that no part of the work can be done
 * before the evaluation randomness is revealed, and the miner's key goes in
 * so that a nonce found by one miner is worthless to another.  The
 * solution commits to the network's hash as well as the score: a tampered
 * field then fails bit-exactly instead of by the luck of a score collision.
 *
 * Checking costs exactly one candidate; finding costs 1/p candidates where
 * p is the chance that one beats the parent by the margin.  That ratio is
 * the asymmetry the benchmark reports.
 */
#include <stdint.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/upow.h"
#include "base/px_internal.h"

#define SOL_MAGIC "PXUS"
#define MAX_STEPS 4096u
#define MAX_WINDOW 4096u
#define MAX_EVAL 65536u

struct px_upow_task {
  px_upow_epoch_t ep;
  const px_upow_net_t *parent;
  const px_upow_data_t *data;
  uint8_t parent_hash[32];
  uint32_t *eval_idx; /* [ep.params.eval_n], distinct */
  uint32_t parent_score;
};

void px_upow_params_default(px_upow_params_t *p) {
  p->steps = 24;
  p->window = 128;
  p->eval_n = 1024;
}

static int params_check(const px_upow_params_t *p) {
  return p->steps >= 1 && p->steps <= MAX_STEPS && p->window >= 1 &&
                 p->window <= MAX_WINDOW && p->eval_n >= 1 &&
                 p->eval_n <= MAX_EVAL
             ? 0
             : PX_EINVAL;
}

static void rng_from_hash(px_rng_t *r, const uint8_t h[32]) {
  for (int i = 0; i < 4; i++)
    r->s[i] = px_get_u64le(h + 8 * i);
  if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
}

static void hash_u64(px_hash_state_t *st, uint64_t v) {
  uint8_t b[8];
  px_put_u64le(b, v);
  px_hash_update(st, b, 8);
}

/* ---- hill climbing ----------------------------------------------------------
 */

/* One rng-chosen mutation; *undo_p / undo_v remember how to revert it. */
typedef struct {
  int kind; /* 0 hw, 1 hsrc, 2 thr, 3 ow, 4 osrc */
  size_t j;
  int32_t old;
} undo_t;

static int8_t other_trit(px_rng_t *r, int8_t w) {
  return (int8_t)((w + 1 + 1 + (int)px_rng_below(r, 2)) % 3 - 1);
}

static void mutate(px_upow_net_t *n, px_rng_t *r, undo_t *u) {
  const px_upow_dims_t *d = &n->dims;
  uint32_t nv = PX_UPOW_N_IN + d->n_hidden;
  uint64_t hk = (uint64_t)d->n_hidden * d->fan_in,
           ok = (uint64_t)PX_UPOW_N_OUT * d->out_fan_in;
  uint64_t kind = px_rng_below(r, 16);
  if (kind < 6) {
    u->kind = 0;
    u->j = (size_t)px_rng_below(r, hk);
    u->old = n->hw[u->j];
    n->hw[u->j] = other_trit(r, n->hw[u->j]);
  } else if (kind < 8) {
    u->kind = 1;
    u->j = (size_t)px_rng_below(r, hk);
    u->old = n->hsrc[u->j];
    n->hsrc[u->j] = (uint16_t)px_rng_below(r, nv);
  } else if (kind < 9) {
    u->kind = 2;
    u->j = (size_t)px_rng_below(r, d->n_hidden);
    u->old = n->thr[u->j];
    int32_t t = u->old + (px_rng_below(r, 2) ? 1 : -1);
    if (t < 0) t = 0;
    if (t > d->fan_in) t = d->fan_in;
    n->thr[u->j] = (int16_t)t;
  } else if (kind < 14) {
    u->kind = 3;
    u->j = (size_t)px_rng_below(r, ok);
    u->old = n->ow[u->j];
    n->ow[u->j] = other_trit(r, n->ow[u->j]);
  } else {
    u->kind = 4;
    u->j = (size_t)px_rng_below(r, ok);
    u->old = n->osrc[u->j];
    n->osrc[u->j] = (uint16_t)px_rng_below(r, nv);
  }
}

static void undo(px_upow_net_t *n, const undo_t *u) {
  switch (u->kind) {
  case 0:
    n->hw[u->j] = (int8_t)u->old;
    break;
  case 1:
    n->hsrc[u->j] = (uint16_t)u->old;
    break;
  case 2:
    n->thr[u->j] = (int16_t)u->old;
    break;
  case 3:
    n->ow[u->j] = (int8_t)u->old;
    break;
  default:
    n->osrc[u->j] = (uint16_t)u->old;
    break;
  }
}

/* idx is scratch for `window` indices.  stop (NULL ok) is polled before
 * every step: 1 when it asked to stop (the network is then incomplete). */
static int climb(px_upow_net_t *n, const px_upow_data_t *d, px_rng_t *r,
                 uint32_t steps, uint32_t window, uint32_t *idx,
                 int (*stop)(void *), void *ud) {
  for (uint32_t i = 0; i < window; i++)
    idx[i] = (uint32_t)px_rng_below(r, d->n);
  if (stop && stop(ud)) return 1;
  uint32_t cur = px_upow_net_correct(n, d, idx, window);
  for (uint32_t s = 0; s < steps; s++) {
    if (stop && stop(ud)) return 1;
    undo_t u;
    mutate(n, r, &u);
    uint32_t c = px_upow_net_correct(n, d, idx, window);
    if (c >= cur)
      cur = c;
    else
      undo(n, &u);
  }
  return 0;
}

int px_upow_hill_climb(px_upow_net_t *n, const px_upow_data_t *d, uint64_t seed,
                       uint32_t rounds, const px_upow_params_t *p) {
  if (!n || !d || !d->n || !p || params_check(p)) return PX_EINVAL;
  uint32_t *idx = px_malloc((size_t)p->window * sizeof *idx);
  if (!idx) return PX_ENOMEM;
  px_rng_t r;
  px_rng_seed(&r, seed);
  for (uint32_t i = 0; i < rounds; i++)
    climb(n, d, &r, p->steps, p->window, idx, NULL, NULL);
  px_free(idx);
  return 0;
}

/* ---- tasks
 * ------------------------------------------------------------------- */

int px_upow_task_new(const px_upow_epoch_t *ep, const px_upow_net_t *parent,
                     const px_upow_data_t *data, px_upow_task_t **out) {
  *out = NULL;
  if (!ep || !parent || !data || !data->n || data->n > UINT32_MAX ||
      ep->margin == 0 || params_check(&ep->params) ||
      ep->params.eval_n > data->n || px_upow_dims_check(&parent->dims))
    return PX_EINVAL;
  px_upow_task_t *t = px_calloc(1, sizeof *t);
  uint32_t *perm = px_malloc(data->n * sizeof *perm);
  if (!t || !perm) goto nomem;
  t->ep = *ep;
  t->parent = parent;
  t->data = data;
  t->eval_idx = px_malloc((size_t)ep->params.eval_n * sizeof *t->eval_idx);
  if (!t->eval_idx) goto nomem;
  int rc = px_upow_net_hash(parent, t->parent_hash);
  if (rc) {
    px_free(perm);
    px_upow_task_free(t);
    return rc;
  }
  /* Partial Fisher-Yates: eval_n distinct indices. */
  px_hash_state_t st;
  uint8_t h[32];
  px_hash_init(&st);
  px_hash_update(&st, "plexus/upow/eval/v1", 19);
  hash_u64(&st, ep->epoch);
  px_hash_update(&st, ep->eval_seed, 32);
  px_hash_final(&st, h);
  px_rng_t r;
  rng_from_hash(&r, h);
  for (size_t i = 0; i < data->n; i++)
    perm[i] = (uint32_t)i;
  for (uint32_t i = 0; i < ep->params.eval_n; i++) {
    size_t j = i + (size_t)px_rng_below(&r, data->n - i);
    uint32_t tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
    t->eval_idx[i] = perm[i];
  }
  px_free(perm);
  t->parent_score =
      px_upow_net_correct(parent, data, t->eval_idx, ep->params.eval_n);
  *out = t;
  return 0;
nomem:
  px_free(perm);
  px_upow_task_free(t);
  return PX_ENOMEM;
}

void px_upow_task_free(px_upow_task_t *t) {
  if (!t) return;
  px_free(t->eval_idx);
  px_free(t);
}

uint32_t px_upow_task_parent_score(const px_upow_task_t *t) {
  return t->parent_score;
}

const px_upow_epoch_t *px_upow_task_epoch(const px_upow_task_t *t) {
  return &t->ep;
}

uint64_t px_upow_task_ops(const px_upow_task_t *t) {
  const px_upow_params_t *p = &t->ep.params;
  return ((uint64_t)(p->steps + 1) * p->window + p->eval_n) *
         px_upow_net_ops(&t->parent->dims);
}

/* ---- candidates and checking
 * ------------------------------------------------- */

int px_upow_candidate(const px_upow_task_t *t, const uint8_t miner_pk[32],
                      uint64_t nonce, px_upow_net_t *net_out,
                      px_upow_solution_t *sol) {
  return px_upow_candidate_ex(t, miner_pk, nonce, net_out, sol, NULL, NULL);
}

int px_upow_candidate_ex(const px_upow_task_t *t, const uint8_t miner_pk[32],
                         uint64_t nonce, px_upow_net_t *net_out,
                         px_upow_solution_t *sol, int (*stop)(void *ud),
                         void *ud) {
  px_upow_net_t n;
  int rc = px_upow_net_copy(&n, t->parent);
  if (rc) return rc;
  uint32_t *idx = px_malloc((size_t)t->ep.params.window * sizeof *idx);
  if (!idx) {
    px_upow_net_release(&n);
    return PX_ENOMEM;
  }
  px_hash_state_t st;
  uint8_t seed[32];
  px_hash_init(&st);
  px_hash_update(&st, "plexus/upow/cand/v1", 19);
  hash_u64(&st, t->ep.epoch);
  px_hash_update(&st, t->ep.epoch_seed, 32);
  px_hash_update(&st, t->ep.eval_seed, 32);
  px_hash_update(&st, t->parent_hash, 32);
  px_hash_update(&st, miner_pk, 32);
  hash_u64(&st, nonce);
  px_hash_final(&st, seed);
  px_rng_t r;
  rng_from_hash(&r, seed);
  int stopped = climb(&n, t->data, &r, t->ep.params.steps, t->ep.params.window,
                      idx, stop, ud);
  px_free(idx);
  /* Score in chunks of `window` images so a stop request is seen at the
   * same granularity as during the climb (the count is the same sum). */
  uint32_t score = 0, chunk = t->ep.params.window;
  for (uint32_t off = 0; !stopped && off < t->ep.params.eval_n; off += chunk) {
    if (stop && stop(ud)) stopped = 1;
    uint32_t k = PX_MIN(chunk, t->ep.params.eval_n - off);
    if (!stopped)
      score += px_upow_net_correct(&n, t->data, t->eval_idx + off, k);
  }
  if (stopped) {
    px_upow_net_release(&n);
    return PX_EBUSY;
  }

  memset(sol, 0, sizeof *sol);
  sol->epoch = t->ep.epoch;
  memcpy(sol->miner_pk, miner_pk, 32);
  sol->nonce = nonce;
  sol->score = score;
  if ((rc = px_upow_net_hash(&n, sol->net_hash))) {
    px_upow_net_release(&n);
    return rc;
  }
  if (net_out)
    *net_out = n;
  else
    px_upow_net_release(&n);
  return (uint64_t)sol->score >= (uint64_t)t->parent_score + t->ep.margin;
}

int px_upow_check(const px_upow_task_t *t, uint64_t current_epoch,
                  const px_upow_solution_t *sol, uint64_t max_ops,
                  px_upow_net_t *net_out) {
  if (net_out) memset(net_out, 0, sizeof *net_out);
  if (!t || !sol) return PX_EINVAL;
  if (sol->epoch != current_epoch || t->ep.epoch != current_epoch)
    return PX_ESTATE;
  if (max_ops && px_upow_task_ops(t) > max_ops) return PX_ELIMIT;
  px_upow_solution_t re;
  px_upow_net_t n;
  int rc = px_upow_candidate(t, sol->miner_pk, sol->nonce, &n, &re);
  if (rc < 0) return rc;
  if (re.score != sol->score || memcmp(re.net_hash, sol->net_hash, 32)) {
    px_upow_net_release(&n);
    return PX_EAUTH;
  }
  if (rc == 0) {
    px_upow_net_release(&n);
    return PX_ERANGE;
  }
  if (net_out)
    *net_out = n;
  else
    px_upow_net_release(&n);
  return 0;
}

/* ---- solutions and difficulty
 * ------------------------------------------------ */

int px_upow_solution_encode(const px_upow_solution_t *s, px_buf_t *out) {
  int rc = px_buf_reserve(out, PX_UPOW_SOLUTION_LEN);
  if (rc) return rc;
  uint8_t *p = out->data + out->len;
  memcpy(p, SOL_MAGIC, 4);
  p[4] = PX_UPOW_SOLUTION_VERSION;
  px_put_u64le(p + 5, s->epoch);
  memcpy(p + 13, s->miner_pk, 32);
  px_put_u64le(p + 45, s->nonce);
  px_put_u32le(p + 53, s->score);
  memcpy(p + 57, s->net_hash, 32);
  out->len += PX_UPOW_SOLUTION_LEN;
  return 0;
}

int px_upow_solution_decode(const void *data, size_t len,
                            px_upow_solution_t *out) {
  memset(out, 0, sizeof *out);
  const uint8_t *p = data;
  if (len < 4) return PX_ETRUNC;
  if (memcmp(p, SOL_MAGIC, 4) != 0) return PX_EDECODE;
  if (len < 5) return PX_ETRUNC;
  if (p[4] != PX_UPOW_SOLUTION_VERSION) return PX_EVERSION;
  if (len < PX_UPOW_SOLUTION_LEN) return PX_ETRUNC;
  if (len > PX_UPOW_SOLUTION_LEN) return PX_ETRAILING;
  out->epoch = px_get_u64le(p + 5);
  memcpy(out->miner_pk, p + 13, 32);
  out->nonce = px_get_u64le(p + 45);
  out->score = px_get_u32le(p + 53);
  memcpy(out->net_hash, p + 57, 32);
  return 0;
}

int px_upow_solution_cmp(const px_upow_solution_t *a,
                         const px_upow_solution_t *b) {
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  int c = memcmp(a->net_hash, b->net_hash, 32);
  if (c) return c;
  if ((c = memcmp(a->miner_pk, b->miner_pk, 32))) return c;
  if (a->nonce != b->nonce) return a->nonce < b->nonce ? -1 : 1;
  return 0;
}

uint32_t px_upow_next_margin(uint32_t margin, uint32_t n_solutions,
                             uint32_t target, uint32_t max_margin) {
  uint64_t n2 = 2 * (uint64_t)n_solutions, t = target;
  if (max_margin < 1) max_margin = 1;
  if (n2 > 3 * t && margin < UINT32_MAX)
    margin++;
  else if (n2 < t && margin > 1)
    margin--;
  if (margin < 1) margin = 1;
  if (margin > max_margin) margin = max_margin;
  return margin;
}
