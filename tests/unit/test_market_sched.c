/*
 * test_market_sched.c — simulations of the market scheduler (src/market/
 * sched.c) with seeded providers: honest, slow (leases expire), vanish
 * (never answer, or leave the registry), wrong (perturb one layer from
 * some point on), lazy (guess instead of computing: sealed commitments
 * give them nothing to copy) and equivocating (two signed commitments).
 * Every run checks: every shard accepted exactly once, each worker paid
 * once per accepted shard, payments never above escrow and paid + refund =
 * escrow at settlement, disputes find the exact perturbed layer with the
 * real bisection game, and a scheduler saved and restored mid-job produces
 * the same effect stream as one that never stopped.
 *
 * Traces are synthetic (leaf l of shard s = H(job, s, l), a wrong provider's
 * leaves from its layer on are different), so the simulation stays fast; the
 * real one-layer re-execution is tested in test_market.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/market.h"

enum { HONEST, SLOW, VANISH, GONE, WRONG, LAZY, EQUIV, BUSY };

#define N_LAYERS 8
#define WRONG_LAYER 5
#define MAX_PEND 4096
#define MAX_FX 200000

typedef struct {
  uint64_t t;
  int kind; /* 0 commit, 1 audit result, 2 seed, 3 dispute resolved, 4 gone,
              5 lease refused (busy) */
  uint32_t shard;
  int prov, other;
} pend_t;

typedef struct {
  px_job_spec_t spec;
  uint8_t job_id[32];
  int n_prov;
  px_provider_info_t info[8];
  px_keypair_t kp[8];
  int beh[8];
  px_sched_t *s;
  pend_t pend[MAX_PEND];
  int n_pend;
  uint64_t now;
  px_rng_t rng;
  uint32_t n_shards;
  int accepted[64], wrong_accepted, disputes, slashed[8], expired, settled;
  int pays[64];
  uint64_t paid, refund, escrow;
  int found_layer_ok, found_layer_bad;
  int evidence;
  int offers[8]; /* leases offered per provider (BUSY refuses every other) */
  /* effect log for the save/restore comparison */
  px_sched_fx_t *log;
  size_t n_log;
} sim_t;

static void leaf_of(const sim_t *m, uint32_t shard, int l, int wrong,
                    uint8_t out[32]) {
  uint8_t b[32 + 4 + 4 + 1];
  memcpy(b, m->job_id, 32);
  memcpy(b + 32, &shard, 4);
  memcpy(b + 36, &l, 4);
  b[40] = (uint8_t)(l >= WRONG_LAYER ? wrong : 0); /* liar's flavour */
  px_merkle_leaf(out, b, sizeof b);
}

static void trace_of(const sim_t *m, uint32_t shard, int wrong,
                     uint8_t leaves[N_LAYERS][32], uint8_t root[32]) {
  for (int l = 0; l < N_LAYERS; l++)
    leaf_of(m, shard, l, wrong, leaves[l]);
  assert_int_equal(px_merkle_root((const uint8_t(*)[32])leaves, N_LAYERS, root),
                   0);
}

static void push(sim_t *m, pend_t p) {
  assert_true(m->n_pend < MAX_PEND);
  m->pend[m->n_pend++] = p;
}

/* Does provider p produce a wrong result for this shard?  0 if not, else
 * its own flavour of wrong: independent liars do not agree with each other
 * (a colluding pair would share one). */
static int is_wrong(const sim_t *m, int p, uint32_t shard) {
  if (m->beh[p] == WRONG) return p + 1;
  if (m->beh[p] == LAZY && shard % 2 == 0) return p + 1; /* guesses miss */
  return 0;
}

static void commitment(const sim_t *m, int p, uint32_t shard, int wrong,
                       px_commitment_t *c) {
  uint8_t leaves[N_LAYERS][32];
  memset(c, 0, sizeof *c);
  memcpy(c->job_id, m->job_id, 32);
  c->shard = shard;
  c->n_layers = N_LAYERS;
  trace_of(m, shard, wrong, leaves, c->trace_root);
  memcpy(c->output, leaves[N_LAYERS - 1], 32);
  assert_int_equal(px_commitment_sign(c, &m->kp[p]), 0);
}

static int prov_of(const sim_t *m, const uint8_t id[32]) {
  for (int i = 0; i < m->n_prov; i++)
    if (!memcmp(m->info[i].id, id, 32)) return i;
  fail();
  return -1;
}

