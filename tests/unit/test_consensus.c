/*
 * test_consensus.c — the Tendermint core rule by rule (Alg. 1 of arXiv
 * 1807.04938), its messages, commit certificates, evidence, proposer
 * selection, the sign guard and the WAL (including a torn write at every
 * byte offset never leading to a double sign).
 *
 * The core under test is validator `me` of a 4-validator set with equal
 * power (2f+1 = 3 votes, f+1 = 2); the other validators' messages are made
 * and signed here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "plexus/base.h"
#include "plexus/codec.h"
#include "plexus/consensus.h"
#include "plexus/crypto.h"

#define NV 4
static const char *CHAIN = "test-chain";
static px_keypair_t keys[NV];
static px_cons_valset_t vs;
static uint32_t me; /* proposer of neither round 0, 1 nor 2 */

/* ---- fixtures ------------------------------------------------------------ */

static int setup(void **state) {
  (void)state;
  assert_int_equal(px_crypto_init(), 0);
  uint8_t pks[NV][PX_PK_LEN];
  uint64_t pw[NV];
  for (int i = 0; i < NV; i++) {
    uint8_t seed[PX_SEED_LEN] = {0};
    seed[0] = (uint8_t)(i + 1);
    assert_int_equal(px_key_from_seed(&keys[i], seed), 0);
    memcpy(pks[i], keys[i].pk, PX_PK_LEN);
    pw[i] = 10;
  }
  assert_int_equal(
      px_cons_valset_init(&vs, (const uint8_t(*)[PX_PK_LEN])pks, pw, NV), 0);
  uint32_t p0 = px_cons_valset_proposer(&vs, 0);
  uint32_t p1 = px_cons_valset_proposer(&vs, 1);
  uint32_t p2 = px_cons_valset_proposer(&vs, 2);
  for (me = 0; me < NV; me++)
    if (me != p0 && me != p1 && me != p2) break;
  assert_true(me < NV);
  return 0;
}

static int app_valid(void *ud, uint64_t h, const uint8_t *v, size_t n) {
  (void)ud;
  (void)h;
  return n > 0 && v[0] != 'X'; /* values starting with X are invalid */
}

static int app_value(void *ud, uint64_t h, uint32_t r, px_buf_t *out) {
  (void)ud;
  char b[64];
  int n = snprintf(b, sizeof b, "value-h%llu-r%u", (unsigned long long)h, r);
  return px_buf_append(out, b, (size_t)n);
}

static px_cons_t *mk_core(int self) {
  px_cons_config_t cfg;
  px_cons_config_default(&cfg);
  snprintf(cfg.chain_id, sizeof cfg.chain_id, "%s", CHAIN);
  if (self >= 0) {
    cfg.key = keys[self];
    cfg.has_key = 1;
  }
  cfg.propose_ms = 1000;
  cfg.propose_delta_ms = 100;
  cfg.prevote_ms = 500;
  cfg.prevote_delta_ms = 50;
  cfg.precommit_ms = 400;
  cfg.precommit_delta_ms = 40;
  cfg.resend_ms = 0;
  cfg.max_value = 4096;
  cfg.app.valid = app_valid;
  cfg.app.get_value = app_value;
  px_cons_t *c = NULL;
  assert_int_equal(px_cons_new(&cfg, &c), 0);
  return c;
}

/* Effects captured from a core. */
#define LOG_MAX 512
typedef struct {
  px_cons_fx_t fx[LOG_MAX];
  size_t n;
} fxlog_t;

static void drain(px_cons_t *c, fxlog_t *l) {
  px_cons_fx_t fx;
  while (px_cons_poll(c, &fx)) {
    assert_true(l->n < LOG_MAX);
    l->fx[l->n++] = fx;
  }
}

static void log_free(fxlog_t *l) {
  for (size_t i = 0; i < l->n; i++)
    px_cons_fx_release(&l->fx[i]);
  l->n = 0;
}

/* The last vote of type t, round r that the core broadcast (its own). */
static int own_vote(const fxlog_t *l, px_cons_msg_type_t t, uint32_t r,
                    px_cons_vote_t *out) {
  int found = 0;
  for (size_t i = 0; i < l->n; i++) {
    const px_cons_fx_t *f = &l->fx[i];
    px_cons_vote_t v;
    if (f->kind != PX_CONS_FX_BROADCAST ||
        px_cons_vote_decode(f->data.data, f->data.len, &v) != 0)
      continue;
    if (v.type == t && v.round == r && v.validator == me) {
      *out = v;
      found = 1;
    }
  }
  return found;
}

static size_t count_kind(const fxlog_t *l, px_cons_fx_kind_t k) {
  size_t n = 0;
  for (size_t i = 0; i < l->n; i++)
    n += l->fx[i].kind == k;
  return n;
}

static const px_cons_fx_t *find_timeout(const fxlog_t *l, px_cons_step_t s,
                                        uint32_t r) {
  for (size_t i = 0; i < l->n; i++)
    if (l->fx[i].kind == PX_CONS_FX_SCHEDULE_TIMEOUT && l->fx[i].step == s &&
        l->fx[i].round == r)
      return &l->fx[i];
  return NULL;
}

static void mk_vote(px_buf_t *out, px_cons_msg_type_t t, uint64_t h, uint32_t r,
                    const uint8_t *hash, uint32_t idx) {
  px_cons_vote_t v;
  memset(&v, 0, sizeof v);
  v.type = t;
  v.height = h;
  v.round = r;
  v.has_value = hash != NULL;
  if (hash) memcpy(v.hash, hash, PX_HASH_LEN);
  v.validator = (uint16_t)idx;
  assert_int_equal(px_cons_vote_sign(CHAIN, &keys[idx], &v), 0);
  px_buf_reset(out);
  assert_int_equal(px_cons_vote_encode(&v, out), 0);
}

