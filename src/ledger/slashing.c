/*
 * slashing.c — equivocation evidence committed in blocks, and the slash it
 * triggers.  Part of the staking contract: every key lives in namespace 02
 * (docs/ledger.md "Slashing").
 *
 * A piece of evidence is the consensus EVIDENCE message: two conflicting
 * signed votes (same type, height, round, validator index).  The votes name
 * their validator by its index in the set of the vote's height, so checking
 * evidence needs that set.  The state keeps it, deterministically and
 * without I/O:
 *
 *   02 'H' be64(from)   u32 n, n x pk: the consensus validator set (the
 *                       order of px_ledger_validators, at most
 *                       PX_CONS_MAX_VALIDATORS) used from height `from` on
 *   02 'I'              u32 n, n x u64 from (ascending): the recorded sets
 *
 * After each block h the set for h+1 is computed and written only when it
 * differs from the last recorded one, so a steady chain writes nothing.
 * Evidence of height e is accepted in block B only while B - e <
 * unbonding_blocks, so a set whose successor starts at or below the lowest
 * height any future block can accept is pruned.
 *
 * Duplicates: evidence for a (validator, vote type, height, round) is
 * applied once.  The marker
 *   02 'E' pk u8 type be32 round be64 height   u64 block, u64 burned
 * is written when it is applied; evidence naming a marked tuple is invalid
 * (as Tendermint, invalid evidence makes the whole block invalid, so
 * proposers filter their pool against the state first).  Within a block the
 * tuples must be distinct.
 *
 * The slash: floor(x * slash_fraction_bps / 10000) of the offender's stake
 * and of each unbonding entry made at or after the evidence height (entries
 * made before the infraction are not answerable for it, as in Cosmos) is
 * burned — added to the supply's burned total so the supply invariant keeps
 * holding — and the validator is jailed for good: active = 0 and 02 'J' pk
 * -> u64 block height, which staking refuses to lift.  It leaves the next
 * validator set.
 */
#include <string.h>

#include "plexus/codec.h"
#include "plexus/consensus.h"
#include "plexus/ledger.h"

#include "ledger/ledger_internal.h"

#include "base/px_internal.h"

#define INDEX_KEY_LEN 2
#define VALSET_KEY_LEN 10
#define MARKER_KEY_LEN (2 + PX_PK_LEN + 1 + 4 + 8)
#define JAIL_KEY_LEN (2 + PX_PK_LEN)

static const uint8_t k_index_key[INDEX_KEY_LEN] = {PX_CONTRACT_STAKING,
                                                   KEY_STAKING_VALSET_INDEX};

static void put_be(uint8_t *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++)
    p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static void valset_key(uint64_t from, uint8_t key[VALSET_KEY_LEN]) {
  key[0] = PX_CONTRACT_STAKING;
  key[1] = KEY_STAKING_VALSET;
  put_be(key + 2, from, 8);
}

static void marker_key(const uint8_t pk[PX_PK_LEN], const px_cons_vote_t *v,
                       uint8_t key[MARKER_KEY_LEN]) {
  key[0] = PX_CONTRACT_STAKING;
  key[1] = KEY_STAKING_EVIDENCE;
  memcpy(key + 2, pk, PX_PK_LEN);
  key[2 + PX_PK_LEN] = (uint8_t)v->type;
  put_be(key + 3 + PX_PK_LEN, v->round, 4);
  put_be(key + 7 + PX_PK_LEN, v->height, 8);
}

static void jail_key(const uint8_t pk[PX_PK_LEN], uint8_t key[JAIL_KEY_LEN]) {
  key[0] = PX_CONTRACT_STAKING;
  key[1] = KEY_STAKING_JAILED;
  memcpy(key + 2, pk, PX_PK_LEN);
}

int px_ledger_jailed(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN]) {
  if (!s || !pk) return 0;
  uint8_t key[JAIL_KEY_LEN];
  jail_key(pk, key);
  return smt_get(&s->smt, key, sizeof key, NULL, NULL) == 0;
}

/* ---- recorded validator sets --------------------------------------------- */

typedef struct {
  uint32_t n;
  uint64_t *from; /* heap, n + 1 entries */
} vindex_t;

static int index_get(const px_ledger_state_t *s, vindex_t *ix) {
  const uint8_t *v = NULL;
  size_t n = 0;
  ix->n = 0;
  ix->from = NULL;
  uint32_t cnt = 0;
  if (smt_get(&s->smt, k_index_key, sizeof k_index_key, &v, &n) == 0) {
    if (n < 4) return PX_EIO;
    cnt = px_get_u32le(v);
    if ((n - 4) % 8 || (n - 4) / 8 != cnt) return PX_EIO;
  }
  ix->from = px_malloc(((size_t)cnt + 1) * sizeof *ix->from);
  if (!ix->from) return PX_ENOMEM;
  for (uint32_t i = 0; i < cnt; i++)
    ix->from[i] = px_get_u64le(v + 4 + 8 * (size_t)i);
  ix->n = cnt;
  return 0;
}

