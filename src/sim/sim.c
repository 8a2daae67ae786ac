/*
 * sim.c — deterministic discrete-event simulation of the consensus cores.
 *
 * The approach of FoundationDB's and TigerBeetle's simulators (DESIGN.md
 * principle 1): the protocol core is the production code; everything around
 * it — clock, network, disk, crashes, adversaries — is simulated from one
 * seeded px_rng_t, so a failing seed replays exactly.
 *
 * Model.  Time is a u64 of milliseconds.  An event heap ordered by (time,
 * sequence number) holds message deliveries, timer firings, crashes and
 * restarts; the sequence number makes ties deterministic.  After each event
 * the node's effects are drained in order:
 *   PERSIST   appended (framed with px_wal_frame) to the node's in-memory
 *             WAL, which survives a crash; fsync is instantaneous;
 *   BROADCAST one delivery per other node, subject to the network model;
 *   SCHEDULE_TIMEOUT  a timer event tagged with the node's epoch (a crash
 *             bumps the epoch, so timers of a dead incarnation never fire);
 *   DECIDE    checked (agreement, validity, certificate), stored in the
 *             node's block store, then the next height is started — the
 *             WAL is rotated first, as the runtime does;
 *   EVIDENCE  verified; it must name a Byzantine validator.
 * A node that receives a message of a height it has decided answers with a
 * DECISION (value + commit) — the block sync a real node would do.
 *
 * Network before gst_ms: delays up to chaos_delay_max_ms (reordering
 * follows), loss and duplication per mille, and partitions that split the
 * nodes in two and heal.  After gst_ms: every message arrives within
 * [delay_min_ms, delay_max_ms].  Crashed nodes restart before gst_ms and
 * rebuild their core from their WAL (px_cons_replay).
 *
 * Byzantine nodes run an honest core whose output the simulator corrupts:
 * SILENT drops messages, EQUIVOCATE signs a second, conflicting proposal or
 * vote and sends the two to two random halves of the network, INVALID
 * replaces proposals by values the application rejects.
 *
 * Invariants checked: see plexus/sim.h.  Signature checks go through a
 * verification cache (the app.verify hook) keyed by the hash of (key,
 * message, signature): it returns exactly what px_verify returned.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "plexus/consensus.h"
#include "plexus/crypto.h"
#include "plexus/sim.h"

#include "base/px_internal.h"

#define H_MAX 128          /* heights a run may reach */
#define COMMIT_WAIT_MS 100 /* pause between a decision and the next height */
#define VCACHE 8192
#define VALUE_LEN 27

enum {
  EV_DELIVER = 1,
  EV_TIMER,
  EV_START,
  EV_CRASH,
  EV_RESTART,
  EV_PART,
  EV_HEAL
};

typedef struct {
  uint64_t at, seq;
  int kind;
  uint32_t node, from;
  uint64_t epoch;
  uint64_t height;
  uint32_t round;
  int step;
  px_buf_t msg;
} event_t;

typedef struct {
  int set;
  uint8_t hash[PX_HASH_LEN];
  px_buf_t value, commit;
} decision_t;

typedef struct sim sim_t;

typedef struct {
  sim_t *sim;
  uint32_t idx;
  px_keypair_t key;
  px_cons_t *core;
  int alive, byz;
  uint32_t byz_modes;
  uint64_t epoch;
  uint64_t height;  /* being decided */
  uint64_t decided; /* highest decided height */
  uint64_t decided_at_gst;
  int gst_marked;
  px_buf_t wal;
  decision_t dec[H_MAX + 1];
  uint64_t last_sync[PX_SIM_MAX_NODES]; /* rate-limit DECISION replies */
} node_t;

typedef struct {
  uint8_t key[PX_HASH_LEN];
  int used, result;
} vcache_t;

struct sim {
  px_sim_config_t cfg;
  px_rng_t rng;
  px_sim_result_t *res;
  uint64_t now, seq;
  event_t *heap;
  size_t nheap, capheap;
  node_t nodes[PX_SIM_MAX_NODES];
  px_cons_valset_t vs[H_MAX + 2];
  int side[PX_SIM_MAX_NODES]; /* partition side; -1 = none */
  int partitioned;
  decision_t first[H_MAX + 1]; /* the first correct decision per height */
  uint8_t (*proposed)[PX_HASH_LEN];
  size_t nproposed, capproposed;
  vcache_t *vcache;
  int failed;
};