static void mk_prop(px_buf_t *out, uint64_t h, uint32_t r, const char *value,
                    int32_t vr, uint32_t idx) {
  px_cons_proposal_t p;
  memset(&p, 0, sizeof p);
  p.height = h;
  p.round = r;
  p.valid_round = vr;
  p.proposer = (uint16_t)idx;
  p.value = (const uint8_t *)value;
  p.value_len = strlen(value);
  assert_int_equal(px_cons_proposal_sign(CHAIN, &keys[idx], &p), 0);
  px_buf_reset(out);
  assert_int_equal(px_cons_proposal_encode(&p, out), 0);
}

static void id_of(const char *value, uint8_t h[PX_HASH_LEN]) {
  px_hash(h, value, strlen(value));
}

/* Send a proposal from the round's proposer. */
static int send_prop(px_cons_t *c, uint32_t r, const char *value, int32_t vr) {
  px_buf_t b;
  px_buf_init(&b, 0);
  mk_prop(&b, 1, r, value, vr, px_cons_valset_proposer(&vs, r));
  int rc = px_cons_on_message(c, b.data, b.len, 0);
  px_buf_release(&b);
  return rc;
}

/* Votes of type t in round r for value (NULL: nil) from k validators other
 * than me. */
static void send_votes(px_cons_t *c, px_cons_msg_type_t t, uint32_t r,
                       const char *value, int k) {
  uint8_t h[PX_HASH_LEN];
  if (value) id_of(value, h);
  px_buf_t b;
  px_buf_init(&b, 0);
  for (uint32_t i = 0; i < NV && k > 0; i++) {
    if (i == me) continue;
    mk_vote(&b, t, 1, r, value ? h : NULL, i);
    assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), 0);
    k--;
  }
  px_buf_release(&b);
}

static px_cons_state_t state_of(px_cons_t *c) {
  px_cons_state_t st;
  px_cons_get_state(c, &st);
  return st;
}

/* ---- messages ------------------------------------------------------------ */

static void test_vote_codec(void **state) {
  (void)state;
  px_buf_t b;
  px_buf_init(&b, 0);
  uint8_t h[PX_HASH_LEN];
  id_of("abc", h);
  mk_vote(&b, PX_CONS_MSG_PREVOTE, 7, 3, h, 2);
  assert_int_equal(b.len, PX_CONS_VOTE_LEN);
  px_cons_vote_t v;
  assert_int_equal(px_cons_vote_decode(b.data, b.len, &v), 0);
  assert_int_equal(v.height, 7);
  assert_int_equal(v.round, 3);
  assert_int_equal(v.validator, 2);
  assert_memory_equal(v.hash, h, PX_HASH_LEN);
  assert_int_equal(px_cons_vote_verify(CHAIN, keys[2].pk, &v), 0);
  assert_int_equal(px_cons_vote_verify("other-chain", keys[2].pk, &v),
                   PX_EBADSIG);
  assert_int_equal(px_cons_vote_verify(CHAIN, keys[1].pk, &v), PX_EBADSIG);
  /* Strictness. */
  assert_int_equal(px_cons_vote_decode(b.data, b.len - 1, &v), PX_ETRUNC);
  uint8_t big[PX_CONS_VOTE_LEN + 1];
  memcpy(big, b.data, b.len);
  big[b.len] = 0;
  assert_int_equal(px_cons_vote_decode(big, sizeof big, &v), PX_ETRAILING);
  memcpy(big, b.data, b.len);
  big[2] = 9; /* version */
  assert_int_equal(px_cons_vote_decode(big, b.len, &v), PX_EVERSION);
  memcpy(big, b.data, b.len);
  big[15] = 2; /* has_value flag */
  assert_int_equal(px_cons_vote_decode(big, b.len, &v), PX_EDECODE);
  big[15] = 0; /* nil with a non-zero hash */
  assert_int_equal(px_cons_vote_decode(big, b.len, &v), PX_EDECODE);
  memcpy(big, b.data, b.len);
  big[0] = 0x01; /* tag: PROPOSAL */
  assert_int_equal(px_cons_vote_decode(big, b.len, &v), PX_EDECODE);
  px_buf_release(&b);
}

static void test_proposal_codec(void **state) {
  (void)state;
  px_buf_t b;
  px_buf_init(&b, 0);
  mk_prop(&b, 5, 2, "block", 1, 3);
  px_cons_proposal_t p;
  assert_int_equal(px_cons_proposal_decode(b.data, b.len, 4096, &p), 0);
  assert_int_equal(p.valid_round, 1);
  assert_int_equal(p.value_len, 5);
  assert_memory_equal(p.value, "block", 5);
  assert_int_equal(px_cons_proposal_verify(CHAIN, keys[3].pk, &p), 0);
  assert_int_equal(px_cons_proposal_decode(b.data, b.len, 4, &p), PX_ETOOBIG);
  /* valid_round must be < round. */
  px_cons_proposal_t q;
  memset(&q, 0, sizeof q);
  q.round = 2;
  q.valid_round = 2;
  q.value = (const uint8_t *)"x";
  q.value_len = 1;
  px_buf_reset(&b);
  assert_int_equal(px_cons_proposal_encode(&q, &b), PX_EINVAL);
  assert_int_equal(b.len, 0);
  q.valid_round = -2;
  assert_int_equal(px_cons_proposal_encode(&q, &b), PX_EINVAL);
  q.valid_round = -1;
  q.round = PX_CONS_MAX_ROUND + 1;
  assert_int_equal(px_cons_proposal_encode(&q, &b), PX_EINVAL);
  px_buf_release(&b);
}

/* ---- proposer selection -------------------------------------------------- */