/* Play the bisection game between providers a and b on a shard. */
static void play_dispute(sim_t *m, uint32_t shard, int a, int b) {
  px_commitment_t ca, cb;
  int wa = is_wrong(m, a, shard), wb = is_wrong(m, b, shard);
  commitment(m, a, shard, wa, &ca);
  commitment(m, b, shard, wb, &cb);
  px_dispute_t d;
  assert_int_equal(px_dispute_init(&d, &ca, &cb), 0);
  uint8_t la[N_LAYERS][32], lb[N_LAYERS][32], r[32];
  trace_of(m, shard, wa, la, r);
  trace_of(m, shard, wb, lb, r);
  int rounds = 0;
  while (d.status == PX_DISPUTE_OPEN) {
    px_dispute_challenge_t ch;
    px_dispute_response_t ra, rb;
    assert_int_equal(px_dispute_challenge(&d, &ch), 0);
    assert_int_equal(
        px_dispute_respond(&ch, (const uint8_t(*)[32])la, N_LAYERS, &ra), 0);
    assert_int_equal(
        px_dispute_respond(&ch, (const uint8_t(*)[32])lb, N_LAYERS, &rb), 0);
    assert_int_equal(px_dispute_answer(&d, 0, &ra), 0);
    assert_int_equal(px_dispute_answer(&d, 1, &rb), 0);
    rounds++;
  }
  assert_true(rounds <= 4); /* ceil(log2(9)) */
  assert_int_equal(d.status, PX_DISPUTE_FOUND);
  uint32_t layer;
  int has_in;
  uint8_t in_leaf[32], claim[2][32];
  assert_int_equal(px_dispute_result(&d, &layer, &has_in, in_leaf, claim), 0);
  if (layer == WRONG_LAYER)
    m->found_layer_ok++;
  else
    m->found_layer_bad++;
  /* the referee: the honest leaf at that layer wins; when both lied, B is
   * slashed now and A meets the next replica */
  uint8_t truth[32];
  leaf_of(m, shard, (int)layer, 0, truth);
  int a_right = !memcmp(claim[0], truth, 32);
  pend_t p = {m->now + 50, 3, shard, a_right ? a : b, a_right ? b : a};
  push(m, p);
}

static void record(sim_t *m, const px_sched_fx_t *fx) {
  if (!m->log) return;
  assert_true(m->n_log < MAX_FX);
  m->log[m->n_log++] = *fx;
}

static void drain(sim_t *m) {
  px_sched_fx_t fx;
  while (px_sched_poll(m->s, &fx)) {
    record(m, &fx);
    switch (fx.type) {
    case PX_SCHED_FX_ASSIGN:
    case PX_SCHED_FX_AUDIT: {
      int p = prov_of(m, fx.provider);
      assert_true(fx.deadline_ms > m->now);
      if (m->beh[p] == VANISH || m->beh[p] == GONE) {
        if (m->beh[p] == GONE) push(m, (pend_t){m->now + 300, 4, 0, p, 0});
        break;
      }
      if (m->beh[p] == BUSY && m->offers[p]++ % 2 == 0) {
        push(m, (pend_t){m->now + 2, 5, fx.shard, p, 0}); /* refused */
        break;
      }
      uint64_t work;
      assert_int_equal(px_job_shard_work(&m->spec, fx.shard, &work), 0);
      uint64_t ms = work * 1000 / m->info[p].speed;
      if (m->beh[p] == SLOW) ms *= 10;
      ms += px_rng_below(&m->rng, 50);
      push(m,
           (pend_t){m->now + ms, fx.type == PX_SCHED_FX_AUDIT, fx.shard, p, 0});
      break;
    }
    case PX_SCHED_FX_WANT_SEED:
      push(m, (pend_t){m->now + 20, 2, fx.shard, 0, 0});
      break;
    case PX_SCHED_FX_ACCEPT: {
      assert_true(fx.shard < m->n_shards);
      assert_int_equal(m->accepted[fx.shard], 0);
      m->accepted[fx.shard] = 1;
      uint8_t truth[32];
      leaf_of(m, fx.shard, N_LAYERS - 1, 0, truth);
      if (memcmp(truth, fx.output, 32)) m->wrong_accepted++;
      break;
    }
    case PX_SCHED_FX_PAY:
      assert_true(m->accepted[fx.shard]);
      m->pays[fx.shard]++;
      m->paid += fx.amount;
      assert_true(m->paid <= m->escrow);
      break;
    case PX_SCHED_FX_DISPUTE:
      m->disputes++;
      play_dispute(m, fx.shard, prov_of(m, fx.provider), prov_of(m, fx.other));
      break;
    case PX_SCHED_FX_SLASH:
      m->slashed[prov_of(m, fx.provider)]++;
      break;
    case PX_SCHED_FX_EXPIRED:
      m->expired++;
      break;
    case PX_SCHED_FX_SETTLE:
      m->settled++;
      assert_int_equal(fx.amount, m->paid);
      assert_int_equal(fx.amount + fx.refund, m->escrow);
      m->refund = fx.refund;
      break;
    }
  }
}