static const char *k_chain = "plexus-sim";

/* ---- failure reporting --------------------------------------------------- */

static void fail(sim_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(sim_t *s, const char *fmt, ...) {
  if (s->failed) return;
  s->failed = 1;
  s->res->ok = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->res->failure, sizeof s->res->failure, fmt, ap);
  va_end(ap);
}

static void trace(sim_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void trace(sim_t *s, const char *fmt, ...) {
  if (!s->cfg.trace) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "[%8" PRIu64 "] ", s->now);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* ---- event heap ---------------------------------------------------------- */

static int ev_less(const event_t *a, const event_t *b) {
  return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static event_t *ev_new(sim_t *s, uint64_t at, int kind, uint32_t node) {
  if (s->nheap == s->capheap) {
    size_t ncap = s->capheap ? s->capheap * 2 : 1024;
    event_t *nh = px_realloc(s->heap, ncap * sizeof *nh);
    if (!nh) {
      fail(s, "out of memory");
      return NULL;
    }
    s->heap = nh;
    s->capheap = ncap;
  }
  event_t *e = &s->heap[s->nheap];
  memset(e, 0, sizeof *e);
  e->at = at;
  e->seq = s->seq++;
  e->kind = kind;
  e->node = node;
  px_buf_init(&e->msg, 0);
  return e;
}

/* Sift the last element up (call after filling the one ev_new returned). */
static void ev_commit(sim_t *s) {
  size_t i = s->nheap++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!ev_less(&s->heap[i], &s->heap[p])) break;
    event_t t = s->heap[i];
    s->heap[i] = s->heap[p];
    s->heap[p] = t;
    i = p;
  }
}

static int ev_pop(sim_t *s, event_t *out) {
  if (s->nheap == 0) return 0;
  *out = s->heap[0];
  s->heap[0] = s->heap[--s->nheap];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < s->nheap && ev_less(&s->heap[l], &s->heap[m])) m = l;
    if (r < s->nheap && ev_less(&s->heap[r], &s->heap[m])) m = r;
    if (m == i) break;
    event_t t = s->heap[i];
    s->heap[i] = s->heap[m];
    s->heap[m] = t;
    i = m;
  }
  return 1;
}

static uint64_t rnd(sim_t *s, uint64_t lo, uint64_t hi) { /* [lo, hi] */
  return lo + px_rng_below(&s->rng, hi - lo + 1);
}
static int chance(sim_t *s, uint32_t per_mille) {
  return px_rng_below(&s->rng, 1000) < per_mille;
}

/* ---- application (values, validity) ------------------------------------- */

static void make_value(sim_t *s, uint8_t out[VALUE_LEN], uint64_t h, uint32_t r,
                       uint32_t proposer, int invalid) {
  memcpy(out, invalid ? "BAD!" : "PXV1", 4);
  px_put_u64le(out + 4, h);
  px_put_u32le(out + 12, r);
  px_put_u16le(out + 16, (uint16_t)proposer);
  px_put_u64le(out + 18, px_rng_next(&s->rng));
  out[26] = 0;
}

static int app_valid(void *ud, uint64_t height, const uint8_t *v, size_t n) {
  (void)ud;
  return n == VALUE_LEN && memcmp(v, "PXV1", 4) == 0 &&
         px_get_u64le(v + 4) == height;
}

static int app_get_value(void *ud, uint64_t height, uint32_t round,
                         px_buf_t *out) {
  node_t *nd = ud;
  uint8_t v[VALUE_LEN];
  int invalid =
      nd->byz && (nd->byz_modes & PX_SIM_BYZ_INVALID) && chance(nd->sim, 300);
  make_value(nd->sim, v, height, round, nd->idx, invalid);
  return px_buf_append(out, v, sizeof v);
}

static int app_verify(void *ud, const uint8_t pk[PX_PK_LEN], const uint8_t *msg,
                      size_t n, const uint8_t sig[PX_SIG_LEN]) {
  sim_t *s = ((node_t *)ud)->sim;
  px_hash_state_t st;
  uint8_t k[PX_HASH_LEN];
  px_hash_init(&st);
  px_hash_update(&st, pk, PX_PK_LEN);
  px_hash_update(&st, sig, PX_SIG_LEN);
  px_hash_update(&st, msg, n);
  px_hash_final(&st, k);
  vcache_t *e = &s->vcache[px_get_u32le(k) % VCACHE];
  if (e->used && memcmp(e->key, k, PX_HASH_LEN) == 0) return e->result;
  int rc = px_verify(pk, msg, n, sig);
  e->used = 1;
  e->result = rc;
  memcpy(e->key, k, PX_HASH_LEN);
  return rc;
}