static void test_proposer_weighted(void **state) {
  (void)state;
  /* The spec's example: powers 1 and 3 give the period [p2, p1, p2, p2]. */
  uint8_t pks[2][PX_PK_LEN];
  uint64_t pw[2] = {1, 3};
  /* In the spec's table p1 wins the tie of run 2: ties go to the smaller
   * key, so p1 (power 1) gets the smaller of the two keys. */
  int lo = memcmp(keys[0].pk, keys[1].pk, PX_PK_LEN) < 0 ? 0 : 1;
  memcpy(pks[0], keys[lo].pk, PX_PK_LEN);
  memcpy(pks[1], keys[1 - lo].pk, PX_PK_LEN);
  px_cons_valset_t s;
  assert_int_equal(
      px_cons_valset_init(&s, (const uint8_t(*)[PX_PK_LEN])pks, pw, 2), 0);
  uint32_t seq[8];
  for (uint32_t r = 0; r < 8; r++)
    seq[r] = px_cons_valset_proposer(&s, r);
  const uint32_t want[8] = {1, 0, 1, 1, 1, 0, 1, 1};
  assert_memory_equal(seq, want, sizeof want);
  /* Over heights (advance) the frequency follows the power too. */
  int count[2] = {0, 0};
  for (int h = 0; h < 400; h++) {
    count[px_cons_valset_proposer(&s, 0)]++;
    px_cons_valset_advance(&s);
  }
  assert_int_equal(count[0], 100);
  assert_int_equal(count[1], 300);
  /* Bad sets. */
  pw[0] = 0;
  assert_int_equal(
      px_cons_valset_init(&s, (const uint8_t(*)[PX_PK_LEN])pks, pw, 2),
      PX_EINVAL);
  pw[0] = PX_CONS_MAX_POWER;
  assert_int_equal(
      px_cons_valset_init(&s, (const uint8_t(*)[PX_PK_LEN])pks, pw, 2),
      PX_ERANGE);
}

static void test_proposer_equal_rotates(void **state) {
  (void)state;
  int seen[NV] = {0};
  for (uint32_t r = 0; r < NV; r++)
    seen[px_cons_valset_proposer(&vs, r)]++;
  for (int i = 0; i < NV; i++)
    assert_int_equal(seen[i], 1);
}

/* ---- the rules ----------------------------------------------------------- */

/* L22-L27: a valid proposal with vr = -1 is prevoted; L21 timeouts. */
static void test_prevote_on_proposal(void **state) {
  (void)state;
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  drain(c, &l);
  assert_non_null(find_timeout(&l, PX_CONS_STEP_PROPOSE, 0));
  assert_int_equal(find_timeout(&l, PX_CONS_STEP_PROPOSE, 0)->at, 1000);
  assert_int_equal(send_prop(c, 0, "blockA", -1), 0);
  drain(c, &l);
  px_cons_vote_t v;
  assert_true(own_vote(&l, PX_CONS_MSG_PREVOTE, 0, &v));
  uint8_t h[PX_HASH_LEN];
  id_of("blockA", h);
  assert_true(v.has_value);
  assert_memory_equal(v.hash, h, PX_HASH_LEN);
  assert_int_equal(state_of(c).step, PX_CONS_STEP_PREVOTE);
  /* The own vote was persisted (sync) before it was broadcast. */
  size_t persist_at = LOG_MAX, bcast_at = LOG_MAX;
  for (size_t i = 0; i < l.n; i++) {
    if (l.fx[i].kind == PX_CONS_FX_PERSIST &&
        l.fx[i].wal_type == PX_CONS_WAL_OWN && persist_at == LOG_MAX) {
      assert_true(l.fx[i].sync);
      persist_at = i;
    }
    if (l.fx[i].kind == PX_CONS_FX_BROADCAST && bcast_at == LOG_MAX)
      bcast_at = i;
  }
  assert_true(persist_at < bcast_at);
  log_free(&l);
  px_cons_free(c);
}

/* L22-L26: an invalid value is prevoted nil. */
static void test_prevote_nil_invalid(void **state) {
  (void)state;
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  assert_int_equal(send_prop(c, 0, "Xbad", -1), 0);
  drain(c, &l);
  px_cons_vote_t v;
  assert_true(own_vote(&l, PX_CONS_MSG_PREVOTE, 0, &v));
  assert_false(v.has_value);
  log_free(&l);
  px_cons_free(c);
}

/* L57-L67 and the linear growth of timeouts. */
static void test_timeouts(void **state) {
  (void)state;
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  /* OnTimeoutPropose: prevote nil. */
  assert_int_equal(px_cons_on_timeout(c, 1, 0, PX_CONS_STEP_PROPOSE, 1000), 0);
  drain(c, &l);
  px_cons_vote_t v;
  assert_true(own_vote(&l, PX_CONS_MSG_PREVOTE, 0, &v));
  assert_false(v.has_value);
  /* A stale timeout does nothing. */
  size_t before = l.n;
  assert_int_equal(px_cons_on_timeout(c, 1, 0, PX_CONS_STEP_PROPOSE, 1001), 0);
  drain(c, &l);
  assert_int_equal(l.n, before);
  /* L34: 2f+1 prevotes of any kind schedule timeoutPrevote, once. */
  send_votes(c, PX_CONS_MSG_PREVOTE, 0, "a", 1);
  send_votes(c, PX_CONS_MSG_PREVOTE, 0, NULL, 0);
  drain(c, &l);
  assert_null(find_timeout(&l, PX_CONS_STEP_PREVOTE, 0));
  px_buf_t b;
  px_buf_init(&b, 0);
  uint8_t hb[PX_HASH_LEN];
  id_of("b", hb);
  uint32_t other = me;
  for (uint32_t i = 0; i < NV; i++)
    if (i != me) other = i; /* not the validator send_votes used */
  mk_vote(&b, PX_CONS_MSG_PREVOTE, 1, 0, hb, other);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 1100), 0);
  drain(c, &l);
  const px_cons_fx_t *t = find_timeout(&l, PX_CONS_STEP_PREVOTE, 0);
  assert_non_null(t);
  assert_int_equal(t->at, 1100 + 500);
  /* OnTimeoutPrevote: precommit nil. */
  assert_int_equal(px_cons_on_timeout(c, 1, 0, PX_CONS_STEP_PREVOTE, 1600), 0);
  drain(c, &l);
  assert_true(own_vote(&l, PX_CONS_MSG_PRECOMMIT, 0, &v));
  assert_false(v.has_value);
  assert_int_equal(state_of(c).step, PX_CONS_STEP_PRECOMMIT);
  /* OnTimeoutPrecommit: round 1, whose timeouts are longer. */
  assert_int_equal(px_cons_on_timeout(c, 1, 0, PX_CONS_STEP_PRECOMMIT, 2000),
                   0);
  drain(c, &l);
  assert_int_equal(state_of(c).round, 1);
  t = find_timeout(&l, PX_CONS_STEP_PROPOSE, 1);
  assert_non_null(t);
  assert_int_equal(t->at, 2000 + 1000 + 100);
  px_buf_release(&b);
  log_free(&l);
  px_cons_free(c);
}

