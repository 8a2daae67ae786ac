/*
 * staking.c — the staking contract (id 2): bonding, unbonding, validators.
 *
 * State (namespace 02, docs/ledger.md):
 *   02 'S' pk       u64 stake, u32 n, n x (u64 release_height, u64 amount)
 *                   (deleted when stake and n are both 0)
 *   02 'V' pk       str moniker, u8 active, u64 registered_height
 *   02 'L'          u32 n, n x pk ascending: every registered validator
 *   02 'U' be64(h)  u32 n, n x pk ascending: accounts with unbonding
 *                   entries that mature at the start of block h
 *
 * STAKE(amount) moves balance to stake.  UNSTAKE(amount) moves stake to an
 * unbonding entry released at height + unbonding_blocks (entries made in one
 * block for one account merge; at most PX_LEDGER_MAX_UNBONDING pending,
 * else PX_ERATE).  Unbonding funds earn no power but can still be slashed
 * (slashing.c) for an infraction committed before they were unbonded.
 * begin_block(h) releases every entry listed under 'U' h back to the
 * balance.  A validator jailed for double signing (02 'J' pk) cannot set
 * itself active again (PX_EPERM).
 *
 * A validator's consensus key is its account key.  Power = stake /
 * power_unit; the active set is every registered validator with active = 1
 * and stake >= min_stake, ordered by power descending then pk ascending,
 * truncated to max_validators.  The order is a total order on distinct pks,
 * so every node derives the same set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/ledger.h"

#include "ledger/ledger_internal.h"

#include "base/px_internal.h"

#define LIST_KEY_LEN 2
#define UNBOND_KEY_LEN 10

static const uint8_t k_list_key[LIST_KEY_LEN] = {PX_CONTRACT_STAKING,
                                                 KEY_STAKING_LIST};

static size_t pk_key(uint8_t kind, const uint8_t pk[PX_PK_LEN], uint8_t *key) {
  key[0] = PX_CONTRACT_STAKING;
  key[1] = kind;
  memcpy(key + 2, pk, PX_PK_LEN);
  return 2 + PX_PK_LEN;
}

static void unbond_key(uint64_t h, uint8_t key[UNBOND_KEY_LEN]) {
  key[0] = PX_CONTRACT_STAKING;
  key[1] = KEY_STAKING_UNBOND;
  for (int i = 0; i < 8; i++)
    key[2 + i] = (uint8_t)(h >> (56 - 8 * i));
}

/* ---- stake records ------------------------------------------------------- */

int staking_record_decode(const uint8_t *v, size_t n, stake_record_t *r) {
  memset(r, 0, sizeof *r);
  px_reader_t rd;
  px_reader_init(&rd, v, n);
  r->stake = px_reader_u64(&rd);
  r->n = px_reader_u32(&rd);
  if (!rd.err && r->n > PX_LEDGER_MAX_UNBONDING) px_reader_fail(&rd, PX_EIO);
  for (uint32_t i = 0; !rd.err && i < r->n; i++) {
    r->e[i].release_height = px_reader_u64(&rd);
    r->e[i].amount = px_reader_u64(&rd);
  }
  return px_reader_finish(&rd) ? PX_EIO : 0;
}

int staking_record_get(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                       stake_record_t *r) {
  uint8_t key[2 + PX_PK_LEN];
  const uint8_t *v;
  size_t n;
  memset(r, 0, sizeof *r);
  if (smt_get(&s->smt, key, pk_key(KEY_STAKING_STAKE, pk, key), &v, &n) != 0)
    return 0;
  return staking_record_decode(v, n, r);
}

int staking_record_put(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                       const stake_record_t *r) {
  uint8_t key[2 + PX_PK_LEN];
  size_t klen = pk_key(KEY_STAKING_STAKE, pk, key);
  if (r->stake == 0 && r->n == 0) return ledger_del(s, key, klen);
  uint8_t v[12 + 16 * PX_LEDGER_MAX_UNBONDING];
  px_put_u64le(v, r->stake);
  px_put_u32le(v + 8, r->n);
  for (uint32_t i = 0; i < r->n; i++) {
    px_put_u64le(v + 12 + 16 * i, r->e[i].release_height);
    px_put_u64le(v + 20 + 16 * i, r->e[i].amount);
  }
  return ledger_put(s, key, klen, v, 12 + 16 * (size_t)r->n);
}

/* ---- sorted pk lists ('L' and 'U') --------------------------------------- */

typedef struct {
  uint32_t n;
  uint8_t (*pk)[PX_PK_LEN]; /* heap, n entries (+1 spare for insertion) */
} pk_list_t;