static void note_proposed(sim_t *s, const uint8_t *value, size_t n) {
  uint8_t h[PX_HASH_LEN];
  px_hash(h, value, n);
  for (size_t i = 0; i < s->nproposed; i++)
    if (memcmp(s->proposed[i], h, PX_HASH_LEN) == 0) return;
  if (s->nproposed == s->capproposed) {
    size_t ncap = s->capproposed ? s->capproposed * 2 : 64;
    void *np = px_realloc(s->proposed, ncap * PX_HASH_LEN);
    if (!np) {
      fail(s, "out of memory");
      return;
    }
    s->proposed = np;
    s->capproposed = ncap;
  }
  memcpy(s->proposed[s->nproposed++], h, PX_HASH_LEN);
}

static int was_proposed(const sim_t *s, const uint8_t h[PX_HASH_LEN]) {
  for (size_t i = 0; i < s->nproposed; i++)
    if (memcmp(s->proposed[i], h, PX_HASH_LEN) == 0) return 1;
  return 0;
}

/* ---- network ------------------------------------------------------------- */

static void send_to(sim_t *s, uint32_t from, uint32_t to, const uint8_t *msg,
                    size_t n) {
  s->res->messages++;
  int chaos = s->now < s->cfg.gst_ms;
  if (chaos && s->partitioned && s->side[from] != s->side[to]) {
    s->res->dropped++;
    return;
  }
  int copies = 1;
  if (chaos && chance(s, s->cfg.loss_pm)) {
    s->res->dropped++;
    return;
  }
  if (chaos && chance(s, s->cfg.dup_pm)) copies = 2;
  for (int k = 0; k < copies; k++) {
    uint64_t d = chaos ? rnd(s, s->cfg.delay_min_ms, s->cfg.chaos_delay_max_ms)
                       : rnd(s, s->cfg.delay_min_ms, s->cfg.delay_max_ms);
    event_t *e = ev_new(s, s->now + d, EV_DELIVER, to);
    if (!e) return;
    e->from = from;
    if (px_buf_append(&e->msg, msg, n) != 0) {
      px_buf_release(&e->msg);
      fail(s, "out of memory");
      return;
    }
    ev_commit(s);
  }
}

/* A conflicting twin of a Byzantine node's proposal or vote, signed with
 * its key.  0 when made. */
static int make_twin(sim_t *s, node_t *nd, const uint8_t *msg, size_t n,
                     px_buf_t *out) {
  px_cons_msg_type_t t;
  uint64_t h;
  uint32_t r;
  if (px_cons_msg_peek(msg, n, &t, &h, &r) != 0) return -1;
  if (t == PX_CONS_MSG_PROPOSAL) {
    px_cons_proposal_t p;
    if (px_cons_proposal_decode(msg, n, PX_CONS_MAX_VALUE_DEFAULT, &p) != 0)
      return -1;
    uint8_t v[VALUE_LEN];
    make_value(s, v, h, r, nd->idx, 0);
    v[26] = 1;
    p.value = v;
    p.value_len = sizeof v;
    p.valid_round = -1;
    px_cons_proposal_sign(k_chain, &nd->key, &p);
    note_proposed(s, v, sizeof v);
    return px_cons_proposal_encode(&p, out);
  }
  if (t == PX_CONS_MSG_PREVOTE || t == PX_CONS_MSG_PRECOMMIT) {
    px_cons_vote_t v;
    if (px_cons_vote_decode(msg, n, &v) != 0) return -1;
    if (v.has_value) {
      v.has_value = 0;
      memset(v.hash, 0, PX_HASH_LEN);
    } else {
      v.has_value = 1;
      px_rng_fill(&s->rng, v.hash, PX_HASH_LEN);
    }
    px_cons_vote_sign(k_chain, &nd->key, &v);
    return px_cons_vote_encode(&v, out);
  }
  return -1;
}