/* L44-L46: 2f+1 nil prevotes give a nil precommit. */
static void test_nil_polka(void **state) {
  (void)state;
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  assert_int_equal(px_cons_on_timeout(c, 1, 0, PX_CONS_STEP_PROPOSE, 1000), 0);
  send_votes(c, PX_CONS_MSG_PREVOTE, 0, NULL, 2);
  drain(c, &l);
  px_cons_vote_t v;
  assert_true(own_vote(&l, PX_CONS_MSG_PRECOMMIT, 0, &v));
  assert_false(v.has_value);
  assert_int_equal(state_of(c).locked_round, -1);
  log_free(&l);
  px_cons_free(c);
}

/* L36-L43 locking, then L22-L26: a locked process prevotes nil for another
 * value; L28-L33 and L36: it unlocks on a higher polka. */
static void test_lock_and_unlock(void **state) {
  (void)state;
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  assert_int_equal(send_prop(c, 0, "A", -1), 0);
  send_votes(c, PX_CONS_MSG_PREVOTE, 0, "A", 2);
  drain(c, &l);
  px_cons_vote_t v;
  uint8_t ha[PX_HASH_LEN], hb[PX_HASH_LEN];
  id_of("A", ha);
  id_of("B", hb);
  assert_true(own_vote(&l, PX_CONS_MSG_PRECOMMIT, 0, &v));
  assert_memory_equal(v.hash, ha, PX_HASH_LEN);
  px_cons_state_t st = state_of(c);
  assert_int_equal(st.locked_round, 0);
  assert_int_equal(st.valid_round, 0);
  assert_memory_equal(st.locked_hash, ha, PX_HASH_LEN);

  /* Round 1: B with vr = -1.  Locked on A: prevote nil. */
  assert_int_equal(px_cons_on_timeout(c, 1, 0, PX_CONS_STEP_PRECOMMIT, 3000),
                   0);
  assert_int_equal(send_prop(c, 1, "B", -1), 0);
  drain(c, &l);
  assert_true(own_vote(&l, PX_CONS_MSG_PREVOTE, 1, &v));
  assert_false(v.has_value);
  /* A polka for B in round 1 (the three others): L36 with step prevote
   * locks on B and precommits it. */
  send_votes(c, PX_CONS_MSG_PREVOTE, 1, "B", 3);
  drain(c, &l);
  assert_true(own_vote(&l, PX_CONS_MSG_PRECOMMIT, 1, &v));
  assert_memory_equal(v.hash, hb, PX_HASH_LEN);
  st = state_of(c);
  assert_int_equal(st.locked_round, 1);
  assert_memory_equal(st.locked_hash, hb, PX_HASH_LEN);

  /* Round 2: the proposer re-proposes B with vr = 1 and the polka is
   * known: L28 prevotes B (lockedRound 1 <= vr 1). */
  assert_int_equal(px_cons_on_timeout(c, 1, 1, PX_CONS_STEP_PRECOMMIT, 6000),
                   0);
  assert_int_equal(send_prop(c, 2, "B", 1), 0);
  drain(c, &l);
  assert_true(own_vote(&l, PX_CONS_MSG_PREVOTE, 2, &v));
  assert_true(v.has_value);
  assert_memory_equal(v.hash, hb, PX_HASH_LEN);
  log_free(&l);
  px_cons_free(c);
}

/* L28: a proposal with vr whose polka is unknown waits for timeoutPropose;
 * a locked process with lockedRound > vr prevotes nil. */
static void test_valid_round_needs_polka(void **state) {
  (void)state;
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  assert_int_equal(px_cons_on_timeout(c, 1, 0, PX_CONS_STEP_PROPOSE, 1000), 0);
  assert_int_equal(px_cons_on_timeout(c, 1, 0, PX_CONS_STEP_PRECOMMIT, 2000),
                   0);
  assert_int_equal(state_of(c).round, 1);
  assert_int_equal(send_prop(c, 1, "C", 0), 0);
  drain(c, &l);
  px_cons_vote_t v;
  assert_false(own_vote(&l, PX_CONS_MSG_PREVOTE, 1, &v)); /* waits */
  /* The round-0 polka for C arrives (relayed): now L28 fires. */
  send_votes(c, PX_CONS_MSG_PREVOTE, 0, "C", 3);
  drain(c, &l);
  assert_true(own_vote(&l, PX_CONS_MSG_PREVOTE, 1, &v));
  assert_true(v.has_value);
  log_free(&l);
  px_cons_free(c);
}