static int list_get(const px_ledger_state_t *s, const uint8_t *key, size_t klen,
                    pk_list_t *l) {
  const uint8_t *v;
  size_t n;
  l->n = 0;
  l->pk = NULL;
  if (smt_get(&s->smt, key, klen, &v, &n) != 0) v = NULL, n = 0;
  uint32_t cnt = 0;
  if (v) {
    if (n < 4) return PX_EIO;
    cnt = px_get_u32le(v);
    if ((n - 4) / PX_PK_LEN != cnt || (n - 4) % PX_PK_LEN) return PX_EIO;
  }
  l->pk = px_malloc(((size_t)cnt + 1) * PX_PK_LEN);
  if (!l->pk) return PX_ENOMEM;
  if (cnt) memcpy(l->pk, v + 4, (size_t)cnt * PX_PK_LEN);
  l->n = cnt;
  return 0;
}

static int list_put(px_ledger_ctx_t *ctx, const uint8_t *key, size_t klen,
                    const pk_list_t *l) {
  if (l->n == 0) return ctx_del(ctx, key, klen);
  size_t n = 4 + (size_t)l->n * PX_PK_LEN;
  uint8_t *v = px_malloc(n);
  if (!v) return PX_ENOMEM;
  px_put_u32le(v, l->n);
  memcpy(v + 4, l->pk, (size_t)l->n * PX_PK_LEN);
  int rc = ctx_put(ctx, key, klen, v, n);
  px_free(v);
  return rc;
}

/* Insert pk in order; *added = 0 if already present. */
static void list_insert(pk_list_t *l, const uint8_t pk[PX_PK_LEN], int *added) {
  uint32_t i = 0;
  while (i < l->n && memcmp(l->pk[i], pk, PX_PK_LEN) < 0)
    i++;
  if (i < l->n && memcmp(l->pk[i], pk, PX_PK_LEN) == 0) {
    *added = 0;
    return;
  }
  memmove(l->pk[i + 1], l->pk[i], (size_t)(l->n - i) * PX_PK_LEN);
  memcpy(l->pk[i], pk, PX_PK_LEN);
  l->n++;
  *added = 1;
}

/* ---- validators ---------------------------------------------------------- */

typedef struct {
  char moniker[PX_LEDGER_MONIKER_MAX];
  int active;
  uint64_t registered;
} validator_record_t;

static int validator_get(const px_ledger_state_t *s,
                         const uint8_t pk[PX_PK_LEN], validator_record_t *vr) {
  uint8_t key[2 + PX_PK_LEN];
  const uint8_t *v;
  size_t n;
  memset(vr, 0, sizeof *vr);
  if (smt_get(&s->smt, key, pk_key(KEY_STAKING_VALIDATOR, pk, key), &v, &n))
    return PX_ENOTFOUND;
  px_reader_t r;
  px_reader_init(&r, v, n);
  px_reader_str(&r, vr->moniker, sizeof vr->moniker);
  vr->active = px_reader_u8(&r);
  vr->registered = px_reader_u64(&r);
  return px_reader_finish(&r) ? PX_EIO : 0;
}

static int validator_put(px_ledger_ctx_t *ctx, const uint8_t pk[PX_PK_LEN],
                         const validator_record_t *vr) {
  uint8_t key[2 + PX_PK_LEN];
  px_buf_t b;
  px_buf_init(&b, 0);
  px_writer_t w;
  px_writer_init(&w, &b);
  px_writer_str(&w, vr->moniker);
  px_writer_u8(&w, vr->active ? 1 : 0);
  px_writer_u64(&w, vr->registered);
  int rc = px_writer_finish(&w);
  if (!rc)
    rc = ctx_put(ctx, key, pk_key(KEY_STAKING_VALIDATOR, pk, key), b.data,
                 b.len);
  px_buf_release(&b);
  return rc;
}

int staking_jail(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN]) {
  px_ledger_ctx_t ctx = {s, NULL, PX_CONTRACT_STAKING};
  validator_record_t vr;
  int rc = validator_get(s, pk, &vr);
  if (rc == PX_ENOTFOUND) return 0;
  if (rc) return rc;
  if (!vr.active) return 0;
  vr.active = 0;
  return validator_put(&ctx, pk, &vr);
}