static void deliver(sim_t *m, const pend_t *p) {
  px_sched_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.now_ms = m->now;
  ev.shard = p->shard;
  int rc;
  switch (p->kind) {
  case 0:
  case 1: {
    px_commitment_t c;
    commitment(m, p->prov, p->shard, is_wrong(m, p->prov, p->shard), &c);
    assert_int_equal(px_commitment_verify(&c), 0);
    if (m->beh[p->prov] == EQUIV) {
      /* a second, different commitment: the runtime turns it into evidence */
      px_commitment_t c2;
      commitment(m, p->prov, p->shard, 99, &c2);
      px_buf_t b;
      px_buf_init(&b, 0);
      assert_int_equal(px_evidence_encode(&c, &c2, &b), 0);
      px_commitment_t x, y;
      assert_int_equal(px_evidence_decode(b.data, b.len, &x, &y), 0);
      px_buf_release(&b);
      m->evidence++;
    }
    ev.type = p->kind ? PX_SCHED_EV_AUDIT_RESULT : PX_SCHED_EV_COMMITTED;
    memcpy(ev.provider, c.provider, 32);
    memcpy(ev.output, c.output, 32);
    memcpy(ev.trace_root, c.trace_root, 32);
    ev.n_layers = c.n_layers;
    break;
  }
  case 2:
    ev.type = PX_SCHED_EV_AUDIT_SEED;
    px_rng_fill(&m->rng, ev.randomness, 32);
    break;
  case 3:
    ev.type = PX_SCHED_EV_DISPUTE_RESOLVED;
    memcpy(ev.provider, m->info[p->prov].id, 32);
    memcpy(ev.loser, m->info[p->other].id, 32);
    break;
  case 4:
    ev.type = PX_SCHED_EV_PROVIDER_GONE;
    memcpy(ev.provider, m->info[p->prov].id, 32);
    break;
  case 5:
    ev.type = PX_SCHED_EV_LEASE_REJECTED;
    memcpy(ev.provider, m->info[p->prov].id, 32);
    break;
  }
  rc = px_sched_handle(m->s, &ev);
  /* a late answer to an expired lease is refused, and a second "gone" */
  assert_true(rc == 0 || rc == PX_EPROTO || (p->kind == 4 && rc == 0));
  drain(m);
}

static void sim_init(sim_t *m, uint8_t policy, uint32_t param, const int *beh,
                     int n, uint64_t seed) {
  memset(m, 0, sizeof *m);
  px_rng_seed(&m->rng, seed);
  px_job_spec_t *s = &m->spec;
  s->kind = PX_JOB_INFER;
  s->nonce = seed;
  memset(s->model, 1, 32);
  memset(s->input, 2, 32);
  s->input_size = 640 * 784;
  s->n_samples = 640;
  s->shard_size = 10;
  s->work_per_sample = 1000;
  s->policy = policy;
  s->policy_param = param;
  s->price_ceiling = 10;
  s->deadline = 1000;
  assert_int_equal(px_job_spec_id(s, m->job_id), 0);
  m->n_shards = px_job_shard_count(s);
  m->n_prov = n;
  for (int i = 0; i < n; i++) {
    uint8_t seedb[32] = {(uint8_t)(i + 1), (uint8_t)seed};
    assert_int_equal(px_key_from_seed(&m->kp[i], seedb), 0);
    px_provider_info_t *p = &m->info[i];
    memcpy(p->id, m->kp[i].pk, 32);
    p->price = 5 + (uint64_t)i % 3;
    p->stake = 1000000;
    p->reputation = 9000;
    p->speed = 10000 + 2000 * (uint64_t)i;
    p->slots = 2;
    m->beh[i] = beh[i];
  }
  assert_int_equal(px_market_escrow_required(s, &m->escrow), 0);
  px_sched_opts_t o;
  px_sched_opts_default(&o);
  assert_int_equal(px_sched_new(s, &o, m->info, (size_t)n, m->escrow, &m->s),
                   0);
}

/* Run until settled; at step `save_at` (if > 0) save and restore. */
static void sim_run(sim_t *m, int save_at) {
  int step = 0;
  px_sched_event_t tick = {.type = PX_SCHED_EV_TICK};
  assert_int_equal(px_sched_handle(m->s, &tick), 0);
  drain(m);
  while (!m->settled && step < 20000) {
    step++;
    m->now += 100;
    for (int again = 1; again;) {
      again = 0;
      int best = -1;
      for (int i = 0; i < m->n_pend; i++)
        if (m->pend[i].t <= m->now &&
            (best < 0 || m->pend[i].t < m->pend[best].t))
          best = i;
      if (best >= 0) {
        pend_t p = m->pend[best];
        m->pend[best] = m->pend[--m->n_pend];
        deliver(m, &p);
        again = 1;
      }
    }
    tick.now_ms = m->now;
    assert_int_equal(px_sched_handle(m->s, &tick), 0);
    drain(m);
    if (step == save_at) {
      px_buf_t b;
      px_buf_init(&b, 0);
      assert_int_equal(px_sched_save(m->s, &b), 0);
      px_sched_t *r;
      assert_int_equal(px_sched_load(b.data, b.len, &r), 0);
      px_buf_t b2;
      px_buf_init(&b2, 0);
      assert_int_equal(px_sched_save(r, &b2), 0);
      assert_int_equal(b.len, b2.len);
      assert_memory_equal(b.data, b2.data, b.len);
      px_buf_release(&b);
      px_buf_release(&b2);
      px_sched_free(m->s);
      m->s = r;
    }
  }
}