static void broadcast(sim_t *s, node_t *nd, const uint8_t *msg, size_t n) {
  px_cons_msg_type_t t;
  uint64_t h;
  uint32_t r;
  int is_prop =
      px_cons_msg_peek(msg, n, &t, &h, &r) == 0 && t == PX_CONS_MSG_PROPOSAL;
  if (is_prop) {
    px_cons_proposal_t p;
    if (px_cons_proposal_decode(msg, n, PX_CONS_MAX_VALUE_DEFAULT, &p) == 0)
      note_proposed(s, p.value, p.value_len);
  }
  if (nd->byz) {
    uint32_t m = nd->byz_modes;
    if ((m & PX_SIM_BYZ_SILENT) && chance(s, 500)) return;
    if ((m & PX_SIM_BYZ_EQUIVOCATE) && chance(s, 600)) {
      px_buf_t twin;
      px_buf_init(&twin, 0);
      if (make_twin(s, nd, msg, n, &twin) == 0) {
        s->res->equivocations++;
        for (uint32_t j = 0; j < s->cfg.n; j++) {
          if (j == nd->idx) continue;
          if (chance(s, 500))
            send_to(s, nd->idx, j, twin.data, twin.len);
          else
            send_to(s, nd->idx, j, msg, n);
        }
        px_buf_release(&twin);
        return;
      }
      px_buf_release(&twin);
    }
  }
  for (uint32_t j = 0; j < s->cfg.n; j++)
    if (j != nd->idx) send_to(s, nd->idx, j, msg, n);
}

/* ---- nodes --------------------------------------------------------------- */

static int new_core(sim_t *s, node_t *nd) {
  px_cons_config_t cc;
  px_cons_config_default(&cc);
  memcpy(cc.chain_id, k_chain, strlen(k_chain) + 1);
  cc.key = nd->key;
  cc.has_key = 1;
  cc.propose_ms = 300;
  cc.propose_delta_ms = 100;
  cc.prevote_ms = 150;
  cc.prevote_delta_ms = 100;
  cc.precommit_ms = 150;
  cc.precommit_delta_ms = 100;
  cc.resend_ms = 250;
  cc.max_value = 1024;
  cc.app.get_value = app_get_value;
  cc.app.valid = app_valid;
  cc.app.verify = app_verify;
  cc.app.ud = nd;
  (void)s;
  return px_cons_new(&cc, &nd->core);
}

static void check_decision(sim_t *s, node_t *nd, uint64_t h,
                           const px_buf_t *value, const px_buf_t *commit) {
  uint8_t hash[PX_HASH_LEN];
  px_hash(hash, value->data, value->len);
  if (nd->byz) return;
  if (!app_valid(NULL, h, value->data, value->len)) {
    fail(s, "validity: node %u decided an invalid value at height %" PRIu64,
         nd->idx, h);
    return;
  }
  if (!was_proposed(s, hash)) {
    fail(s,
         "validity: node %u decided a value nobody proposed at height "
         "%" PRIu64,
         nd->idx, h);
    return;
  }
  decision_t *f = &s->first[h];
  if (!f->set) {
    px_cons_commit_t cm;
    if (px_cons_commit_decode(commit->data, commit->len, &cm) != 0 ||
        px_cons_commit_verify(k_chain, &s->vs[h], &cm, hash) != 0) {
      fail(s,
           "certificate: node %u's commit for height %" PRIu64
           " does not verify",
           nd->idx, h);
      return;
    }
    if (cm.round > s->res->max_round) s->res->max_round = cm.round;
    f->set = 1;
    memcpy(f->hash, hash, PX_HASH_LEN);
  } else if (memcmp(f->hash, hash, PX_HASH_LEN) != 0) {
    char a[17], b[17];
    px_hex_encode(f->hash, 8, a);
    px_hex_encode(hash, 8, b);
    fail(s,
         "agreement: node %u decided %s at height %" PRIu64
         " but another correct node decided %s",
         nd->idx, b, h, a);
  }
}

static void run_effects(sim_t *s, node_t *nd);

static void start_height(sim_t *s, node_t *nd, uint64_t h) {
  if (h > H_MAX) return; /* the run is long enough */
  nd->height = h;
  int rc = px_cons_start(nd->core, h, &s->vs[h], s->now);
  if (rc)
    fail(s, "node %u: start(%" PRIu64 ") failed: %s", nd->idx, h,
         px_strerror(rc));
}