static int do_register(px_ledger_ctx_t *ctx, const uint8_t pk[PX_PK_LEN],
                       const char *moniker, int active, uint64_t height) {
  validator_record_t vr;
  int rc = validator_get(ctx->s, pk, &vr);
  if (rc == 0) return PX_EEXIST;
  if (rc != PX_ENOTFOUND) return rc;
  stake_record_t sr;
  rc = staking_record_get(ctx->s, pk, &sr);
  if (rc) return rc;
  if (sr.stake < ctx->s->params.min_stake) return PX_LEDGER_E_FUNDS;
  pk_list_t l;
  rc = list_get(ctx->s, k_list_key, LIST_KEY_LEN, &l);
  if (!rc && l.n >= PX_LEDGER_MAX_VALIDATORS) rc = PX_EBUSY;
  if (!rc) {
    int added;
    list_insert(&l, pk, &added);
    rc = list_put(ctx, k_list_key, LIST_KEY_LEN, &l);
  }
  px_free(l.pk);
  if (rc) return rc;
  memset(&vr, 0, sizeof vr);
  snprintf(vr.moniker, sizeof vr.moniker, "%s", moniker);
  vr.active = active;
  vr.registered = height;
  return validator_put(ctx, pk, &vr);
}

int staking_register(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                     const char *moniker, int active, uint64_t height) {
  px_ledger_ctx_t ctx = {s, NULL, PX_CONTRACT_STAKING};
  return do_register(&ctx, pk, moniker, active, height);
}

static int cmp_validator(const void *a, const void *b) {
  const px_validator_t *x = a, *y = b;
  if (x->power != y->power) return x->power > y->power ? -1 : 1;
  return memcmp(x->pk, y->pk, PX_PK_LEN);
}

int px_ledger_validators(const px_ledger_state_t *s, px_validator_t *out,
                         size_t max, size_t *n_out) {
  if (!s || !n_out || (!out && max)) return PX_EINVAL;
  *n_out = 0;
  pk_list_t l;
  int rc = list_get(s, k_list_key, LIST_KEY_LEN, &l);
  if (rc) return rc;
  px_validator_t *all = px_calloc(l.n ? l.n : 1, sizeof *all);
  if (!all) rc = PX_ENOMEM;
  size_t cnt = 0;
  for (uint32_t i = 0; !rc && i < l.n; i++) {
    validator_record_t vr;
    stake_record_t sr;
    rc = validator_get(s, l.pk[i], &vr);
    if (!rc) rc = staking_record_get(s, l.pk[i], &sr);
    if (rc) break;
    uint64_t power = sr.stake / s->params.power_unit;
    if (!vr.active || sr.stake < s->params.min_stake || power == 0) continue;
    px_validator_t *v = &all[cnt++];
    memcpy(v->pk, l.pk[i], PX_PK_LEN);
    v->power = power;
    v->stake = sr.stake;
    memcpy(v->moniker, vr.moniker, sizeof v->moniker);
  }
  if (!rc) {
    qsort(all, cnt, sizeof *all, cmp_validator);
    if (cnt > s->params.max_validators) cnt = s->params.max_validators;
    if (cnt > max) cnt = max;
    if (cnt) memcpy(out, all, cnt * sizeof *all);
    *n_out = cnt;
  }
  px_free(all);
  px_free(l.pk);
  return rc;
}

/* ---- the contract -------------------------------------------------------- */

static int staking_check(const px_tx_t *tx) {
  uint64_t amount;
  char moniker[PX_LEDGER_MONIKER_MAX];
  int active;
  switch (tx->type) {
  case PX_TX_STAKE:
  case PX_TX_UNSTAKE:
    return payload_amount(tx, &amount);
  case PX_TX_VALIDATOR_REGISTER:
  case PX_TX_VALIDATOR_UPDATE:
    return payload_validator(tx, moniker, &active);
  default:
    return PX_EDECODE;
  }
}

static int do_unstake(px_ledger_ctx_t *ctx, const uint8_t pk[PX_PK_LEN],
                      uint64_t amount) {
  px_ledger_state_t *s = ctx->s;
  stake_record_t sr;
  int rc = staking_record_get(s, pk, &sr);
  if (rc) return rc;
  if (sr.stake < amount) return PX_LEDGER_E_FUNDS;
  uint64_t release;
  rc = u64_add(ctx->header->height, s->params.unbonding_blocks, &release);
  if (rc) return rc;
  uint32_t i = 0;
  while (i < sr.n && sr.e[i].release_height != release)
    i++;
  if (i == sr.n) {
    if (sr.n == PX_LEDGER_MAX_UNBONDING) return PX_ERATE;
    sr.e[sr.n].release_height = release;
    sr.e[sr.n].amount = 0;
    sr.n++;
  }
  rc = u64_add(sr.e[i].amount, amount, &sr.e[i].amount);
  if (rc) return rc;
  sr.stake -= amount;
  rc = staking_record_put(s, pk, &sr);
  if (rc) return rc;
  uint8_t key[UNBOND_KEY_LEN];
  unbond_key(release, key);
  pk_list_t l;
  rc = list_get(s, key, sizeof key, &l);
  if (!rc) {
    int added;
    list_insert(&l, pk, &added);
    if (added) rc = list_put(ctx, key, sizeof key, &l);
  }
  px_free(l.pk);
  return rc;
}