static int index_put(px_ledger_state_t *s, const vindex_t *ix) {
  if (ix->n == 0) return ledger_del(s, k_index_key, sizeof k_index_key);
  size_t n = 4 + 8 * (size_t)ix->n;
  uint8_t *v = px_malloc(n);
  if (!v) return PX_ENOMEM;
  px_put_u32le(v, ix->n);
  for (uint32_t i = 0; i < ix->n; i++)
    px_put_u64le(v + 4 + 8 * (size_t)i, ix->from[i]);
  int rc = ledger_put(s, k_index_key, sizeof k_index_key, v, n);
  px_free(v);
  return rc;
}

/* The current active set in consensus order, encoded as stored. */
static int current_set(const px_ledger_state_t *s, px_buf_t *out) {
  px_validator_t *v = px_calloc(PX_LEDGER_MAX_VALIDATORS, sizeof *v);
  if (!v) return PX_ENOMEM;
  size_t n = 0;
  int rc = px_ledger_validators(s, v, PX_LEDGER_MAX_VALIDATORS, &n);
  if (n > PX_CONS_MAX_VALIDATORS) n = PX_CONS_MAX_VALIDATORS;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u32(&w, (uint32_t)n);
  for (size_t i = 0; i < n; i++)
    px_writer_fixed(&w, v[i].pk, PX_PK_LEN);
  if (!rc) rc = px_writer_finish(&w);
  px_free(v);
  return rc;
}

int slashing_record_valset(px_ledger_state_t *s, uint64_t next_height) {
  px_buf_t cur;
  px_buf_init(&cur, 0);
  vindex_t ix;
  int rc = current_set(s, &cur);
  if (!rc) rc = index_get(s, &ix);
  if (rc) {
    px_buf_release(&cur);
    return rc;
  }
  int changed = 0;
  const uint8_t *last = NULL;
  size_t last_len = 0;
  uint8_t key[VALSET_KEY_LEN];
  if (ix.n) {
    valset_key(ix.from[ix.n - 1], key);
    if (smt_get(&s->smt, key, sizeof key, &last, &last_len)) rc = PX_EIO;
  }
  if (!rc &&
      (!ix.n || last_len != cur.len || memcmp(last, cur.data, cur.len) != 0)) {
    if (ix.n && ix.from[ix.n - 1] >= next_height) {
      rc = PX_EIO; /* heights only grow */
    } else {
      valset_key(next_height, key);
      rc = ledger_put(s, key, sizeof key, cur.data, cur.len);
      ix.from[ix.n++] = next_height;
      changed = 1;
    }
  }
  /* The lowest evidence height a block >= next_height can still accept. */
  uint64_t u = s->params.unbonding_blocks;
  uint64_t low = next_height + 1 > u ? next_height + 1 - u : 0;
  uint32_t drop = 0;
  while (!rc && drop + 1 < ix.n && ix.from[drop + 1] <= low) {
    valset_key(ix.from[drop], key);
    rc = ledger_del(s, key, sizeof key);
    drop++;
  }
  if (!rc && drop) {
    memmove(ix.from, ix.from + drop, (ix.n - drop) * sizeof *ix.from);
    ix.n -= drop;
    changed = 1;
  }
  if (!rc && changed) rc = index_put(s, &ix);
  px_free(ix.from);
  px_buf_release(&cur);
  return rc;
}

/* The set of height h (powers are irrelevant to evidence: 1 each). */
static int set_at(const px_ledger_state_t *s, uint64_t h,
                  px_cons_valset_t *vs) {
  vindex_t ix;
  int rc = index_get(s, &ix);
  if (rc) return rc;
  uint32_t i = ix.n;
  while (i > 0 && ix.from[i - 1] > h)
    i--;
  uint64_t from = i ? ix.from[i - 1] : 0;
  px_free(ix.from);
  if (i == 0) return PX_ESTATE;
  uint8_t key[VALSET_KEY_LEN];
  const uint8_t *v;
  size_t n;
  valset_key(from, key);
  if (smt_get(&s->smt, key, sizeof key, &v, &n) || n < 4) return PX_EIO;
  uint32_t cnt = px_get_u32le(v);
  if (cnt > PX_CONS_MAX_VALIDATORS || n != 4 + (size_t)cnt * PX_PK_LEN)
    return PX_EIO;
  if (cnt == 0) return PX_ESTATE;
  uint64_t power[PX_CONS_MAX_VALIDATORS];
  for (uint32_t k = 0; k < cnt; k++)
    power[k] = 1;
  rc =
      px_cons_valset_init(vs, (const uint8_t(*)[PX_PK_LEN])(v + 4), power, cnt);
  return rc ? PX_EIO : 0;
}

/* ---- checking ------------------------------------------------------------ */

/* Offender of e (validity aside), or the reason no set can judge it. */
static int offender_of(const px_ledger_state_t *s, uint64_t block_height,
                       const px_cons_evidence_t *e, px_cons_valset_t *vs,
                       uint8_t pk[PX_PK_LEN]) {
  uint64_t h = e->a.height;
  if (h == 0 || h > block_height) return PX_ESTATE;
  if (block_height - h >= s->params.unbonding_blocks) return PX_ESTATE;
  int rc = set_at(s, h, vs);
  if (rc) return rc;
  if (e->a.validator >= vs->n) return PX_EPROTO;
  memcpy(pk, vs->v[e->a.validator].pk, PX_PK_LEN);
  return 0;
}