/* L55-L56: f+1 messages of a higher round skip to it; f alone do not. */
static void test_round_skip(void **state) {
  (void)state;
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  send_votes(c, PX_CONS_MSG_PREVOTE, 5, NULL, 1);
  drain(c, &l);
  assert_int_equal(state_of(c).round, 0);
  /* A second validator (a precommit counts as well): f+1 = 2 of 4. */
  px_buf_t b;
  px_buf_init(&b, 0);
  uint32_t other = me;
  for (uint32_t i = 0; i < NV; i++)
    if (i != me) other = i; /* the last non-me: not the first used above */
  mk_vote(&b, PX_CONS_MSG_PRECOMMIT, 1, 5, NULL, other);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), 0);
  drain(c, &l);
  assert_int_equal(state_of(c).round, 5);
  assert_non_null(find_timeout(&l, PX_CONS_STEP_PROPOSE, 5));
  px_buf_release(&b);
  log_free(&l);
  px_cons_free(c);
}

/* Invalid signatures, non-members, wrong proposers and other chains are
 * ignored; duplicates are counted once. */
static void test_hostile_votes(void **state) {
  (void)state;
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  uint32_t o1 = (me + 1) % NV;
  px_buf_t b;
  px_buf_init(&b, 0);
  /* Bad signature. */
  mk_vote(&b, PX_CONS_MSG_PREVOTE, 1, 3, NULL, o1);
  b.data[b.len - 1] ^= 1;
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), PX_EBADSIG);
  /* Signed by someone else than the index says. */
  px_cons_vote_t v;
  memset(&v, 0, sizeof v);
  v.type = PX_CONS_MSG_PREVOTE;
  v.height = 1;
  v.round = 3;
  v.validator = (uint16_t)o1;
  px_cons_vote_sign(CHAIN, &keys[(o1 + 1) % NV], &v);
  px_buf_reset(&b);
  px_cons_vote_encode(&v, &b);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), PX_EBADSIG);
  /* Another chain. */
  px_cons_vote_sign("other-chain", &keys[o1], &v);
  px_buf_reset(&b);
  px_cons_vote_encode(&v, &b);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), PX_EBADSIG);
  /* Not a member: index beyond the set. */
  v.validator = NV;
  px_cons_vote_sign(CHAIN, &keys[o1], &v);
  px_buf_reset(&b);
  px_cons_vote_encode(&v, &b);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), PX_EPROTO);
  /* A proposal from someone who is not the round's proposer. */
  uint32_t notp = (px_cons_valset_proposer(&vs, 0) + 1) % NV;
  mk_prop(&b, 1, 0, "evil", -1, notp);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), PX_EPROTO);
  /* Wrong height. */
  mk_vote(&b, PX_CONS_MSG_PREVOTE, 9, 0, NULL, o1);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), PX_ESTATE);
  /* None of that moved the core to round 3. */
  drain(c, &l);
  assert_int_equal(state_of(c).round, 0);
  /* Duplicates count once: one validator's vote three times is not f+1. */
  mk_vote(&b, PX_CONS_MSG_PREVOTE, 1, 3, NULL, o1);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), 0);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), PX_EDUP);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), PX_EDUP);
  assert_int_equal(state_of(c).round, 0);
  px_cons_stats_t st;
  px_cons_get_stats(c, &st);
  assert_int_equal(st.dups, 2);
  assert_int_equal(st.bad_sig, 3);
  px_buf_release(&b);
  log_free(&l);
  px_cons_free(c);
}

/* L49-L54: a decision with a commit certificate that verifies. */
static void test_decide_and_commit(void **state) {
  (void)state;
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  assert_int_equal(send_prop(c, 0, "D", -1), 0);
  send_votes(c, PX_CONS_MSG_PREVOTE, 0, "D", 2);
  send_votes(c, PX_CONS_MSG_PRECOMMIT, 0, "D", 2);
  drain(c, &l);
  assert_int_equal(count_kind(&l, PX_CONS_FX_DECIDE), 1);
  const px_cons_fx_t *d = NULL;
  for (size_t i = 0; i < l.n; i++)
    if (l.fx[i].kind == PX_CONS_FX_DECIDE) d = &l.fx[i];
  assert_int_equal(d->height, 1);
  assert_int_equal(d->data.len, 1);
  assert_memory_equal(d->data.data, "D", 1);
  px_cons_commit_t cm;
  assert_int_equal(px_cons_commit_decode(d->commit.data, d->commit.len, &cm),
                   0);
  assert_int_equal(cm.n, 3);
  uint8_t h[PX_HASH_LEN];
  id_of("D", h);
  assert_int_equal(px_cons_commit_verify(CHAIN, &vs, &cm, h), 0);
  assert_int_equal(px_cons_commit_verify("x", &vs, &cm, h), PX_EBADSIG);
  /* Two signatures are not enough power. */
  px_cons_commit_t two = cm;
  two.n = 2;
  assert_int_equal(px_cons_commit_verify(CHAIN, &vs, &two, h), PX_EAUTH);
  /* A tampered signature. */
  px_cons_commit_t bad = cm;
  bad.sigs[1].sig[0] ^= 1;
  assert_int_equal(px_cons_commit_verify(CHAIN, &vs, &bad, h), PX_EBADSIG);
  /* Unsorted signatures do not encode. */
  px_cons_commit_t uns = cm;
  uns.sigs[0] = cm.sigs[1];
  uns.sigs[1] = cm.sigs[0];
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_cons_commit_encode(&uns, &b), PX_EINVAL);
  /* Later messages of the height are stale; the next height starts. */
  send_votes(c, PX_CONS_MSG_PRECOMMIT, 0, "D", 0);
  assert_int_equal(px_cons_start(c, 1, &vs, 0), PX_ESTATE);
  assert_int_equal(px_cons_start(c, 2, &vs, 0), 0);
  assert_int_equal(state_of(c).height, 2);
  assert_int_equal(state_of(c).locked_round, -1);

  /* Catch-up: another core decides from a DECISION message alone. */
  px_cons_t *late = mk_core(-1);
  fxlog_t l2 = {0};
  assert_int_equal(px_cons_start(late, 1, &vs, 0), 0);
  px_buf_reset(&b);
  assert_int_equal(px_cons_decision_encode((const uint8_t *)"D", 1, &cm, &b),
                   0);
  assert_int_equal(px_cons_on_message(late, b.data, b.len, 0), 0);
  drain(late, &l2);
  assert_int_equal(count_kind(&l2, PX_CONS_FX_DECIDE), 1);
  log_free(&l2);
  px_cons_free(late);
  px_buf_release(&b);
  log_free(&l);
  px_cons_free(c);
}