static int staking_execute(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  uint64_t amount;
  char moniker[PX_LEDGER_MONIKER_MAX];
  int active, rc;
  stake_record_t sr;
  validator_record_t vr;
  switch (tx->type) {
  case PX_TX_STAKE:
    if ((rc = payload_amount(tx, &amount))) return rc;
    if ((rc = staking_record_get(ctx->s, tx->sender, &sr))) return rc;
    if ((rc = u64_add(sr.stake, amount, &sr.stake))) return rc;
    if ((rc = token_debit(ctx->s, tx->sender, amount))) return rc;
    return staking_record_put(ctx->s, tx->sender, &sr);
  case PX_TX_UNSTAKE:
    if ((rc = payload_amount(tx, &amount))) return rc;
    return do_unstake(ctx, tx->sender, amount);
  case PX_TX_VALIDATOR_REGISTER:
    if ((rc = payload_validator(tx, moniker, &active))) return rc;
    return do_register(ctx, tx->sender, moniker, active, ctx->header->height);
  case PX_TX_VALIDATOR_UPDATE:
    if ((rc = payload_validator(tx, moniker, &active))) return rc;
    if ((rc = validator_get(ctx->s, tx->sender, &vr))) return rc;
    if (active && px_ledger_jailed(ctx->s, tx->sender)) return PX_EPERM;
    snprintf(vr.moniker, sizeof vr.moniker, "%s", moniker);
    vr.active = active;
    return validator_put(ctx, tx->sender, &vr);
  default:
    return PX_EDECODE;
  }
}

/* Release the unbonding entries that mature at this block's height. */
static int staking_begin_block(px_ledger_ctx_t *ctx) {
  uint64_t h = ctx->header->height;
  uint8_t key[UNBOND_KEY_LEN];
  unbond_key(h, key);
  pk_list_t l;
  int rc = list_get(ctx->s, key, sizeof key, &l);
  for (uint32_t i = 0; !rc && i < l.n; i++) {
    stake_record_t sr;
    rc = staking_record_get(ctx->s, l.pk[i], &sr);
    uint32_t keep = 0;
    for (uint32_t j = 0; !rc && j < sr.n; j++) {
      if (sr.e[j].release_height <= h)
        rc = token_credit(ctx->s, l.pk[i], sr.e[j].amount);
      else
        sr.e[keep++] = sr.e[j];
    }
    sr.n = keep;
    if (!rc) rc = staking_record_put(ctx->s, l.pk[i], &sr);
  }
  if (!rc && l.n) rc = ctx_del(ctx, key, sizeof key);
  px_free(l.pk);
  return rc;
}

static int staking_query(const px_ledger_state_t *s, uint8_t method,
                         const uint8_t *args, size_t n, px_buf_t *out) {
  px_writer_t w;
  px_writer_init(&w, out);
  if (method == 1) { /* stake(pk) */
    if (n != PX_PK_LEN) return PX_EINVAL;
    stake_record_t sr;
    int rc = staking_record_get(s, args, &sr);
    if (rc) return rc;
    px_writer_u64(&w, sr.stake);
    px_writer_u32(&w, sr.n);
    for (uint32_t i = 0; i < sr.n; i++) {
      px_writer_u64(&w, sr.e[i].release_height);
      px_writer_u64(&w, sr.e[i].amount);
    }
    return px_writer_finish(&w);
  }
  if (method == 2) { /* active validator set */
    if (n != 0) return PX_EINVAL;
    px_validator_t *v = px_calloc(PX_LEDGER_MAX_VALIDATORS, sizeof *v);
    size_t cnt = 0;
    if (!v) return PX_ENOMEM;
    int rc = px_ledger_validators(s, v, PX_LEDGER_MAX_VALIDATORS, &cnt);
    if (!rc) {
      px_writer_u32(&w, (uint32_t)cnt);
      for (size_t i = 0; i < cnt; i++) {
        px_writer_fixed(&w, v[i].pk, PX_PK_LEN);
        px_writer_u64(&w, v[i].power);
        px_writer_u64(&w, v[i].stake);
        px_writer_str(&w, v[i].moniker);
      }
      rc = px_writer_finish(&w);
    }
    px_free(v);
    return rc;
  }
  return PX_ENOTFOUND;
}

const px_contract_t px_contract_staking = {
    .name = "staking",
    .id = PX_CONTRACT_STAKING,
    .check = staking_check,
    .execute = staking_execute,
    .query = staking_query,
    .begin_block = staking_begin_block,
};