static void check_common(sim_t *m) {
  assert_int_equal(m->settled, 1);
  for (uint32_t i = 0; i < m->n_shards; i++) {
    assert_int_equal(m->accepted[i], 1);
    assert_true(m->pays[i] >= 1);
  }
  assert_true(m->paid <= m->escrow);
  assert_int_equal(m->paid + m->refund, m->escrow);
  assert_int_equal(m->found_layer_bad, 0);
  px_sched_stats_t st;
  px_sched_stats(m->s, &st);
  if (getenv("PX_MARKET_SIM_VERBOSE"))
    printf("shards %u disputes %u audits %u expiries %u slashed %u "
           "wrong accepted %d paid %llu of %llu\n",
           st.shards, st.disputes, st.audits, st.expiries, st.slashed,
           m->wrong_accepted, (unsigned long long)st.paid,
           (unsigned long long)st.escrow);
  assert_int_equal(st.accepted, m->n_shards);
  assert_int_equal(st.paid, m->paid);
  assert_int_equal(st.running, 0);
}

static void sim_free(sim_t *m) {
  px_sched_free(m->s);
  free(m->log);
  m->s = NULL;
}

static void test_honest(void **state) {
  (void)state;
  int beh[4] = {HONEST, HONEST, HONEST, HONEST};
  sim_t m;
  sim_init(&m, PX_VERIFY_REPLICATE, 1, beh, 4, 1);
  sim_run(&m, 0);
  check_common(&m);
  assert_int_equal(m.disputes, 0);
  assert_int_equal(m.expired, 0);
  assert_int_equal(m.wrong_accepted, 0);
  for (uint32_t i = 0; i < m.n_shards; i++)
    assert_int_equal(m.pays[i], 1);
  /* paid at each provider's own price, below the ceiling: a refund */
  assert_true(m.refund > 0);
  sim_free(&m);
}

static void test_faults_replicate2(void **state) {
  (void)state;
  int beh[7] = {HONEST, SLOW, VANISH, WRONG, LAZY, HONEST, GONE};
  sim_t m;
  sim_init(&m, PX_VERIFY_REPLICATE, 2, beh, 7, 7);
  sim_run(&m, 0);
  check_common(&m);
  assert_int_equal(m.wrong_accepted, 0); /* every lie caught */
  assert_true(m.disputes > 0);
  assert_true(m.found_layer_ok > 0);
  assert_true(m.slashed[3] >= 1); /* wrong */
  assert_true(m.slashed[4] >= 1); /* lazy */
  assert_int_equal(m.slashed[0] + m.slashed[5], 0);
  assert_true(m.expired > 0); /* slow, vanish, gone leases re-offered */
  for (uint32_t i = 0; i < m.n_shards; i++)
    assert_int_equal(m.pays[i], 2); /* two replicas, each paid once */
  sim_free(&m);
}

static void test_faults_audit(void **state) {
  (void)state;
  int beh[5] = {HONEST, WRONG, EQUIV, HONEST, VANISH};
  sim_t m;
  sim_init(&m, PX_VERIFY_AUDIT, 5000, beh, 5, 3);
  sim_run(&m, 0);
  check_common(&m);
  assert_true(m.slashed[1] >= 1); /* the liar is caught by an audit */
  assert_true(m.found_layer_ok > 0);
  assert_true(m.evidence > 0);
  assert_int_equal(m.slashed[0] + m.slashed[3], 0);
  /* once slashed the liar gets no more work, so few lies slip through */
  assert_true(m.wrong_accepted <= 2);
  sim_free(&m);

  /* audit:100% catches every lie */
  sim_init(&m, PX_VERIFY_AUDIT, 10000, beh, 5, 3);
  sim_run(&m, 0);
  check_common(&m);
  assert_int_equal(m.wrong_accepted, 0);
  sim_free(&m);
}

static void test_save_restore(void **state) {
  (void)state;
  int beh[6] = {HONEST, SLOW, WRONG, LAZY, VANISH, HONEST};
  for (int pol = 0; pol < 2; pol++) {
    sim_t a, b;
    uint8_t p = pol ? PX_VERIFY_AUDIT : PX_VERIFY_REPLICATE;
    uint32_t param = pol ? 3000 : 2;
    sim_init(&a, p, param, beh, 6, 11);
    a.log = calloc(MAX_FX, sizeof *a.log);
    sim_run(&a, 0);
    check_common(&a);
    for (int at = 5; at <= 60; at += 11) {
      sim_init(&b, p, param, beh, 6, 11);
      b.log = calloc(MAX_FX, sizeof *b.log);
      sim_run(&b, at);
      check_common(&b);
      assert_int_equal(a.n_log, b.n_log);
      assert_memory_equal(a.log, b.log, a.n_log * sizeof *a.log);
      sim_free(&b);
    }
    sim_free(&a);
  }
}