static void on_decide(sim_t *s, node_t *nd, px_cons_fx_t *fx) {
  uint64_t h = fx->height;
  if (h != nd->height || h > H_MAX) {
    fail(s, "node %u decided height %" PRIu64 " while at %" PRIu64, nd->idx, h,
         nd->height);
    return;
  }
  trace(s, "node %u decides h=%" PRIu64 " r=%u", nd->idx, h, fx->round);
  check_decision(s, nd, h, &fx->data, &fx->commit);
  decision_t *d = &nd->dec[h];
  d->set = 1;
  px_hash(d->hash, fx->data.data, fx->data.len);
  px_buf_reset(&d->value);
  px_buf_reset(&d->commit);
  (void)px_buf_append(&d->value, fx->data.data, fx->data.len);
  (void)px_buf_append(&d->commit, fx->commit.data, fx->commit.len);
  nd->decided = h;
  /* The block is stored: rotate the WAL (records of decided heights are
   * never needed again) and start the next height after a pause (as
   * CometBFT's timeout_commit), during which the core buffers early
   * messages of that height. */
  px_buf_reset(&nd->wal);
  event_t *e = ev_new(s, s->now + COMMIT_WAIT_MS, EV_START, nd->idx);
  if (!e) return;
  e->epoch = nd->epoch;
  e->height = h + 1;
  ev_commit(s);
}

static void run_effects(sim_t *s, node_t *nd) {
  px_cons_fx_t fx;
  while (!s->failed && nd->core && px_cons_poll(nd->core, &fx)) {
    switch (fx.kind) {
    case PX_CONS_FX_PERSIST:
      if (px_wal_frame(&nd->wal, fx.wal_type, fx.data.data, fx.data.len))
        fail(s, "node %u: WAL append failed", nd->idx);
      break;
    case PX_CONS_FX_BROADCAST:
      broadcast(s, nd, fx.data.data, fx.data.len);
      break;
    case PX_CONS_FX_SCHEDULE_TIMEOUT: {
      event_t *e = ev_new(s, fx.at, EV_TIMER, nd->idx);
      if (!e) break;
      e->epoch = nd->epoch;
      e->height = fx.height;
      e->round = fx.round;
      e->step = fx.step;
      ev_commit(s);
      break;
    }
    case PX_CONS_FX_DECIDE:
      on_decide(s, nd, &fx);
      break;
    case PX_CONS_FX_EVIDENCE: {
      px_cons_evidence_t ev;
      s->res->evidence++;
      if (px_cons_evidence_decode(fx.data.data, fx.data.len, &ev) != 0 ||
          px_cons_evidence_verify(
              k_chain, &s->vs[ev.a.height <= H_MAX ? ev.a.height : 1], &ev) !=
              0) {
        if (!nd->byz)
          fail(s, "node %u emitted evidence that does not verify", nd->idx);
      } else if (!s->nodes[ev.a.validator].byz && !nd->byz) {
        fail(s,
             "double sign: correct validator %u equivocated at height "
             "%" PRIu64 " round %u",
             ev.a.validator, ev.a.height, ev.a.round);
      }
      break;
    }
    }
    px_cons_fx_release(&fx);
  }
}

static int replay_fn(void *ud, const px_wal_record_t *rec) {
  node_t *nd = ud;
  int rc =
      px_cons_replay(nd->core, rec->type, rec->payload, rec->len, nd->sim->now);
  return rc == PX_EDECODE ? rc : 0;
}

static void restart(sim_t *s, node_t *nd) {
  if (new_core(s, nd) != 0) {
    fail(s, "node %u: core creation failed", nd->idx);
    return;
  }
  nd->alive = 1;
  /* Pass 1 rebuilds the sign guard, pass 2 the started height's state. */
  px_wal_replay_info_t info;
  px_buf_t wal = nd->wal; /* effects (new records) are drained afterwards */
  int rc = px_wal_replay_mem(wal.data, wal.len, replay_fn, nd, &info);
  if (rc == 0 && info.tail_err) {
    /* Cannot happen here (in-memory, whole records), but this is what the
     * runtime does. */
    px_cons_set_sign_floor(nd->core, info.max_height + 1);
  }
  start_height(s, nd, nd->decided + 1);
  if (rc == 0) rc = px_wal_replay_mem(wal.data, wal.len, replay_fn, nd, &info);
  if (rc) fail(s, "node %u: WAL replay failed: %s", nd->idx, px_strerror(rc));
  trace(s, "node %u restarts at height %" PRIu64 " (%" PRIu64 " records)",
        nd->idx, nd->decided + 1, info.records);
  run_effects(s, nd);
}