/* Conflicting votes: evidence emitted once, verifiable; the second vote
 * still counts toward its own value. */
static void test_evidence(void **state) {
  (void)state;
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  uint32_t o = (me + 1) % NV;
  uint8_t h1[PX_HASH_LEN], h2[PX_HASH_LEN];
  id_of("E1", h1);
  id_of("E2", h2);
  px_buf_t a, b;
  px_buf_init(&a, 0);
  px_buf_init(&b, 0);
  mk_vote(&a, PX_CONS_MSG_PRECOMMIT, 1, 0, h1, o);
  mk_vote(&b, PX_CONS_MSG_PRECOMMIT, 1, 0, h2, o);
  assert_int_equal(px_cons_on_message(c, a.data, a.len, 0), 0);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), 0);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), PX_EDUP);
  drain(c, &l);
  assert_int_equal(count_kind(&l, PX_CONS_FX_EVIDENCE), 1);
  const px_cons_fx_t *f = NULL;
  for (size_t i = 0; i < l.n; i++)
    if (l.fx[i].kind == PX_CONS_FX_EVIDENCE) f = &l.fx[i];
  px_cons_evidence_t ev;
  assert_int_equal(px_cons_evidence_decode(f->data.data, f->data.len, &ev), 0);
  assert_int_equal(px_cons_evidence_verify(CHAIN, &vs, &ev), 0);
  assert_int_equal(ev.a.validator, o);
  /* Re-encodes identically; swapped order is not canonical. */
  px_buf_t e2;
  px_buf_init(&e2, 0);
  assert_int_equal(px_cons_evidence_encode(&ev, &e2), 0);
  assert_int_equal(e2.len, f->data.len);
  assert_memory_equal(e2.data, f->data.data, e2.len);
  px_cons_evidence_t sw = {.a = ev.b, .b = ev.a};
  assert_int_equal(px_cons_evidence_verify(CHAIN, &vs, &sw), PX_EPROTO);
  /* Same vote twice is no evidence; a forged one fails. */
  px_cons_evidence_t same = {.a = ev.a, .b = ev.a};
  assert_int_equal(px_cons_evidence_verify(CHAIN, &vs, &same), PX_EPROTO);
  px_cons_evidence_t forged = ev;
  forged.b.sig[3] ^= 1;
  assert_int_equal(px_cons_evidence_verify(CHAIN, &vs, &forged), PX_EBADSIG);
  /* A third value from the same validator is refused. */
  mk_vote(&b, PX_CONS_MSG_PRECOMMIT, 1, 0, NULL, o);
  assert_int_equal(px_cons_on_message(c, b.data, b.len, 0), PX_EPROTO);
  px_buf_release(&a);
  px_buf_release(&b);
  px_buf_release(&e2);
  log_free(&l);
  px_cons_free(c);
}

/* The proposer proposes getValue(), or its validValue with validRound. */
static void test_proposer_uses_valid_value(void **state) {
  (void)state;
  uint32_t p1 = px_cons_valset_proposer(&vs, 1);
  px_cons_t *c = mk_core((int)p1);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  uint32_t saved = me;
  me = p1; /* send_votes skips "me" */
  assert_int_equal(send_prop(c, 0, "V", -1), 0);
  send_votes(c, PX_CONS_MSG_PREVOTE, 0, "V", 2);
  assert_int_equal(state_of(c).valid_round, 0);
  assert_int_equal(px_cons_on_timeout(c, 1, 0, PX_CONS_STEP_PRECOMMIT, 1000),
                   0);
  drain(c, &l);
  int found = 0;
  for (size_t i = 0; i < l.n; i++) {
    px_cons_proposal_t p;
    if (l.fx[i].kind == PX_CONS_FX_BROADCAST &&
        px_cons_proposal_decode(l.fx[i].data.data, l.fx[i].data.len, 4096,
                                &p) == 0 &&
        p.round == 1) {
      assert_int_equal(p.valid_round, 0);
      assert_int_equal(p.value_len, 1);
      assert_memory_equal(p.value, "V", 1);
      found = 1;
    }
  }
  assert_true(found);
  me = saved;
  log_free(&l);
  px_cons_free(c);
}

/* ---- WAL ----------------------------------------------------------------- */