static void test_deadline_refund(void **state) {
  (void)state;
  int beh[2] = {VANISH, VANISH};
  sim_t m;
  sim_init(&m, PX_VERIFY_REPLICATE, 1, beh, 2, 5);
  px_sched_event_t ev = {.type = PX_SCHED_EV_TICK, .now_ms = 0};
  assert_int_equal(px_sched_handle(m.s, &ev), 0);
  drain(&m);
  ev.type = PX_SCHED_EV_HEIGHT;
  ev.height = 1000;
  assert_int_equal(px_sched_handle(m.s, &ev), 0);
  drain(&m);
  assert_int_equal(m.settled, 1);
  assert_int_equal(m.paid, 0);
  assert_int_equal(m.refund, m.escrow);
  /* nothing more after settlement */
  memset(&ev, 0, sizeof ev);
  ev.type = PX_SCHED_EV_COMMITTED;
  memcpy(ev.provider, m.info[0].id, 32);
  ev.n_layers = 1;
  assert_int_equal(px_sched_handle(m.s, &ev), PX_ESTATE);
  sim_free(&m);
}

static void test_bad_events(void **state) {
  (void)state;
  int beh[2] = {HONEST, HONEST};
  sim_t m;
  sim_init(&m, PX_VERIFY_REPLICATE, 1, beh, 2, 9);
  px_sched_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = PX_SCHED_EV_COMMITTED;
  ev.n_layers = 1;
  memcpy(ev.provider, m.info[0].id, 32);
  /* a commitment without a lease */
  assert_int_equal(px_sched_handle(m.s, &ev), PX_EPROTO);
  ev.shard = 10000;
  assert_int_equal(px_sched_handle(m.s, &ev), PX_EINVAL);
  ev.shard = 0;
  memset(ev.provider, 0xee, 32);
  assert_int_equal(px_sched_handle(m.s, &ev), PX_ENOENT);
  ev.type = PX_SCHED_EV_AUDIT_SEED;
  assert_int_equal(px_sched_handle(m.s, &ev), PX_EPROTO);
  ev.type = 99;
  assert_int_equal(px_sched_handle(m.s, &ev), PX_EINVAL);
  /* escrow below the requirement is refused */
  px_sched_opts_t o;
  px_sched_t *s;
  px_sched_opts_default(&o);
  assert_int_equal(px_sched_new(&m.spec, &o, m.info, 2, m.escrow - 1, &s),
                   PX_EINVAL);
  sim_free(&m);
}

static void test_stake_bound_matching(void **state) {
  (void)state;
  int beh[2] = {HONEST, HONEST};
  sim_t m;
  sim_init(&m, PX_VERIFY_AUDIT, 1000, beh, 2, 13);
  px_sched_free(m.s);
  /* shard reward at price 5: 10 samples * 1000 * 5 = 50000; p = 10% ->
   * stake must be >= 500000.  Provider 0 has less. */
  m.info[0].stake = 499999;
  m.info[1].stake = 500000;
  m.info[0].price = m.info[1].price = 5;
  px_sched_opts_t o;
  px_sched_opts_default(&o);
  assert_int_equal(px_sched_new(&m.spec, &o, m.info, 2, m.escrow, &m.s), 0);
  px_sched_event_t ev = {.type = PX_SCHED_EV_TICK};
  assert_int_equal(px_sched_handle(m.s, &ev), 0);
  px_sched_fx_t fx;
  int n = 0;
  while (px_sched_poll(m.s, &fx)) {
    assert_int_equal(fx.type, PX_SCHED_FX_ASSIGN);
    assert_memory_equal(fx.provider, m.info[1].id, 32);
    n++;
  }
  assert_int_equal(n, 2); /* its two slots */
  sim_free(&m);
}

/* ---- busy providers: back-off instead of a re-offer storm ---------------- */

typedef struct {
  px_sched_fx_t v[256];
  int n;
} fxlist_t;

static void take(px_sched_t *s, fxlist_t *l) {
  px_sched_fx_t fx;
  l->n = 0;
  while (px_sched_poll(s, &fx)) {
    assert_true(l->n < 256);
    l->v[l->n++] = fx;
  }
}

static int count_fx(const fxlist_t *l, px_sched_fx_type_t t) {
  int n = 0;
  for (int i = 0; i < l->n; i++)
    n += l->v[i].type == t;
  return n;
}

static int feed(px_sched_t *s, px_sched_ev_type_t t, uint64_t now,
                uint32_t shard, const uint8_t prov[32]) {
  px_sched_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = t;
  ev.now_ms = now;
  ev.shard = shard;
  if (prov) memcpy(ev.provider, prov, 32);
  return px_sched_handle(s, &ev);
}

static int feed_result(px_sched_t *s, int audit, uint64_t now, uint32_t shard,
                       const uint8_t prov[32]) {
  px_sched_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = audit ? PX_SCHED_EV_AUDIT_RESULT : PX_SCHED_EV_COMMITTED;
  ev.now_ms = now;
  ev.shard = shard;
  memcpy(ev.provider, prov, 32);
  memset(ev.output, 0x5a, 32); /* every honest provider computes this */
  memset(ev.trace_root, 0xa5, 32);
  ev.n_layers = N_LAYERS;
  return px_sched_handle(s, &ev);
}