static void crash(sim_t *s, node_t *nd) {
  trace(s, "node %u crashes", nd->idx);
  /* Effects not yet drained are lost with the process. */
  px_cons_free(nd->core);
  nd->core = NULL;
  nd->alive = 0;
  nd->epoch++;
  s->res->crashes++;
}

/* A node behind us: send it the decision of the height it is stuck at. */
static void maybe_sync(sim_t *s, node_t *nd, uint32_t to, uint64_t h) {
  if (h == 0 || h > nd->decided || !nd->dec[h].set || nd->byz) return;
  if (nd->last_sync[to] && s->now < nd->last_sync[to] + 100) return;
  nd->last_sync[to] = s->now;
  px_cons_commit_t cm;
  const decision_t *d = &nd->dec[h];
  if (px_cons_commit_decode(d->commit.data, d->commit.len, &cm) != 0) return;
  px_buf_t b;
  px_buf_init(&b, 0);
  if (px_cons_decision_encode(d->value.data, d->value.len, &cm, &b) == 0)
    send_to(s, nd->idx, to, b.data, b.len);
  px_buf_release(&b);
}

static void deliver(sim_t *s, node_t *nd, event_t *e) {
  if (!nd->alive) return;
  px_cons_msg_type_t t;
  uint64_t h;
  uint32_t r;
  if (px_cons_msg_peek(e->msg.data, e->msg.len, &t, &h, &r) == 0 &&
      h <= nd->decided)
    maybe_sync(s, nd, e->from, h);
  (void)px_cons_on_message(nd->core, e->msg.data, e->msg.len, s->now);
  run_effects(s, nd);
}

/* ---- liveness bookkeeping ------------------------------------------------ */

static int all_live(sim_t *s) {
  for (uint32_t i = 0; i < s->cfg.n; i++) {
    node_t *nd = &s->nodes[i];
    if (nd->byz) continue;
    if (!nd->gst_marked) return 0;
    if (nd->decided < nd->decided_at_gst + s->cfg.heights_after_gst) return 0;
  }
  return 1;
}

static void mark_gst(sim_t *s) {
  for (uint32_t i = 0; i < s->cfg.n; i++) {
    node_t *nd = &s->nodes[i];
    if (!nd->gst_marked) {
      nd->gst_marked = 1;
      nd->decided_at_gst = nd->decided;
    }
  }
}

/* ---- setup --------------------------------------------------------------- */

void px_sim_config_default(px_sim_config_t *cfg, uint64_t seed, uint32_t n,
                           uint32_t byzantine) {
  memset(cfg, 0, sizeof *cfg);
  px_rng_t r;
  px_rng_seed(&r, seed ^ 0x5eedc0de5eedc0deull);
  cfg->seed = seed;
  cfg->n = n;
  cfg->byzantine = byzantine;
  cfg->byz_modes = 0;
  cfg->weighted = (int)px_rng_below(&r, 2);
  cfg->gst_ms = 500 + px_rng_below(&r, 3000);
  cfg->heights_after_gst = 3;
  cfg->liveness_ms = 60000;
  cfg->delay_min_ms = 1;
  cfg->delay_max_ms = 20;
  cfg->chaos_delay_max_ms = 50 + (uint32_t)px_rng_below(&r, 400);
  cfg->loss_pm = (uint32_t)px_rng_below(&r, 300);
  cfg->dup_pm = (uint32_t)px_rng_below(&r, 100);
  cfg->partitions = px_rng_below(&r, 3) != 0;
  cfg->crashes = px_rng_below(&r, 3) != 0;
  cfg->max_events = 2000000;
}