static int check_one(const px_ledger_state_t *s, uint64_t block_height,
                     const px_cons_evidence_t *e, uint8_t pk[PX_PK_LEN],
                     uint8_t key[MARKER_KEY_LEN]) {
  px_cons_valset_t *vs = px_malloc(sizeof *vs);
  if (!vs) return PX_ENOMEM;
  int rc = offender_of(s, block_height, e, vs, pk);
  if (!rc) rc = px_cons_evidence_verify(s->chain_id, vs, e);
  px_free(vs);
  if (rc) return rc;
  marker_key(pk, &e->a, key);
  if (smt_get(&s->smt, key, MARKER_KEY_LEN, NULL, NULL) == 0) return PX_EDUP;
  return 0;
}

int px_ledger_evidence_check(const px_ledger_state_t *s, const uint8_t *ev,
                             size_t len, uint8_t offender[PX_PK_LEN]) {
  if (!s || (!ev && len)) return PX_EINVAL;
  px_cons_evidence_t e;
  int rc = px_cons_evidence_decode(ev, len, &e);
  if (rc) return rc;
  uint8_t pk[PX_PK_LEN], key[MARKER_KEY_LEN];
  rc = check_one(s, s->height + 1, &e, pk, key);
  if (!rc && offender) memcpy(offender, pk, PX_PK_LEN);
  return rc;
}

int slashing_validate(const px_ledger_state_t *s, const px_block_t *b) {
  if (b->n_evidence == 0) return 0;
  if (b->n_evidence > PX_LEDGER_BLOCK_MAX_EVIDENCE) return PX_ETOOBIG;
  uint8_t(*keys)[MARKER_KEY_LEN] = px_malloc(b->n_evidence * MARKER_KEY_LEN);
  if (!keys) return PX_ENOMEM;
  int rc = 0;
  for (size_t i = 0; !rc && i < b->n_evidence; i++) {
    uint8_t pk[PX_PK_LEN];
    rc = check_one(s, b->header.height, &b->evidence[i].ev, pk, keys[i]);
    for (size_t j = 0; !rc && j < i; j++)
      if (memcmp(keys[i], keys[j], MARKER_KEY_LEN) == 0) rc = PX_EDUP;
  }
  px_free(keys);
  return rc;
}

/* ---- applying ------------------------------------------------------------ */

/* floor(x * bps / 10000) without overflow (bps <= 10000). */
static uint64_t slash_part(uint64_t x, uint32_t bps) {
  return x / PX_LEDGER_BPS * bps + x % PX_LEDGER_BPS * bps / PX_LEDGER_BPS;
}

int slashing_apply(px_ledger_state_t *s, uint64_t block_height,
                   const px_cons_evidence_t *e) {
  px_cons_valset_t *vs = px_malloc(sizeof *vs);
  if (!vs) return PX_ENOMEM;
  uint8_t pk[PX_PK_LEN];
  int rc = offender_of(s, block_height, e, vs, pk);
  px_free(vs);
  if (rc) return PX_EIO; /* validated before: cannot happen */
  const px_ledger_params_t *p = &s->params;
  stake_record_t sr;
  if ((rc = staking_record_get(s, pk, &sr))) return rc;
  uint64_t burned = slash_part(sr.stake, p->slash_fraction_bps);
  sr.stake -= burned;
  uint32_t keep = 0;
  for (uint32_t i = 0; i < sr.n; i++) {
    px_unbonding_t en = sr.e[i];
    /* release = unstake height + unbonding_blocks (staking.c). */
    uint64_t made = en.release_height >= p->unbonding_blocks
                        ? en.release_height - p->unbonding_blocks
                        : 0;
    if (made >= e->a.height) {
      uint64_t cut = slash_part(en.amount, p->slash_fraction_bps);
      en.amount -= cut;
      burned += cut; /* parts of one account's funds: no overflow */
    }
    if (en.amount) sr.e[keep++] = en;
  }
  sr.n = keep;
  if ((rc = staking_record_put(s, pk, &sr))) return rc;
  ledger_supply_t sup;
  if ((rc = ledger_supply_get(s, &sup))) return rc;
  if (u64_add(sup.burned, burned, &sup.burned)) return PX_EIO;
  if ((rc = ledger_supply_put(s, &sup))) return rc;
  uint8_t key[MARKER_KEY_LEN], val[16];
  marker_key(pk, &e->a, key);
  px_put_u64le(val, block_height);
  px_put_u64le(val + 8, burned);
  if ((rc = ledger_put(s, key, sizeof key, val, sizeof val))) return rc;
  uint8_t jk[JAIL_KEY_LEN];
  jail_key(pk, jk);
  if (!px_ledger_jailed(s, pk) && (rc = ledger_put(s, jk, sizeof jk, val, 8)))
    return rc;
  return staking_jail(s, pk);
}