/* A provider that refuses every lease offered: a TICK every ms from `from`
 * to `to`; each ASSIGN is refused (busy) at once.  Returns the number of
 * offers, their times in `at`. */
static int refuse_all(px_sched_t *s, const uint8_t pid[32], uint64_t from,
                      uint64_t to, uint64_t *at, int max) {
  int n = 0;
  fxlist_t l;
  for (uint64_t t = from; t <= to; t++) {
    assert_int_equal(feed(s, PX_SCHED_EV_TICK, t, 0, NULL), 0);
    take(s, &l);
    for (int i = 0; i < l.n; i++) {
      assert_int_equal(l.v[i].type, PX_SCHED_FX_ASSIGN); /* nothing else */
      assert_memory_equal(l.v[i].provider, pid, 32);
      assert_true(n < max);
      at[n++] = t;
      assert_int_equal(
          feed(s, PX_SCHED_EV_LEASE_REJECTED, t, l.v[i].shard, pid), 0);
      fxlist_t l2;
      take(s, &l2);
      assert_int_equal(count_fx(&l2, PX_SCHED_FX_ASSIGN), 0);
    }
  }
  return n;
}

/* Regression (devnet, provider restarted with market.fault=slow): a BUSY
 * refusal was answered by an immediate re-offer to the same provider, ~800
 * LEASE requests in a few ms.  Now the provider is backed off 250 ms,
 * 500 ms, 1 s, ... and a result from it ends the back-off. */
static void test_busy_backoff(void **state) {
  (void)state;
  int beh[1] = {HONEST};
  sim_t m;
  sim_init(&m, PX_VERIFY_REPLICATE, 1, beh, 1, 21); /* one provider, 2 slots */
  const uint8_t *pid = m.info[0].id;
  fxlist_t l;
  assert_int_equal(feed(m.s, PX_SCHED_EV_TICK, 0, 0, NULL), 0);
  take(m.s, &l);
  assert_int_equal(l.n, 2);
  assert_int_equal(count_fx(&l, PX_SCHED_FX_ASSIGN), 2);
  uint32_t held = l.v[0].shard, refused = l.v[1].shard;
  /* its queue is full of work the scheduler no longer counts: busy */
  assert_int_equal(feed(m.s, PX_SCHED_EV_LEASE_REJECTED, 1, refused, pid), 0);
  take(m.s, &l);
  assert_int_equal(count_fx(&l, PX_SCHED_FX_ASSIGN), 0); /* not at once */
  /* it keeps refusing under a TICK every millisecond for 4 s: offered at
   * 251, 751, 1751 and 3751 ms only (without back-off: ~4000 offers) */
  uint64_t at[16];
  int n = refuse_all(m.s, pid, 2, 4000, at, 16);
  assert_int_equal(n, 4);
  assert_int_equal(at[0], 251);
  assert_int_equal(at[1], 751);
  assert_int_equal(at[2], 1751);
  assert_int_equal(at[3], 3751);
  /* the held lease's result: the provider works again, the back-off ends
   * and both of its slots are filled in the same step */
  assert_int_equal(feed_result(m.s, 0, 4001, held, pid), 0);
  take(m.s, &l);
  assert_int_equal(count_fx(&l, PX_SCHED_FX_ACCEPT), 1);
  assert_int_equal(count_fx(&l, PX_SCHED_FX_ASSIGN), 2);
  px_sched_stats_t st;
  px_sched_stats(m.s, &st);
  assert_int_equal(st.expiries, 0); /* refusals are not expiries */
  assert_int_equal(st.running, 2);
  /* both offers refused together: one step of back-off, not two */
  for (int i = 0; i < l.n; i++)
    if (l.v[i].type == PX_SCHED_FX_ASSIGN)
      assert_int_equal(
          feed(m.s, PX_SCHED_EV_LEASE_REJECTED, 4002, l.v[i].shard, pid), 0);
  take(m.s, &l);
  assert_int_equal(l.n, 0);
  n = refuse_all(m.s, pid, 4003, 4800, at, 16);
  assert_int_equal(n, 4); /* 2 at 4252 ms (250 ms), 2 at 4752 ms (500 ms) */
  assert_int_equal(at[0], 4252);
  assert_int_equal(at[1], 4252);
  assert_int_equal(at[2], 4752);
  assert_int_equal(at[3], 4752);
  sim_free(&m);
}

/* Regression (devnet): a shard selected for audit whose only possible
 * auditor (the worker cannot audit itself) is a slow provider that already
 * let max_expiries leases expire and is busy.  It was stranded until the
 * job's deadline and the job "settled" incomplete.  Now the audit goes to
 * that provider anyway, with a longer lease, is retried with back-off while
 * it is busy, and completes once it frees up. */