static int setup(sim_t *s) {
  const px_sim_config_t *c = &s->cfg;
  uint8_t pks[PX_SIM_MAX_NODES][PX_PK_LEN];
  uint64_t pw[PX_SIM_MAX_NODES];
  int byz[PX_SIM_MAX_NODES] = {0};
  for (uint32_t k = 0; k < c->byzantine;) {
    uint32_t i = (uint32_t)px_rng_below(&s->rng, c->n);
    if (!byz[i]) {
      byz[i] = 1;
      k++;
    }
  }
  uint64_t good = 0, bad = 0;
  for (uint32_t i = 0; i < c->n; i++) {
    node_t *nd = &s->nodes[i];
    nd->sim = s;
    nd->idx = i;
    uint8_t seed[PX_SEED_LEN] = {0};
    memcpy(seed, "plexus-sim-validator", 20);
    seed[31] = (uint8_t)i;
    if (px_key_from_seed(&nd->key, seed) != 0) return PX_ECRYPTO;
    memcpy(pks[i], nd->key.pk, PX_PK_LEN);
    nd->byz = byz[i];
    pw[i] = c->weighted ? rnd(s, 1, 10) : 10;
    if (byz[i])
      bad += pw[i];
    else
      good += pw[i];
    px_buf_init(&nd->wal, 0);
    for (size_t h = 0; h <= H_MAX; h++) {
      px_buf_init(&nd->dec[h].value, 0);
      px_buf_init(&nd->dec[h].commit, 0);
    }
    uint32_t modes = c->byz_modes ? c->byz_modes : 7;
    do {
      nd->byz_modes = (uint32_t)px_rng_below(&s->rng, 8) & modes;
    } while (nd->byz && nd->byz_modes == 0);
  }
  /* Byzantine power below a third: shrink it until 3 * bad < total. */
  while (bad && 3 * bad >= good + bad) {
    for (uint32_t i = 0; i < c->n; i++)
      if (byz[i] && pw[i] > 1) {
        pw[i]--;
        bad--;
      }
    if (3 * bad >= good + bad) {
      for (uint32_t i = 0; i < c->n; i++)
        if (!byz[i]) {
          pw[i]++;
          good++;
        }
    }
  }
  int rc = px_cons_valset_init(&s->vs[1], (const uint8_t(*)[PX_PK_LEN])pks, pw,
                               c->n);
  if (rc) return rc;
  for (size_t h = 2; h <= H_MAX + 1; h++) {
    s->vs[h] = s->vs[h - 1];
    px_cons_valset_advance(&s->vs[h]);
  }
  for (uint32_t i = 0; i < c->n; i++) {
    s->side[i] = -1;
    trace(s, "validator %u: power %" PRIu64 "%s (modes %u)", i, pw[i],
          byz[i] ? " BYZANTINE" : "", s->nodes[i].byz_modes);
  }

  /* Faults before GST. */
  if (c->partitions) {
    uint64_t t = rnd(s, 0, c->gst_ms / 2);
    while (t < c->gst_ms) {
      event_t *e = ev_new(s, t, EV_PART, 0);
      if (!e) return PX_ENOMEM;
      ev_commit(s);
      uint64_t heal = t + rnd(s, 100, 1500);
      if (heal > c->gst_ms) heal = c->gst_ms;
      if (!(e = ev_new(s, heal, EV_HEAL, 0))) return PX_ENOMEM;
      ev_commit(s);
      t = heal + rnd(s, 100, 1500);
    }
  }
  if (c->crashes) {
    for (uint32_t i = 0; i < c->n; i++) {
      if (byz[i] || !chance(s, 400)) continue;
      uint64_t t = rnd(s, 0, c->gst_ms);
      uint64_t back = t + rnd(s, 50, 1500);
      if (back > c->gst_ms) back = c->gst_ms;
      event_t *e = ev_new(s, t, EV_CRASH, i);
      if (!e) return PX_ENOMEM;
      ev_commit(s);
      if (!(e = ev_new(s, back, EV_RESTART, i))) return PX_ENOMEM;
      ev_commit(s);
    }
  }
  return 0;
}

static void teardown(sim_t *s) {
  for (uint32_t i = 0; i < PX_SIM_MAX_NODES; i++) {
    node_t *nd = &s->nodes[i];
    px_cons_free(nd->core);
    px_buf_release(&nd->wal);
    for (size_t h = 0; h <= H_MAX; h++) {
      px_buf_release(&nd->dec[h].value);
      px_buf_release(&nd->dec[h].commit);
    }
    px_key_wipe(&nd->key);
  }
  for (size_t i = 0; i < s->nheap; i++)
    px_buf_release(&s->heap[i].msg);
  px_free(s->heap);
  px_free(s->proposed);
  px_free(s->vcache);
}