static void test_wal_frame_scan(void **state) {
  (void)state;
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_wal_frame(&b, 1, "hello", 5), 0);
  assert_int_equal(px_wal_frame(&b, 2, NULL, 0), 0);
  assert_int_equal(b.len, 2 * PX_WAL_OVERHEAD + 5);
  size_t pos = 0;
  px_wal_record_t r;
  assert_int_equal(px_wal_next(b.data, b.len, &pos, &r), 1);
  assert_int_equal(r.type, 1);
  assert_int_equal(r.len, 5);
  assert_memory_equal(r.payload, "hello", 5);
  assert_int_equal(px_wal_next(b.data, b.len, &pos, &r), 1);
  assert_int_equal(r.type, 2);
  assert_int_equal(px_wal_next(b.data, b.len, &pos, &r), 0);
  /* Every truncation: the good prefix and a torn tail. */
  for (size_t cut = 0; cut <= b.len; cut++) {
    px_wal_replay_info_t info;
    assert_int_equal(px_wal_replay_mem(b.data, cut, NULL, NULL, &info), 0);
    size_t first = PX_WAL_OVERHEAD + 5;
    size_t want_good = cut >= b.len ? b.len : (cut >= first ? first : 0);
    assert_int_equal(info.good_len, want_good);
    assert_int_equal(info.tail_err, cut == want_good ? 0 : PX_ETRUNC);
  }
  /* A flipped bit anywhere in the first record is caught. */
  for (size_t i = 0; i < PX_WAL_OVERHEAD + 5; i++) {
    b.data[i] ^= 0x10;
    px_wal_replay_info_t info;
    assert_int_equal(px_wal_replay_mem(b.data, b.len, NULL, NULL, &info), 0);
    assert_int_equal(info.records, 0);
    assert_true(info.tail_err == PX_EAUTH || info.tail_err == PX_ETRUNC ||
                info.tail_err == PX_ETOOBIG);
    b.data[i] ^= 0x10;
  }
  px_buf_release(&b);
}

static void test_wal_file(void **state) {
  (void)state;
  char path[] = "/tmp/px_wal_test_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  px_wal_t *w;
  assert_int_equal(px_wal_open(path, &w), 0);
  for (int i = 0; i < 10; i++) {
    uint8_t p[16];
    memset(p, i, sizeof p);
    for (int k = 0; k < 8; k++)
      p[k] = (uint8_t)((uint64_t)(i + 1) >> (8 * k));
    assert_int_equal(px_wal_append(w, PX_CONS_WAL_HEIGHT, p, 8, i % 2), 0);
  }
  px_wal_close(w);
  px_wal_replay_info_t info;
  assert_int_equal(px_wal_replay_file(path, NULL, NULL, &info), 0);
  assert_int_equal(info.records, 10);
  assert_int_equal(info.tail_err, 0);
  assert_int_equal(info.max_height, 10);
  /* Tear the last record. */
  assert_int_equal(truncate(path, (off_t)info.good_len - 3), 0);
  assert_int_equal(px_wal_replay_file(path, NULL, NULL, &info), 0);
  assert_int_equal(info.records, 9);
  assert_int_equal(info.tail_err, PX_ETRUNC);
  char line[256];
  px_wal_describe(path, &info, line, sizeof line);
  assert_non_null(strstr(line, "torn record"));
  assert_non_null(strstr(line, "height 10"));
  assert_int_equal(px_wal_truncate(path, info.good_len), 0);
  assert_int_equal(px_wal_replay_file(path, NULL, NULL, &info), 0);
  assert_int_equal(info.tail_err, 0);
  assert_int_equal(info.records, 9);
  unlink(path);
  assert_int_equal(px_wal_replay_file(path, NULL, NULL, &info), PX_ENOENT);
}

/* What a core signed, for double-sign checks: (round, step, sign bytes
 * hash) of every own message. */
typedef struct {
  uint32_t round;
  uint8_t step;
  uint8_t sbh[PX_HASH_LEN];
} signed_t;

static int signed_of(const uint8_t *msg, size_t n, signed_t *out) {
  px_cons_vote_t v;
  px_cons_proposal_t p;
  px_buf_t sb;
  px_buf_init(&sb, 0);
  if (px_cons_vote_decode(msg, n, &v) == 0) {
    out->round = v.round;
    out->step = v.type == PX_CONS_MSG_PREVOTE ? 1 : 2;
    px_cons_vote_sign_bytes(CHAIN, &v, &sb);
  } else if (px_cons_proposal_decode(msg, n, 4096, &p) == 0) {
    out->round = p.round;
    out->step = 0;
    px_cons_proposal_sign_bytes(CHAIN, &p, &sb);
  } else {
    px_buf_release(&sb);
    return 0;
  }
  px_hash(out->sbh, sb.data, sb.len);
  px_buf_release(&sb);
  return 1;
}

static int replay_cb(void *ud, const px_wal_record_t *rec) {
  return px_cons_replay(ud, rec->type, rec->payload, rec->len, 0) == PX_EDECODE
             ? PX_EDECODE
             : 0;
}

/* The first run: prevote A, lock and precommit A in round 0, then round 1
 * (locked: prevote nil), timeouts to precommit nil.  Returns its WAL. */
static void first_run(px_buf_t *wal) {
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  assert_int_equal(send_prop(c, 0, "A", -1), 0);
  send_votes(c, PX_CONS_MSG_PREVOTE, 0, "A", 2);
  assert_int_equal(px_cons_on_timeout(c, 1, 0, PX_CONS_STEP_PRECOMMIT, 100), 0);
  assert_int_equal(send_prop(c, 1, "B", -1), 0);
  assert_int_equal(px_cons_on_timeout(c, 1, 1, PX_CONS_STEP_PREVOTE, 200), 0);
  drain(c, &l);
  for (size_t i = 0; i < l.n; i++)
    if (l.fx[i].kind == PX_CONS_FX_PERSIST)
      assert_int_equal(px_wal_frame(wal, l.fx[i].wal_type, l.fx[i].data.data,
                                    l.fx[i].data.len),
                       0);
  log_free(&l);
  px_cons_free(c);
}

/* Kill mid-write at every byte offset: replay stops at the last good
 * record (the damage is reported) and the restarted core, fed a
 * conflicting history (another proposal in round 0, polkas for it), never
 * signs anything that conflicts with a message that had left. */