static void test_audit_waits_for_busy_auditor(void **state) {
  (void)state;
  int beh[2] = {HONEST, HONEST};
  sim_t m;
  sim_init(&m, PX_VERIFY_AUDIT, 10000, beh, 2, 23); /* audit every shard */
  px_sched_free(m.s);
  m.spec.n_samples = 10; /* one shard */
  m.spec.input_size = 10 * 784;
  assert_int_equal(px_job_spec_id(&m.spec, m.job_id), 0);
  assert_int_equal(px_market_escrow_required(&m.spec, &m.escrow), 0);
  px_sched_opts_t o;
  px_sched_opts_default(&o);
  o.max_expiries = 1;
  assert_int_equal(px_sched_new(&m.spec, &o, m.info, 2, m.escrow, &m.s), 0);
  fxlist_t l;
  assert_int_equal(feed(m.s, PX_SCHED_EV_TICK, 0, 0, NULL), 0);
  take(m.s, &l);
  assert_int_equal(l.n, 1);
  assert_int_equal(l.v[0].type, PX_SCHED_FX_ASSIGN);
  int w = prov_of(&m, l.v[0].provider), a = 1 - w;
  assert_int_equal(feed_result(m.s, 0, 100, 0, m.info[w].id), 0);
  take(m.s, &l);
  assert_int_equal(count_fx(&l, PX_SCHED_FX_WANT_SEED), 1);
  px_sched_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = PX_SCHED_EV_AUDIT_SEED;
  ev.now_ms = 200;
  memset(ev.randomness, 7, 32);
  assert_int_equal(px_sched_handle(m.s, &ev), 0);
  take(m.s, &l);
  assert_int_equal(l.n, 1);
  assert_int_equal(l.v[0].type, PX_SCHED_FX_AUDIT);
  assert_memory_equal(l.v[0].provider, m.info[a].id, 32);
  uint64_t d1 = l.v[0].deadline_ms;
  /* the auditor never answers: its lease expires and it reaches
   * max_expiries, but it is the only auditor there is */
  assert_int_equal(feed(m.s, PX_SCHED_EV_TICK, d1, 0, NULL), 0);
  take(m.s, &l);
  assert_int_equal(count_fx(&l, PX_SCHED_FX_EXPIRED), 1);
  assert_int_equal(count_fx(&l, PX_SCHED_FX_AUDIT), 1);
  uint64_t d2 = l.v[l.n - 1].deadline_ms;
  assert_true(d2 - d1 > d1 - 200); /* a longer lease after an expiry */
  /* now it is busy (still running the expired work) for 5 s; then it
   * accepts the next offer and answers 50 ms later */
  const uint64_t free_at = d1 + 5000;
  uint64_t t = d1 + 1, answer_at = 0;
  int offers = 1, refusals = 0, settled = 0;
  assert_int_equal(feed(m.s, PX_SCHED_EV_LEASE_REJECTED, t, 0, m.info[a].id),
                   0);
  refusals++;
  while (!settled && t < free_at + 20000) {
    t += 10;
    if (answer_at && t >= answer_at) {
      assert_int_equal(feed_result(m.s, 1, t, 0, m.info[a].id), 0);
      answer_at = 0;
    } else {
      assert_int_equal(feed(m.s, PX_SCHED_EV_TICK, t, 0, NULL), 0);
    }
    take(m.s, &l);
    for (int i = 0; i < l.n; i++) {
      px_sched_fx_t *fx = &l.v[i];
      assert_true(fx->type != PX_SCHED_FX_ASSIGN &&
                  fx->type != PX_SCHED_FX_DISPUTE &&
                  fx->type != PX_SCHED_FX_EXPIRED);
      if (fx->type == PX_SCHED_FX_AUDIT) {
        offers++;
        if (t < free_at) {
          assert_int_equal(
              feed(m.s, PX_SCHED_EV_LEASE_REJECTED, t, 0, m.info[a].id), 0);
          refusals++;
          fxlist_t l2;
          take(m.s, &l2);
          assert_int_equal(l2.n, 0);
        } else {
          answer_at = t + 50;
        }
      }
      if (fx->type == PX_SCHED_FX_SETTLE) {
        settled = 1;
        assert_int_equal(fx->amount + fx->refund, m.escrow);
      }
    }
  }
  assert_int_equal(settled, 1);
  assert_true(t < free_at + 16000 + 200); /* within one longest back-off */
  assert_true(offers <= 8);               /* 250, 500, 1000, 2000, 4000 ms */
  assert_true(refusals >= 4);
  px_sched_stats_t st;
  px_sched_stats(m.s, &st);
  assert_int_equal(st.accepted, 1);
  assert_int_equal(st.audits, 1);
  assert_true(st.paid > 0);
  sim_free(&m);
}

/* The back-off is part of the saved state: a scheduler restored in the
 * middle of one behaves exactly as the one that never stopped, and the
 * loader refuses back-off fields that break their invariants. */