int px_sim_run(const px_sim_config_t *cfg, px_sim_result_t *res) {
  if (!cfg || !res || cfg->n == 0 || cfg->n > PX_SIM_MAX_NODES ||
      3 * cfg->byzantine >= cfg->n || cfg->delay_min_ms > cfg->delay_max_ms ||
      cfg->delay_max_ms > cfg->chaos_delay_max_ms)
    return PX_EINVAL;
  memset(res, 0, sizeof *res);
  res->ok = 1;
  if (px_crypto_init() != 0) return PX_ECRYPTO;
  sim_t *s = px_calloc(1, sizeof *s);
  if (!s) return PX_ENOMEM;
  s->cfg = *cfg;
  s->res = res;
  px_rng_seed(&s->rng, cfg->seed);
  s->vcache = px_calloc(VCACHE, sizeof *s->vcache);
  int rc = s->vcache ? setup(s) : PX_ENOMEM;
  for (uint32_t i = 0; rc == 0 && i < cfg->n; i++) {
    node_t *nd = &s->nodes[i];
    if ((rc = new_core(s, nd)) != 0) break;
    nd->alive = 1;
    start_height(s, nd, 1);
    run_effects(s, nd);
  }
  uint64_t deadline = cfg->gst_ms + cfg->liveness_ms;
  event_t e;
  while (rc == 0 && !s->failed && ev_pop(s, &e)) {
    if (e.at >= cfg->gst_ms && s->now < cfg->gst_ms) {
      s->now = cfg->gst_ms;
      mark_gst(s);
    }
    s->now = e.at;
    res->events++;
    if (res->events > cfg->max_events) {
      fail(s, "liveness: gave up after %" PRIu64 " events at t=%" PRIu64 " ms",
           res->events - 1, s->now);
    } else if (s->now > deadline) {
      fail(s,
           "liveness: not every correct node decided %" PRIu64
           " heights within %" PRIu64 " ms after GST (t=%" PRIu64 ")",
           cfg->heights_after_gst, cfg->liveness_ms, cfg->gst_ms);
    }
    node_t *nd = &s->nodes[e.node];
    if (!s->failed) switch (e.kind) {
      case EV_DELIVER:
        deliver(s, nd, &e);
        break;
      case EV_TIMER:
        if (nd->alive && e.epoch == nd->epoch) {
          if (s->cfg.trace) {
            px_cons_state_t st;
            px_cons_get_state(nd->core, &st);
            trace(s,
                  "node %u timer %s h=%" PRIu64 " r=%u; at h=%" PRIu64
                  " r=%u %s locked=%d valid=%d signed=%" PRIu64 "/%u/%d",
                  nd->idx, px_cons_step_name(e.step), e.height, e.round,
                  st.height, st.round, px_cons_step_name(st.step),
                  st.locked_round, st.valid_round, st.last_signed_height,
                  st.last_signed_round, st.last_signed_step);
          }
          (void)px_cons_on_timeout(nd->core, e.height, e.round,
                                   (px_cons_step_t)e.step, s->now);
          run_effects(s, nd);
        }
        break;
      case EV_START:
        if (nd->alive && e.epoch == nd->epoch && e.height == nd->decided + 1) {
          start_height(s, nd, e.height);
          run_effects(s, nd);
        }
        break;
      case EV_CRASH:
        if (nd->alive) crash(s, nd);
        break;
      case EV_RESTART:
        if (!nd->alive) restart(s, nd);
        break;
      case EV_PART:
        s->partitioned = 1;
        res->partitions++;
        for (uint32_t i = 0; i < cfg->n; i++)
          s->side[i] = (int)px_rng_below(&s->rng, 2);
        trace(s, "partition");
        break;
      case EV_HEAL:
        s->partitioned = 0;
        trace(s, "heal");
        break;
      }
    px_buf_release(&e.msg);
    if (s->now >= cfg->gst_ms && all_live(s)) break;
  }
  if (rc == 0 && !s->failed && !all_live(s))
    fail(s,
         "liveness: the run ended before every correct node decided "
         "%" PRIu64 " heights after GST",
         cfg->heights_after_gst);
  res->end_ms = s->now;
  uint64_t hmin = UINT64_MAX;
  for (uint32_t i = 0; i < cfg->n; i++)
    if (!s->nodes[i].byz && s->nodes[i].decided < hmin)
      hmin = s->nodes[i].decided;
  res->heights_min = hmin == UINT64_MAX ? 0 : hmin;
  teardown(s);
  px_free(s);
  return rc;
}