static void test_wal_torn_never_double_signs(void **state) {
  (void)state;
  px_buf_t wal;
  px_buf_init(&wal, 0);
  first_run(&wal);
  /* Own messages and the offsets at which their records end (fsynced
   * then, so sent iff the cut is at or after that offset). */
  signed_t sent[64];
  size_t sent_end[64], nsent = 0;
  size_t pos = 0;
  px_wal_record_t rec;
  while (px_wal_next(wal.data, wal.len, &pos, &rec) == 1) {
    if (rec.type != PX_CONS_WAL_OWN) continue;
    px_reader_t r;
    px_reader_init(&r, rec.payload, rec.len);
    px_reader_u64(&r);
    px_reader_u32(&r);
    px_reader_u8(&r);
    const uint8_t *m;
    size_t mn;
    px_reader_bytes(&r, &m, &mn, 1 << 20);
    assert_int_equal(px_reader_finish(&r), 0);
    assert_true(signed_of(m, mn, &sent[nsent]));
    sent_end[nsent++] = pos;
  }
  assert_true(nsent >= 4); /* prevote A, precommit A, prevote nil, pc nil */

  size_t damaged = 0, refused_total = 0;
  for (size_t cut = 0; cut <= wal.len; cut++) {
    px_cons_t *c = mk_core((int)me);
    fxlog_t l = {0};
    px_wal_replay_info_t info;
    assert_int_equal(px_wal_replay_mem(wal.data, cut, replay_cb, c, &info), 0);
    if (info.tail_err) {
      damaged++;
      px_cons_set_sign_floor(c, info.max_height + 1);
    }
    assert_true(info.good_len <= cut);
    assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
    assert_int_equal(px_wal_replay_mem(wal.data, cut, replay_cb, c, &info), 0);
    /* A conflicting history. */
    (void)send_prop(c, 0, "Z", -1);
    uint8_t hz[PX_HASH_LEN];
    id_of("Z", hz);
    px_buf_t b;
    px_buf_init(&b, 0);
    for (uint32_t i = 0; i < NV; i++) {
      if (i == me) continue;
      mk_vote(&b, PX_CONS_MSG_PREVOTE, 1, 0, hz, i);
      (void)px_cons_on_message(c, b.data, b.len, 0);
    }
    for (uint32_t r = 0; r < 3; r++) {
      (void)px_cons_on_timeout(c, 1, r, PX_CONS_STEP_PROPOSE, 0);
      (void)px_cons_on_timeout(c, 1, r, PX_CONS_STEP_PREVOTE, 0);
      (void)px_cons_on_timeout(c, 1, r, PX_CONS_STEP_PRECOMMIT, 0);
    }
    px_buf_release(&b);
    drain(c, &l);
    for (size_t i = 0; i < l.n; i++) {
      signed_t s;
      if (l.fx[i].kind != PX_CONS_FX_BROADCAST ||
          !signed_of(l.fx[i].data.data, l.fx[i].data.len, &s))
        continue;
      px_cons_vote_t v;
      if (px_cons_vote_decode(l.fx[i].data.data, l.fx[i].data.len, &v) == 0 &&
          v.validator != me)
        continue;
      for (size_t k = 0; k < nsent; k++) {
        if (sent_end[k] > cut) continue; /* never left */
        if (sent[k].round == s.round && sent[k].step == s.step &&
            memcmp(sent[k].sbh, s.sbh, PX_HASH_LEN) != 0)
          fail_msg("double sign after a cut at byte %zu: round %u step %u", cut,
                   s.round, s.step);
      }
    }
    px_cons_stats_t st;
    px_cons_get_stats(c, &st);
    refused_total += st.sign_refused;
    log_free(&l);
    px_cons_free(c);
  }
  assert_true(damaged > 0);
  assert_true(refused_total > 0);
  px_buf_release(&wal);
}

/* After a clean restart the identical message is re-sent, not re-signed
 * differently; a different one for the same step is refused. */
static void test_guard_after_restart(void **state) {
  (void)state;
  px_buf_t wal;
  px_buf_init(&wal, 0);
  first_run(&wal);
  px_cons_t *c = mk_core((int)me);
  fxlog_t l = {0};
  px_wal_replay_info_t info;
  assert_int_equal(px_wal_replay_mem(wal.data, wal.len, replay_cb, c, &info),
                   0);
  assert_int_equal(info.tail_err, 0);
  px_cons_state_t st = state_of(c);
  assert_int_equal(st.last_signed_height, 1);
  assert_int_equal(st.last_signed_round, 1);
  assert_int_equal(st.last_signed_step, PX_CONS_STEP_PRECOMMIT);
  assert_int_equal(px_cons_start(c, 1, &vs, 0), 0);
  assert_int_equal(px_wal_replay_mem(wal.data, wal.len, replay_cb, c, &info),
                   0);
  drain(c, &l);
  st = state_of(c);
  assert_int_equal(st.round, 1); /* the replayed timeouts moved it on */
  assert_int_equal(st.step, PX_CONS_STEP_PRECOMMIT);
  assert_int_equal(st.locked_round, 0);
  /* Nothing new was signed while replaying. */
  px_cons_stats_t s;
  px_cons_get_stats(c, &s);
  assert_int_equal(s.signed_msgs, 0);
  log_free(&l);
  px_cons_free(c);
  px_buf_release(&wal);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vote_codec),
      cmocka_unit_test(test_proposal_codec),
      cmocka_unit_test(test_proposer_weighted),
      cmocka_unit_test(test_proposer_equal_rotates),
      cmocka_unit_test(test_prevote_on_proposal),
      cmocka_unit_test(test_prevote_nil_invalid),
      cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_nil_polka),
      cmocka_unit_test(test_lock_and_unlock),
      cmocka_unit_test(test_valid_round_needs_polka),
      cmocka_unit_test(test_round_skip),
      cmocka_unit_test(test_hostile_votes),
      cmocka_unit_test(test_decide_and_commit),
      cmocka_unit_test(test_evidence),
      cmocka_unit_test(test_proposer_uses_valid_value),
      cmocka_unit_test(test_wal_frame_scan),
      cmocka_unit_test(test_wal_file),
      cmocka_unit_test(test_wal_torn_never_double_signs),
      cmocka_unit_test(test_guard_after_restart),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