static void test_save_restore_backoff(void **state) {
  (void)state;
  int beh[1] = {HONEST};
  sim_t m;
  sim_init(&m, PX_VERIFY_REPLICATE, 1, beh, 1, 31);
  const uint8_t *pid = m.info[0].id;
  fxlist_t l;
  assert_int_equal(feed(m.s, PX_SCHED_EV_TICK, 0, 0, NULL), 0);
  take(m.s, &l);
  assert_int_equal(feed(m.s, PX_SCHED_EV_LEASE_REJECTED, 1, l.v[1].shard, pid),
                   0);
  take(m.s, &l);
  uint64_t at[16], at2[16];
  assert_int_equal(refuse_all(m.s, pid, 2, 1000, at, 16), 2); /* 251, 751 */
  /* saved at 1000 ms, backed off until 1751 ms (level 3) */
  px_buf_t b, b2;
  px_buf_init(&b, 0);
  px_buf_init(&b2, 0);
  assert_int_equal(px_sched_save(m.s, &b), 0);
  px_sched_t *r;
  assert_int_equal(px_sched_load(b.data, b.len, &r), 0);
  assert_int_equal(px_sched_save(r, &b2), 0);
  assert_int_equal(b.len, b2.len);
  assert_memory_equal(b.data, b2.data, b.len);
  int n1 = refuse_all(m.s, pid, 1001, 4000, at, 16);
  int n2 = refuse_all(r, pid, 1001, 4000, at2, 16);
  assert_int_equal(n1, 2); /* 1751, 3751: the back-off went on */
  assert_int_equal(n1, n2);
  assert_memory_equal(at, at2, (size_t)n1 * sizeof at[0]);
  assert_int_equal(at[0], 1751);
  px_sched_free(r);

  /* strict load: the provider record ends with u64 retry_at, u8 level */
  size_t pos = 0;
  while (pos + 32 <= b.len && memcmp(b.data + pos, pid, 32))
    pos++;
  assert_true(pos + 32 <= b.len);
  size_t off = pos + 32 + 4 + 8 + 8 + 4 + 8 + 4 + 1 + 1 + 4 + 8;
  assert_true(off + 9 <= b.len);
  assert_int_equal(b.data[off + 8], 3); /* the level, as computed above */
  uint8_t keep[9];
  memcpy(keep, b.data + off, 9);
  b.data[off + 8] = 8; /* above the cap */
  assert_int_equal(px_sched_load(b.data, b.len, &r), PX_EDECODE);
  b.data[off + 8] = 0; /* no level but a retry time */
  assert_int_equal(px_sched_load(b.data, b.len, &r), PX_EDECODE);
  memcpy(b.data + off, keep, 9);
  memset(b.data + off, 0, 8); /* a level but no retry time */
  assert_int_equal(px_sched_load(b.data, b.len, &r), PX_EDECODE);
  memset(b.data + off, 0x7f, 8); /* retry time far beyond any back-off */
  assert_int_equal(px_sched_load(b.data, b.len, &r), PX_EDECODE);
  memcpy(b.data + off, keep, 9);
  assert_int_equal(px_sched_load(b.data, b.len, &r), 0);
  px_sched_free(r);
  px_buf_release(&b);
  px_buf_release(&b2);
  sim_free(&m);

  /* whole faulty runs with providers that refuse every other lease, saved
   * and restored at several points: the same effect stream */
  int beh2[5] = {HONEST, BUSY, SLOW, BUSY, WRONG};
  for (int pol = 0; pol < 2; pol++) {
    sim_t x, y;
    uint8_t p = pol ? PX_VERIFY_AUDIT : PX_VERIFY_REPLICATE;
    uint32_t param = pol ? 3000 : 2;
    sim_init(&x, p, param, beh2, 5, 17);
    x.log = calloc(MAX_FX, sizeof *x.log);
    sim_run(&x, 0);
    check_common(&x);
    int busy_offers = 0;
    for (size_t i = 0; i < x.n_log; i++)
      busy_offers += x.log[i].type == PX_SCHED_FX_ASSIGN &&
                     prov_of(&x, x.log[i].provider) % 2 == 1;
    assert_true(busy_offers > 2); /* the busy ones were offered work */
    for (int at3 = 3; at3 <= 50; at3 += 7) {
      sim_init(&y, p, param, beh2, 5, 17);
      y.log = calloc(MAX_FX, sizeof *y.log);
      sim_run(&y, at3);
      check_common(&y);
      assert_int_equal(x.n_log, y.n_log);
      assert_memory_equal(x.log, y.log, x.n_log * sizeof *x.log);
      sim_free(&y);
    }
    sim_free(&x);
  }
}

int main(void) {
  if (px_crypto_init()) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_honest),
      cmocka_unit_test(test_faults_replicate2),
      cmocka_unit_test(test_faults_audit),
      cmocka_unit_test(test_save_restore),
      cmocka_unit_test(test_deadline_refund),
      cmocka_unit_test(test_bad_events),
      cmocka_unit_test(test_stake_bound_matching),
      cmocka_unit_test(test_busy_backoff),
      cmocka_unit_test(test_audit_waits_for_busy_auditor),
      cmocka_unit_test(test_save_restore_backoff),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
